"""The core's compiler, descriptor format, cycle model and build/sim commands (no simulator).

Authorities: the weights and parameters decoded back out of the DRAM image must equal the
integer model's; the descriptor word order must equal the D_* indices of core_main.v; the cycle
model must equal a direct evaluation of its documented formula; bad input gives one clear error.
"""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from autochip.builder.compiler import CompileError, compile_model, merge_groups
from autochip.builder.core import CoreParams, core_params, render_core
from autochip.builder.program import DESC_BYTES, DESC_WORDS, FIELDS, PARAM_RECORD_BYTES
from autochip.cli import main
from autochip.errors import SpecError
from autochip.hw import hardware_spec_from_dict, load_hardware_spec
from autochip.predictor.core_model import (
    POSTED_ISSUE,
    core_cycles,
    dma_cycles,
    dram_timing,
    posted_wait,
    tile_cycles,
)
from autochip.reference import ComputeOp, IntegerModel, save_integer_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "rtl_tests" / "core"))
from core_models import random_model  # noqa: E402

DEMO = ROOT / "examples" / "hw" / "demo_os8x8_int8.yaml"


def _core(**over: object) -> CoreParams:
    return replace(core_params(load_hardware_spec(DEMO)), **over)  # type: ignore[arg-type]


def test_descriptor_fields_match_the_rtl() -> None:
    text = (ROOT / "templates" / "core_main.v").read_text()
    found = dict((m[0].lower(), int(m[1])) for m in re.findall(r"D_(\w+)\s*=\s*(\d+)", text))
    assert found == {name: i for i, name in enumerate(FIELDS)}
    assert f"DESC_WORDS = {DESC_WORDS}" in text and len(FIELDS) <= DESC_WORDS
    assert f"PREC_BYTES = {PARAM_RECORD_BYTES}" in text


def test_compile_is_deterministic_and_images_hold_the_weights() -> None:
    model = random_model()
    core = _core()
    a, b = compile_model(model, core), compile_model(model, core)
    assert a.dram == b.dram and a.plan() == b.plan()
    ops = {op.name: op for op in model.ops if isinstance(op, ComputeOp)}
    for lay in a.layers:
        if lay.mode == "vector":
            continue
        op = ops[lay.name]
        f = lay.fields
        groups = op.groups if op.layer == "conv" else 1
        w = np.asarray(op.weight)
        if op.layer == "conv":  # grouped layers merge groups onto the columns
            w, groups = merge_groups(w, groups, core.cols, core.w_depth)
        w = w.reshape(w.shape[0], -1)
        kg = w.shape[0] // groups
        c = core.cols
        # tiles: rows of w_row bytes (lanes past C zero), zero rows up to tile_w bytes
        assert f["tile_w"] % core.bus_bytes == 0 and f["w_addr"] % core.bus_bytes == 0
        rows = np.frombuffer(a.dram, np.int8, f["ntiles"] * f["tile_w"], f["w_addr"])
        rows = rows.reshape(f["ntiles"], f["tile_w"] // core.w_row, core.w_row)
        assert not rows[:, f["t"] :, :].any() and not rows[:, :, c:].any()
        tiles = rows[:, : f["t"], :c]
        # parameters: p_tile bytes per tile, C records then zeros
        recs = np.frombuffer(a.dram, np.uint8, f["ntiles"] * core.p_tile, f["p_addr"])
        recs = recs.reshape(f["ntiles"], core.p_tile)
        assert not recs[:, c * PARAM_RECORD_BYTES :].any()
        recs = recs[:, : c * PARAM_RECORD_BYTES].reshape(f["ntiles"], c, PARAM_RECORD_BYTES)
        for t in range(f["ntiles"]):
            g, kt = divmod(t, f["kt"])
            for lane in range(c):
                k = kt * c + lane
                if k >= kg:
                    assert not tiles[t, :, lane].any()
                    continue
                ch = g * kg + k
                assert np.array_equal(tiles[t, :, lane], w[ch])
                bias = int.from_bytes(recs[t, lane, 0:4].tobytes(), "little", signed=True)
                mult = int.from_bytes(recs[t, lane, 4:8].tobytes(), "little", signed=True)
                assert bias == op.bias[ch]
                assert op.requant is not None
                assert mult == op.requant.multiplier[ch]
                assert recs[t, lane, 8] == op.requant.shift[ch]
    # the program ends with an op-0 descriptor
    end = len(a.layers) * DESC_BYTES
    assert a.dram[end : end + 4] == bytes(4)


def test_compiler_refuses_what_the_core_cannot_run() -> None:
    model = random_model()
    ops = list(model.ops)
    adder = replace(ops[0], kind="adder")
    with pytest.raises(CompileError, match=r"op 'c5': an adder layer needs a core with pe.kind"):
        compile_model(replace(model, ops=(adder, *ops[1:])), _core())
    # an input larger than an ifmap copy is tiled; refused only when one output row of one
    # group does not fit: 3 channels of 5 input rows x 9 at a pitch of 47 (45 rounded up to
    # 99 mod 4) + 3 (any byte of a 4-byte bus word): 3 + 2 * 47 + 45 = 142
    with pytest.raises(CompileError, match=r"op 'c5': its input feature map 3x11x9: one output "
                       r"row of one group needs 142 bytes of one ifmap copy \(channels at a "
                       r"pitch .*\), which holds 64 bytes .*it needs column bands or partial "
                       r"sums of the reduction"):  # fmt: skip
        compile_model(model, _core(if_depth=64))
    lin = next(op for op in ops if getattr(op, "layer", "") == "linear")
    n_in = int(np.asarray(lin.weight).shape[1])
    with pytest.raises(CompileError, match=rf"op '{lin.name}': .* a fully connected layer this "
                       "large needs partial sums of the reduction"):  # fmt: skip
        compile_model(model, _core(if_depth=n_in - 4))
    dil = replace(ops[3], dilation=(2, 2))  # a 1x1 convolution keeps its shape
    with pytest.raises(CompileError, match=r"op 'pw': the core runs dilation 1 only"):
        compile_model(replace(model, ops=(*ops[:3], dil, *ops[4:])), _core())
    big = replace(ops[0], weight=ops[0].weight * 4)
    with pytest.raises(CompileError, match=r"weights in \[-508, 508\] do not fit 8-bit"):
        compile_model(replace(model, ops=(big, *ops[1:])), _core())
    # 75 rows of 8 bytes (cols rounded up to 2^k) = 600 bytes = 0.5859 KB
    with pytest.raises(CompileError, match=r"op 'c5': one weight tile \(3x5x5 weights per lane, "
                       r"whole bus words\): 75 rows of 8 bytes, but the weight buffer "
                       r"\(buffers.weight.size_kb / 8\) holds 40 rows of 8 bytes; it needs "
                       r"buffers.weight.size_kb >= 0.586"):  # fmt: skip
        compile_model(model, _core(w_depth=40))
    # the outputs are tiled in row bands; one row of one tile's outputs, 8 lanes x 5 at an
    # ofmap pitch of 6 (= 30 mod 4) from any byte of a 4-byte bus word: 51 bytes
    compile_model(model, _core(o_depth=100))
    with pytest.raises(CompileError, match=r"op 'c5': .* one row of a weight tile's outputs "
                       r"\(8 lanes x 5\) does not fit the ofmap \(48 bytes\)"):  # fmt: skip
        compile_model(model, _core(o_depth=48))


def test_core_params_reject_unsupported_specs() -> None:
    spec = hardware_spec_from_dict(
        {"pe": {"kind": "xnor", "vector": 8}, "array": {"rows": 4, "cols": 4}, "dataflow": "ws"},
        "bad.yaml",
    )
    with pytest.raises(SpecError, match=r"pe.kind: the core runs 'mac'.*found 'xnor'") as info:
        core_params(spec)
    assert "dataflow: the core uses an output-stationary array, found 'ws'" in str(info.value)
    for bw in (1, 2.5):
        narrow = hardware_spec_from_dict(
            {"array": {"rows": 4, "cols": 4}, "dram": {"bandwidth": bw}}, "bus.yaml"
        )
        with pytest.raises(SpecError, match=r"dram.bandwidth: .*4..64 bytes \(32..512 bits\)"):
            core_params(narrow)
    # the bus is the largest power of two of bytes per cycle within the bandwidth
    for bw, bus in ((4, 4), (12.8, 8), (64, 64), (100, 64)):
        spec = hardware_spec_from_dict(
            {"array": {"rows": 4, "cols": 4}, "dram": {"bandwidth": bw}}, "bus.yaml"
        )
        assert core_params(spec).bus_bytes == bus


def test_render_is_deterministic_and_sized_by_the_spec() -> None:
    core = _core()
    a, b = render_core(core), render_core(core)
    assert a == b
    top = a["rtl/autochip_core.v"]
    # dram.bandwidth 4 bytes per cycle: a 32-bit AXI data bus, buffers in 4-byte words
    assert core.bus_bytes == 4 and "output wire [31:0] m_axi_wdata" in top
    assert f".IF_WORDS({16 * 1024 // 8 // 4})" in top
    # ofmap: two banks of 8-byte words (R = 8 bytes of one channel written per cycle)
    assert ".O_WB(8)" in top and f".O_BWORDS({16 * 1024 // 16})" in top
    assert "/tmp" not in "".join(a.values())


def test_cycle_model_follows_its_formula() -> None:
    t = dram_timing()
    rd, wr = t["read_burst_overhead"], t["write_burst_overhead"]
    # 300 bytes from 200 on a 4-byte bus: words 50..124, one burst
    assert dma_cycles(200, 300, False, 4) == 2 + 75 + rd
    # split at the 4 KB boundary: words 1000..1023 and 1024..1149
    assert dma_cycles(4000, 600, False, 4) == 2 + 24 + 126 + 2 * rd
    # at most 256 beats a burst: 1024 words in 4 bursts
    assert dma_cycles(0, 4096, False, 4) == 2 + 1024 + 4 * rd
    # one byte, unaligned: one beat (strobed); 17 bytes across two 16-byte words
    assert dma_cycles(3, 1, True, 16) == 2 + 1 + wr
    assert dma_cycles(15, 17, True, 16) == 2 + 2 + wr
    # tiles back to back: T cycles each, a tile shorter than the array waits for the read-out
    assert tile_cycles(8, 8, 9) == 9
    assert tile_cycles(8, 4, 3) == 8 and tile_cycles(4, 6, 5) == 6
    prog = compile_model(random_model(), _core())
    cyc = core_cycles(_core(), prog.layers)
    assert len(cyc) == len(prog.layers) + 1
    assert all(c.layer > 0 for c in cyc)
    mp = next(c for c, lay in zip(cyc, prog.layers, strict=False) if lay.kind == "maxpool")
    # lane set-up (R = 8), ceil(C * P * Q / R) groups of KR * KS cycles, the 10-cycle flush
    assert mp.compute == 8 + -(-9 * 2 * 3 // 8) * 9 + 10
    # a compute layer's last write-back is posted: 2 cycles in the layer; the next input load
    # waits for what is left of it after the next descriptor's fetch (and first weights)
    for c, lay in zip(cyc, prog.layers, strict=False):
        if lay.mode != "vector" and lay.get("ntiles") <= lay.get("tpp"):
            assert c.writeback == POSTED_ISSUE
    assert posted_wait(1000, 20, "compute", 170) == 1000 - 1 - (5 + 20 + 170)
    assert posted_wait(1000, 20, "vector") == 1000 - 1 - 24
    assert posted_wait(1000, 20, "end") == 1000 - 1 - 23  # waits in S_DECODE itself
    assert posted_wait(20, 20, "vector") == 0


def test_build_command_writes_a_complete_folder(tmp_path: Path) -> None:
    npz = tmp_path / "m.npz"
    save_integer_model(random_model(), npz)
    # digits-shaped inputs are not needed: this model has a 3 x 11 x 9 input
    out = tmp_path / "b"
    assert main(["build", str(npz), "--hw", str(DEMO), "--out", str(out), "--images", "2"]) == 0
    for name in ("rtl/autochip_core.v", "files.f", "manifest.json", "dram.bin", "program.bin",
                 "plan.json", "model.npz", "inputs.npy", "tb/tb_core.py", "report.md"):  # fmt: skip
        assert (out / name).is_file(), name
    assert np.load(out / "inputs.npy").shape == (2, 3, 11, 9)


def test_build_and_sim_commands_reject_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", str(tmp_path / "x.txt"), "--hw", str(DEMO), "--out", str(tmp_path)]) == 2
    assert "expected an integer model .npz" in capsys.readouterr().err
    npz = tmp_path / "m.npz"
    save_integer_model(random_model(), npz)
    assert main(["build", str(npz), "--out", str(tmp_path / "o")]) == 2
    assert "expected --hw HW.yaml or --platform NAME, found neither" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main(["sim", str(tmp_path)]) == 2
    assert "expected a folder written by `autochip build` (plan.json)" in capsys.readouterr().err


def test_integer_model_roundtrip_keeps_compile_identical(tmp_path: Path) -> None:
    from autochip.reference import load_integer_model

    m: IntegerModel = random_model()
    save_integer_model(m, tmp_path / "m.npz")
    again = load_integer_model(tmp_path / "m.npz")
    assert compile_model(m, _core()).dram == compile_model(again, _core()).dram


def test_build_with_a_platform_builds_the_searched_core(tmp_path: Path) -> None:
    npz = tmp_path / "m.npz"
    save_integer_model(random_model(), npz)
    out = tmp_path / "p"
    assert (
        main(["build", str(npz), "--platform", "pynq-z2", "--out", str(out), "--images", "1"]) == 0
    )
    import json

    import yaml

    core = json.loads((out / "manifest.json").read_text())["core"]
    chosen = yaml.safe_load((out / "hw.yaml").read_text())  # the search's choice, editable
    assert (core["rows"], core["cols"], core["kind"]) == (
        chosen["array"]["rows"], chosen["array"]["cols"], "mac"
    )  # fmt: skip
    bus = core["bus_bytes"]
    size = round(chosen["buffers"]["ifmap"]["size_kb"] * 1024)
    assert core["if_depth"] == size // core["rows"] // bus * bus


# Yosys 0.70 counts of whole held-out cores (never used in the fit of
# autochip/predictor/core_resources.yaml) of this revision of templates/core_*.v, from
# scripts/validate_core.py --synth: synth_xilinx (DSPs on) and synth_ecp5. LUT counts LUT RAM
# as the LUT sites it occupies (autochip.builder.synth.LUT_SITES).
# core: (rows, cols, kind, a_bits, w_bits, bus bytes, (ifmap, weight, ofmap KB))
HELD_OUT = {
    "8x8 mac int8": (8, 8, "mac", 8, 8, 4, (16, 16, 16)),
    "4x6 adder int8": (4, 6, "adder", 8, 8, 8, (32, 8, 8)),
    "5x7 mac a6w4": (5, 7, "mac", 6, 4, 16, (16, 16, 16)),
    "3x5 mac a2w2 (binary)": (3, 5, "mac", 2, 2, 8, (16, 16, 8)),
    "4x4 mac a4w4": (4, 4, "mac", 4, 4, 8, (8, 8, 8)),
    "3x4 adder a6w6, 256-bit bus": (3, 4, "adder", 6, 6, 32, (16, 8, 8)),
}
YOSYS: dict[tuple[str, str], dict[str, int]] = {
    ("xilinx", "4x6 adder int8"): {"lut": 15198, "ff": 10564, "dsp": 56, "bram": 12},
    ("ecp5", "4x6 adder int8"): {"lut": 12573, "ff": 12838, "dsp": 56, "bram": 23},
    ("ecp5", "3x5 mac a2w2 (binary)"): {"lut": 9697, "ff": 10075, "dsp": 41, "bram": 21},
    ("xilinx", "3x5 mac a2w2 (binary)"): {"lut": 11997, "ff": 8439, "dsp": 26, "bram": 11},
    ("ecp5", "4x4 mac a4w4"): {"lut": 10812, "ff": 11225, "dsp": 48, "bram": 16},
    ("ecp5", "3x4 adder a6w6, 256-bit bus"): {"lut": 11030, "ff": 11649, "dsp": 38, "bram": 48},
    ("xilinx", "8x8 mac int8"): {"lut": 21567, "ff": 13272, "dsp": 120, "bram": 16},
}


def _held_out(name: str) -> CoreParams:
    r, c, kind, a, w, bus, kb = HELD_OUT[name]
    bufs = {k: {"size_kb": v} for k, v in zip(("ifmap", "weight", "ofmap"), kb, strict=True)}
    hw = hardware_spec_from_dict(
        {"pe": {"kind": kind, "a_bits": a, "w_bits": w}, "array": {"rows": r, "cols": c},
         "buffers": bufs, "dram": {"bandwidth": bus}},
        "held-out",
    )  # fmt: skip
    return core_params(hw)


@pytest.mark.parametrize("target,name", sorted(YOSYS))
def test_core_resources_within_10_percent_of_yosys(target: str, name: str) -> None:
    from autochip.predictor.core_model import core_resources

    pred = core_resources(_held_out(name), target)
    for key, got in YOSYS[(target, name)].items():
        assert abs(getattr(pred, key) - got) <= 0.10 * got, (key, getattr(pred, key), got)


def test_build_fmax_warning_refers_to_the_platform_family(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``build --hw`` warns for every FPGA family whose predicted Fmax misses the clock;
    ``build --hw --platform pynq-z2`` (the spec as given, no search) only for Xilinx."""
    from autochip.predictor import core_model

    model = dict(core_model._control_model())
    targets = dict(model["targets"])
    targets["ecp5"] = dict(targets["ecp5"], fmax={"a": 60.0, "b": -2.0, "measured": {"x": 1}})
    monkeypatch.setattr(core_model, "_control_model", lambda: dict(model, targets=targets))
    npz = tmp_path / "m.npz"
    save_integer_model(random_model(), npz)
    base = ["build", str(npz), "--hw", str(DEMO), "--images", "1"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    assert "exceeds the core's predicted ecp5 Fmax" in capsys.readouterr().err
    assert main([*base, "--platform", "pynq-z2", "--out", str(tmp_path / "b")]) == 0
    assert "ecp5" not in capsys.readouterr().err.lower()
    assert (tmp_path / "b" / "rtl" / "autochip_core.v").read_text() == (
        tmp_path / "a" / "rtl" / "autochip_core.v").read_text()  # fmt: skip
    assert main([*base, "--platform", "nosuch", "--out", str(tmp_path / "c")]) == 2
    assert "unknown platform 'nosuch'" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_fmax_prediction_warns_when_the_clock_is_not_met(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from autochip.hw.platform import load_platform
    from autochip.modelio import graph_for
    from autochip.predictor import core_model
    from autochip.predictor.core_batch import core_configs, core_resources_batch
    from autochip.predictor.core_estimate import predict_core

    model = dict(core_model._control_model())
    targets = dict(model["targets"])
    targets["ecp5"] = dict(targets["ecp5"], fmax={"a": 60.0, "b": -2.0, "measured": {"x": 1}})
    monkeypatch.setattr(core_model, "_control_model", lambda: dict(model, targets=targets))
    hw = load_hardware_spec(DEMO)  # 8x8 at 100 MHz: 60 - 2 * log2(64) = 48 MHz predicted
    core = core_params(hw)
    assert core_model.fmax_mhz(core, "ecp5") == 48.0
    (warning,) = core_model.fmax_warnings(core, hw.clock_mhz)
    assert "clock_mhz 100 exceeds" in warning and "48.0 MHz" in warning
    assert core_model.fmax_warnings(core, 40.0) == []
    got = core_resources_batch(core_configs([hw]), "ecp5")
    assert float(got["fmax_mhz"][0]) == 48.0
    est = predict_core(graph_for("lenet_digits"), hw, load_platform("lfe5u-85f"))
    assert any(n.startswith("warning: clock_mhz 100 exceeds") for n in est.notes)


def test_ram_geometry_follows_the_block_ram_modes() -> None:
    from autochip.predictor.core_model import buffer_brams, ram_cells

    # 512 words of 4 byte lanes: one RAMB18 in 512 x 36 / one PDPW16KD
    assert ram_cells("xilinx", 512, 4, 8) == (1, 0)
    assert ram_cells("ecp5", 512, 4, 8) == (1, 0)
    # 2048 x 8 lanes: four 36 Kb RAMs (RAMB36 2K x 18 or 512 x 72); eight DP16KD 2K x 9
    assert ram_cells("xilinx", 2048, 8, 8) == (4, 0)
    assert ram_cells("ecp5", 2048, 8, 8) == (8, 0)
    # 16 words: LUT RAM; an 8-bit lane takes 2 DPR16X4 (6 LUT sites each) / 2 RAM32M (4 LUT6)
    assert ram_cells("ecp5", 16, 1, 8) == (0, 12)
    assert ram_cells("xilinx", 16, 1, 8) == (0, 8)
    # synthesis counts LUT RAM as the LUT sites it occupies, as the model does
    from autochip.builder.synth import classify_cells

    assert classify_cells("xilinx", {"RAM32M": 2, "RAM64M": 1, "LUT6": 1})["lut"] == 13
    assert classify_cells("ecp5", {"TRELLIS_DPR16X4": 2, "LUT4": 1})["lut"] == 13
    # the demo core on ECP5: 24 DP16KD and 152 DPR16X4 (8 records of 9 bytes + 1 bit), as Yosys
    demo = core_params(load_hardware_spec(DEMO))
    mem = buffer_brams(demo, "ecp5")
    assert mem["ifmap"] + mem["weight"] + mem["ofmap"] + mem["params"] == 24
    assert mem["lutram_lut"] == 152 * 6


def test_build_refuses_an_adder_model_on_a_mac_core(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = random_model()
    ops = list(model.ops)
    npz = tmp_path / "adder.npz"
    save_integer_model(replace(model, ops=(replace(ops[0], kind="adder"), *ops[1:])), npz)
    out = tmp_path / "o"
    assert main(["build", str(npz), "--hw", str(DEMO), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the core cannot run this model" in err
    assert "op 'c5': an adder layer needs a core with pe.kind 'adder', found 'mac'" in err
    assert "Traceback" not in err
    assert not out.exists()  # nothing written half-way


def test_the_bit_exact_check_catches_one_wrong_value() -> None:
    from autochip.builder.core_sim import compare_outputs
    from autochip.reference import run

    model = random_model()
    x = np.random.default_rng(1).integers(-128, 128, size=(2, 3, 11, 9))
    names = ["c5", "add", "fc"]
    results = []
    for image in x:
        _, ref = run(model, image[None], dump=True)
        results.append({"tensors": {n: [int(v) for v in ref[n].reshape(-1)] for n in names}})
    assert compare_outputs(model, x, names, results) == [0, 0, 0]
    results[1]["tensors"]["add"][17] += 1
    assert compare_outputs(model, x, names, results) == [0, 1, 0]
    results[0]["tensors"]["fc"] = results[0]["tensors"]["fc"][:-1]  # a short read counts too
    assert compare_outputs(model, x, names, results)[2] == 7

"""The vectorised core model (``core_batch``) against its authorities.

* The layer table derived from the AccelGraph gives exactly the descriptor fields and DRAM
  addresses ``compile_model`` produces for the same network's integer model (digits networks,
  ResNet-20 with option-A shortcuts and a net with a Fire module's concatenation, ReLU6,
  ceil-mode pooling and a merged depthwise layer, both quantised post-training), and the
  compiler refuses exactly the cores the batch marks infeasible.
* Cycles per layer and phase equal the scalar ``core_model.core_cycles`` (which is checked
  against simulation, docs/core.md) on compiled digits networks and on zoo networks at
  random core configurations; resources equal ``core_model.core_resources``.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autochip.builder.compiler import CompileError, compile_model
from autochip.builder.core import core_params
from autochip.builder.explore_build import integer_workload
from autochip.builder.program import X_FIELDS
from autochip.hw import hardware_spec_from_dict
from autochip.hw.platform import load_platform
from autochip.ir import graph_for
from autochip.predictor.core_batch import (
    CoreConfigs,
    _dma_run,
    _floor_sum,
    core_configs,
    core_geometry,
    core_plan,
    core_resources_batch,
    core_workload,
    evaluate_core,
    planned_layers,
)
from autochip.predictor.core_model import core_cycles, core_resources, dma_cycles, dram_timing

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "rtl_tests" / "core"
sys.path.insert(0, str(CORE))
from core_models import integer_model  # noqa: E402

PLAN_KEYS = ("in_addr", "in2_addr", "out_addr", "p_addr", "w_addr", "in_len", "ntiles", "kt",
             "tpp", "tile_w", "npt", "c_pq")  # fmt: skip
PHASES = ("fetch", "load", "compute", "writeback", "control")


def _spec(r: int, c: int, i: float, w: float, o: float, a: int = 8) -> object:
    return hardware_spec_from_dict(
        {
            "pe": {"kind": "mac", "a_bits": a, "w_bits": a},
            "array": {"rows": r, "cols": c},
            "buffers": {"ifmap": {"size_kb": i}, "weight": {"size_kb": w}, "ofmap": {"size_kb": o}},
        }
    )


def _assert_phases_equal_scalar(
    res: Any, wl: Any, cfg: Any, geo: dict[str, Any], i: int
) -> tuple[Any, ...]:
    """Design ``i``'s per-layer phases equal ``core_model.core_cycles`` of its planned layers;
    returns the scalar model's cycles (the end descriptor last)."""
    core = type("Core", (), {"rows": int(cfg.rows[i]), "cols": int(cfg.cols[i]),
                             "bus_bytes": int(geo["bus"][i]),
                             "p_tile": int(geo["p_tile"][i])})()  # fmt: skip
    ref = core_cycles(core, planned_layers(wl, cfg, i))
    assert _phases(res, i, len(wl)) == [
        (c.fetch, c.load, c.compute, c.writeback, c.control) for c in ref[:-1]
    ]
    return tuple(ref)


def _phases(res: object, i: int, n: int) -> list[tuple[int, ...]]:
    return [tuple(int(getattr(res, p)[i, j]) for p in PHASES) for j in range(n)]


# the random cores: largest rows / cols, buffer sizes (KB) ifmap, weight, ofmap
_DIGITS_KB = (16, [2, 4, 16, 32], [0.5, 1, 4, 16], [0.5, 1, 2, 8])
_NETS = {
    "lenet_digits": _DIGITS_KB,
    "resblock_digits": _DIGITS_KB,
    "dwsep_digits": _DIGITS_KB,
    # ResNet-20 at 3x32x32 (option-A shortcuts: recomputed add, subsample, channel pad)
    "resnet20": (8, [128, 256, 512], [0.5, 2, 8], [8, 16, 32]),
    # Fire module (concatenation), ReLU6, ceil-mode max pooling, depthwise 3x3 (merged groups)
    "zoo_ops_tiny": (16, [4, 16, 64], [0.25, 1, 4], [1, 2, 8]),
}


@pytest.fixture(scope="module")
def ptq_models() -> dict[str, object]:
    """The float networks quantised post-training as ``autochip build`` does (seeded synthetic
    calibration), with their AccelGraphs; built once for the module."""
    from autochip.compress.ptq import calibration_inputs, ptq
    from autochip.ir import load_model

    out: dict[str, object] = {}
    for name, spec in (("resnet20", "resnet20"), ("zoo_ops_tiny", str(CORE / "zoo_ops_tiny.py"))):
        lm = load_model(spec)
        cal = calibration_inputs(None, tuple(lm.example_input.shape[1:]), 8)
        out[name] = (ptq(lm.model, lm.example_input, cal.x), graph_for(spec))
    return out


@pytest.mark.parametrize("name", list(_NETS))
def test_graph_layers_equal_the_compiled_program(name: str, ptq_models: dict[str, object]) -> None:
    if name in ptq_models:
        model, graph = ptq_models[name]  # type: ignore[misc]
    else:
        model, graph = integer_model(name, "quant"), graph_for(name)
    wl = core_workload(graph)
    assert not wl.problems
    top, if_kb, w_kb, o_kb = _NETS[name]
    rng = np.random.default_rng(7)
    compiled = refused = prefetched = crossed = 0
    kinds: set[str] = set()
    for _ in range(40 if name.endswith("_digits") else 24):
        hw = _spec(
            int(rng.integers(1, top + 1)),
            int(rng.integers(1, top + 1)),
            float(rng.choice(if_kb)),
            float(rng.choice(w_kb)),
            float(rng.choice(o_kb)),
        )
        core = core_params(hw)  # type: ignore[arg-type]
        cfg = core_configs([hw])  # type: ignore[list-item]
        plan = core_plan(wl, cfg)
        try:
            prog = compile_model(model, core)
        except CompileError:
            assert not plan["feasible"][0]
            refused += 1
            continue
        if any("@" in lay.name for lay in prog.layers):
            continue  # feature maps tiled in bands: tests/test_core_batch_tiling.py
        assert plan["feasible"][0]
        compiled += 1
        assert [lay.kind for lay in prog.layers] == list(wl.kinds)
        kinds.update(wl.kinds)
        for j, lay in enumerate(prog.layers):
            keys = PLAN_KEYS + (("t", "kg") if lay.mode != "vector" else ())
            assert {k: lay.get(k) for k in keys} == {k: int(plan[k][0, j]) for k in keys}
            # weight prefetch (op bit 12), cross-layer prefetch (bits 13-15), slots, loads
            # and the load watermark (bit 16, its row group in_grp)
            pf = (lay.get("op") >> 12 & 31, lay.get("w_slot"), lay.get("p_slot"),
                  *(lay.get(k) for k in X_FIELDS))  # fmt: skip
            assert pf == (int(plan["op"][0, j]) >> 12 & 31, int(plan["w_slot"][0, j]),
                          int(plan["p_slot"][0, j]),
                          *(int(plan[k][0, j]) for k in X_FIELDS))  # fmt: skip
            prefetched += pf[0] & 1
            crossed += pf[0] >> 2 & 1
        ref = core_cycles(core, prog.layers)
        res = evaluate_core(wl, cfg)
        assert _phases(res, 0, len(wl)) == [
            (c.fetch, c.load, c.compute, c.writeback, c.control) for c in ref[:-1]
        ]
        assert int(res.total_cycles[0]) == sum(c.total for c in ref)
        if name in ptq_models:  # the workload read back from a compilation (explore_build)
            iw = integer_workload(model)  # type: ignore[arg-type]
            assert _phases(evaluate_core(iw, cfg), 0, len(wl)) == _phases(res, 0, len(wl))
    assert compiled >= 5 and refused >= 1
    assert prefetched >= 1  # layers of several passes whose two slots fit
    assert crossed >= 1  # first passes loaded during the compute layer before
    if name == "resnet20":
        assert {"subsample", "add", "avgpool"} <= kinds
    if name == "zoo_ops_tiny":
        assert "maxpool" in kinds


def test_depthwise_groups_merge_per_core() -> None:
    """dwsep_digits' depthwise layer: groups merged onto the columns as far as the weight bank
    allows (``compiler.merge_groups``), so ``t`` and ``kg`` depend on the core."""
    wl = core_workload(graph_for("dwsep_digits"))
    assert wl.merge is not None and wl.merge.any()
    j = int(np.flatnonzero(wl.merge)[0])
    g, t0 = int(wl.groups[j]), int(wl.t[j])
    assert t0 == 9 and g % 2 == 0  # 3x3 depthwise: a 16-byte bank holds one group, not two
    specs = [_spec(4, 1, 16, 16, 16), _spec(4, g, 16, 16, 16), _spec(4, g, 16, g * 16 / 1024, 16)]
    plan = core_plan(wl, core_configs(specs))  # type: ignore[arg-type]
    assert plan["kg"][:, j].tolist() == [1, g, 1]  # 1 column; all merged; the bank too shallow
    assert plan["t"][:, j].tolist() == [t0, g * t0, t0]


def _random_configs(rng: np.random.Generator, n: int, random_bus: bool = False) -> CoreConfigs:
    """n random int8 MAC cores: arrays up to 64x64, buffers from 1 KB, bus widths 4..64 bytes
    when ``random_bus`` (else the default)."""
    extra = {"bus_bytes": 1 << rng.integers(2, 7, n)} if random_bus else {}
    return CoreConfigs(
        rows=rng.integers(1, 65, n),
        cols=rng.integers(1, 65, n),
        a_bits=np.full(n, 8),
        w_bits=np.full(n, 8),
        adder=np.zeros(n, dtype=np.int64),
        if_bytes=rng.integers(1, 20000, n) * 1024,
        w_bytes=rng.integers(1, 4000, n) * 1024 + rng.integers(0, 1024, n),
        o_bytes=rng.integers(1, 4000, n) * 1024 + rng.integers(0, 1024, n),
        clock_mhz=np.full(n, 100.0),
        **extra,
    )


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "alexnet", "resnet20",
                                  "squeezenet1_1"])  # fmt: skip
def test_batch_equals_scalar_model_on_zoo_networks(name: str) -> None:
    wl = core_workload(graph_for(name))
    cfg = _random_configs(np.random.default_rng(3), 300)
    res = evaluate_core(wl, cfg)
    ok = np.flatnonzero(res.feasible)
    assert ok.size >= 10
    for i in ok[:10].tolist():
        geo = core_geometry(cfg)
        _assert_phases_equal_scalar(res, wl, cfg, geo, i)


def test_resources_equal_the_scalar_model() -> None:
    rng = np.random.default_rng(5)
    specs = []
    for _ in range(150):
        adder = bool(rng.integers(0, 2))
        a = int(rng.integers(2, 9))
        w = a if adder else int(rng.integers(2, 9))
        kb = {k: float(rng.integers(1, 512)) for k in ("ifmap", "weight", "ofmap")}
        specs.append(hardware_spec_from_dict({
            "pe": {"kind": "adder" if adder else "mac", "a_bits": a, "w_bits": w},
            "array": {"rows": int(rng.integers(1, 65)), "cols": int(rng.integers(1, 65))},
            "buffers": {k: {"size_kb": v} for k, v in kb.items()},
            "dram": {"bandwidth": float(2 ** rng.integers(2, 7))},
        }))  # fmt: skip
    cfg = core_configs(specs)  # type: ignore[arg-type]
    for target in ("xilinx", "ecp5"):
        got = core_resources_batch(cfg, target)
        for i, hw in enumerate(specs):
            ref = core_resources(core_params(hw), target)  # type: ignore[arg-type]
            assert [int(got[k][i]) for k in ("lut", "ff", "dsp", "bram")] == [
                ref.lut,
                ref.ff,
                ref.dsp,
                ref.bram,
            ]
            fmax = float(got["fmax_mhz"][i])
            assert (ref.fmax_mhz is None and fmax != fmax) or fmax == ref.fmax_mhz


def test_energy_and_area_from_the_technology_tables() -> None:
    wl = core_workload(graph_for("lenet_digits"))
    specs = [_spec(8, 8, 16, 16, 16), _spec(16, 16, 16, 16, 16)]
    cfg = core_configs(specs)  # type: ignore[arg-type]
    fpga = evaluate_core(wl, cfg, load_platform("xc7z020"))
    asic = evaluate_core(wl, cfg, load_platform("asic-45nm"))
    assert fpga.resources and asic.area_um2 is not None and not asic.resources
    assert (fpga.energy_pj > 0).all() and (asic.energy_pj > 0).all()
    # FPGA unit energies carry the FPGA/ASIC gap (platforms.yaml), so the same work costs more
    assert fpga.energy_pj.sum() > asic.energy_pj.sum()
    assert asic.area_um2[1] > asic.area_um2[0]


def test_vectorised_unit_costs_equal_the_technology_tables() -> None:
    from autochip.predictor.core_batch import _leak_vec, core_area_um2, sram_read_pj_per_bit

    sizes = np.unique(np.geomspace(1, 64 << 20, 300).astype(np.int64))
    for name in ("asic-45nm", "asic-16nm", "xc7z020"):
        tech = load_platform(name).tech
        got = sram_read_pj_per_bit(tech, sizes)
        ref = np.array([tech.sram_read_pj_per_bit(int(s)) for s in sizes])
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    plat = load_platform("asic-16nm")
    specs = [_spec(4, 8, 16, 8, 4), _spec(16, 16, 200, 64, 32)]
    area = core_area_um2(core_configs(specs), plat)  # type: ignore[arg-type]
    from autochip.predictor.resources import asic_area

    ref_area = [asic_area(hw, plat).total for hw in specs]  # type: ignore[arg-type]
    np.testing.assert_allclose(area, ref_area, rtol=1e-12)
    np.testing.assert_allclose(_leak_vec(plat, area), [plat.tech.leakage_w(a) for a in area])


def _run_ref(a: int, n_bytes: int, n: int, bus: int, write: bool) -> int:
    return sum(dma_cycles(a + j * n_bytes, n_bytes, write, bus) for j in range(n))


def test_floor_sum_equals_the_sum() -> None:
    rng = np.random.default_rng(11)
    n, m = rng.integers(0, 60, 3000), rng.integers(1, 5000, 3000)
    a, b = rng.integers(-9000, 9000, 3000), rng.integers(-9000, 9000, 3000)
    got = _floor_sum(n, m, a, b)
    ref = [sum((int(a[i]) * k + int(b[i])) // int(m[i]) for k in range(int(n[i])))
           for i in range(3000)]  # fmt: skip
    assert got.tolist() == ref


@pytest.mark.parametrize("write", [False, True])
def test_dma_run_closed_form_equals_the_scalar_loop(write: bool) -> None:
    """The closed-form sum of back-to-back DMA commands equals core_model.dma_cycles command
    by command, on every bus width, at random addresses and lengths, at lengths around
    whole bursts and 4 KB pages, and at the lengths whose last word wraps a burst block
    (the case summed by class j mod bus)."""
    rng = np.random.default_rng(12 + write)
    N = 4000
    bus = 1 << rng.integers(2, 7, N)  # 4 .. 64 bytes
    addr = np.where(rng.random(N) < 0.3, rng.integers(0, 1 << 10, N) * bus,
                    rng.integers(0, 1 << 18, N))  # fmt: skip
    near = rng.choice([256, 1024, 2048, 4096, 8192], N) * rng.integers(1, 3, N)
    length = np.select(
        [rng.random(N) < 0.4, rng.random(N) < 0.5],
        [rng.integers(1, 12000, N), near + rng.integers(-70, 70, N)],
        # the block-wrap case: (L - 1) mod (256 bus) within one bus word of the block
        256 * bus * rng.integers(1, 3, N) - rng.integers(0, 8, N) % bus,
    )
    length = np.maximum(length, 1)
    n = rng.integers(0, 40, N)
    over = dram_timing()["write_burst_overhead" if write else "read_burst_overhead"]
    got = _dma_run(addr, length, n, bus, over)
    ref = [_run_ref(int(addr[i]), int(length[i]), int(n[i]), int(bus[i]), write)
           for i in range(N)]  # fmt: skip
    assert got.tolist() == ref
    g = np.minimum(256 * bus, 4096)
    wrap = (g - (length - 1) % g < bus) & (g < 4096) & (length <= 4096) & (n > bus)
    assert wrap.sum() >= 20  # the by-class path is exercised


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "squeezenet1_1"])
def test_batch_equals_scalar_model_at_every_bus_width(name: str) -> None:
    """Whole networks at random cores and bus widths 4..64 bytes: every phase of every layer
    equals the scalar model (per-pass DMA in closed form against the pass-by-pass loop)."""
    wl = core_workload(graph_for(name))
    cfg = _random_configs(np.random.default_rng(21), 400, random_bus=True)
    res = evaluate_core(wl, cfg)
    ok = np.flatnonzero(res.feasible)
    geo = core_geometry(cfg)
    assert len(set(geo["bus"][ok[:12]].tolist())) >= 3
    for i in ok[:12].tolist():
        ref = _assert_phases_equal_scalar(res, wl, cfg, geo, i)
        assert int(res.end_cycles[i]) == ref[-1].layer


def test_uneven_passes_of_grouped_layers_equal_the_scalar_model() -> None:
    """The grouped convolution of the odd-shape model (groups 3, 3 channels per group) on
    narrow arrays: passes that cover uneven channel counts (written back pass by pass) and
    the even ones (closed form) equal the scalar model, at random bus widths."""
    from core_models import random_model

    wl = integer_workload(random_model(), "odd")
    rng = np.random.default_rng(4)
    H = 3000
    cfg = CoreConfigs(
        rows=rng.integers(1, 17, H),
        cols=rng.integers(1, 17, H),
        a_bits=np.full(H, 8),
        w_bits=np.full(H, 8),
        adder=np.zeros(H, dtype=np.int64),
        if_bytes=rng.integers(1, 64, H) * 256,
        w_bytes=rng.integers(1, 64, H) * 64,
        o_bytes=rng.integers(1, 64, H) * 64,
        clock_mhz=np.full(H, 100.0),
        bus_bytes=1 << rng.integers(2, 7, H),
    )
    res = evaluate_core(wl, cfg)
    plan = core_plan(wl, cfg)
    kt, kg, nt = np.maximum(plan["kt"], 1), plan["kg"], plan["ntiles"]
    tpp = np.maximum(plan["tpp"], 1)
    even = (kt == 1) | (kg == kt * cfg.cols[:, None]) | (tpp % kt == 0) | (nt == kt)
    uneven = (~even & (-(-nt // tpp) > 1)).any(axis=1) & res.feasible
    pick = np.flatnonzero(uneven)[:10].tolist() + np.flatnonzero(res.feasible)[:20].tolist()
    assert uneven.sum() >= 5
    geo = core_geometry(cfg)
    for i in pick:
        _assert_phases_equal_scalar(res, wl, cfg, geo, i)


def test_dma_in_shifts_equals_the_scalar_command() -> None:
    """``_dma`` (bus-word and burst counts as shifts of the power-of-two bus) equals
    ``core_model.dma_cycles`` command by command, empty commands and page crossings included."""
    from autochip.predictor.core_batch import _dma

    rng = np.random.default_rng(31)
    N = 6000
    bus = 1 << rng.integers(2, 7, N)
    addr = np.where(rng.random(N) < 0.3, rng.integers(0, 1 << 12, N) * bus,
                    rng.integers(0, 1 << 22, N))  # fmt: skip
    length = np.select([rng.random(N) < 0.1, rng.random(N) < 0.5],
                       [np.zeros(N, dtype=np.int64), rng.integers(1, 300, N)],
                       rng.integers(1, 40000, N))  # fmt: skip
    for write in (False, True):
        t = dram_timing()
        ref_over = t["write_burst_overhead" if write else "read_burst_overhead"]
        ref = [dma_cycles(int(a), int(n), write, int(b))
               for a, n, b in zip(addr, length, bus, strict=True)]  # fmt: skip
        got = _dma(addr, length, bus, ref_over)
        assert got.tolist() == ref


def test_ram_cells_vectorised_equal_the_scalar_model() -> None:
    """``_ram_batch`` (ceilings by the modes' power-of-two sizes as shifts) equals
    ``core_model.ram_cells`` on random RAM shapes for both targets."""
    from autochip.predictor.core_batch import _ram_batch
    from autochip.predictor.core_model import ram_cells

    rng = np.random.default_rng(32)
    N = 3000
    depth = np.where(rng.random(N) < 0.5, rng.integers(1, 80, N), rng.integers(1, 20000, N))
    lanes = 1 << rng.integers(0, 8, N)
    row = np.where(rng.random(N) < 0.3, 0, lanes >> rng.integers(0, 3, N))
    row = np.maximum(row, 0)
    used = np.where(row > 0, rng.integers(0, np.maximum(row, 1) + 1, N), 0)
    bits = rng.integers(1, 9, N)
    for target in ("xilinx", "ecp5"):
        bram, lut = _ram_batch(target, depth, lanes, bits, row, used)
        ref = [ram_cells(target, int(d), int(n), int(b), int(r), int(u))
               for d, n, b, r, u in zip(depth, lanes, bits, row, used, strict=True)]  # fmt: skip
        assert list(zip(bram.tolist(), lut.tolist(), strict=True)) == ref


@pytest.mark.parametrize("name", ["resnet18", "dwsep_digits"])
def test_layer_sums_and_feasibility_equal_the_per_layer_model(name: str) -> None:
    """``evaluate_core(per_layer=False)`` (layout-only parts summed once per layout, compute
    and vector layers apart) gives the sums of the per-layer phases, the same cycles and the
    same energy; the feasibility from each layout's largest need equals the per-layer check
    (``why_infeasible``, the compiler's limits layer by layer)."""
    from autochip.predictor.core_batch import core_feasible, why_infeasible

    wl = core_workload(graph_for(name))
    cfg = _random_configs(np.random.default_rng(33), 600, random_bus=True)
    plat = load_platform("vcu118")
    full = evaluate_core(wl, cfg, plat)
    tot = evaluate_core(wl, cfg, plat, per_layer=False)
    for p in PHASES:
        assert (getattr(tot, p)[:, 0] == getattr(full, p).sum(axis=1)).all(), p
    assert (tot.total_cycles == full.total_cycles).all()
    np.testing.assert_allclose(tot.energy_pj[:, 0], full.energy_pj.sum(axis=1), rtol=1e-12)
    ok = core_feasible(wl, cfg)
    assert (ok == full.feasible).all() and 20 < ok.sum() < len(ok)
    for i in range(0, len(ok), 5):
        assert ok[i] == (why_infeasible(wl, cfg, i) == []), i


@pytest.mark.parametrize("write", [False, True])
def test_strided_dma_run_equals_the_scalar_loop(write: bool) -> None:
    """Runs of commands at a stride (a band's input rows per channel, its output rows per
    channel) in closed form equal ``dma_cycles`` command by command: random and bus-aligned
    addresses, lengths up to and past a page, strides from the length up to 64 KB."""
    rng = np.random.default_rng(14 + write)
    N = 4000
    bus = 1 << rng.integers(2, 7, N)
    addr = np.where(rng.random(N) < 0.3, rng.integers(0, 1 << 10, N) * bus,
                    rng.integers(0, 1 << 18, N))  # fmt: skip
    length = np.where(rng.random(N) < 0.5, rng.integers(1, 600, N), rng.integers(1, 9000, N))
    stride = length + np.where(rng.random(N) < 0.3, 0, rng.integers(0, 1 << 16, N))
    stride = np.where(rng.random(N) < 0.2, (stride // bus + 1) * bus, stride)
    n = rng.integers(0, 70, N)
    over = dram_timing()["write_burst_overhead" if write else "read_burst_overhead"]
    got = _dma_run(addr, length, n, bus, over, stride)
    ref = [sum(dma_cycles(int(addr[i]) + j * int(stride[i]), int(length[i]), write, int(bus[i]))
               for j in range(int(n[i]))) for i in range(N)]  # fmt: skip
    assert got.tolist() == ref


@pytest.mark.parametrize("name", ["resnet18", "dwsep_digits"])
def test_values_kept_between_calls_equal_computed_afresh(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``evaluate_core`` keeps from call to call per workload (``_kept_columns``: the DRAM
    layouts and their DMA per layout, the passes' DMA per (layout, layer, tiles per pass))
    gives what computing it afresh in every call gives, phase by phase and layer by layer:
    blocks of random cores (random buses; merged groups on dwsep_digits, so the layouts
    differ in weight rows too) in shuffled order, and with a budget so small that the
    tables start again (the layouts', of 12 L + 4 values each, or are not kept at all)."""
    from autochip.predictor import core_batch

    wl = core_workload(graph_for(name))
    rng = np.random.default_rng(8)
    cfg = _random_configs(rng, 1500, random_bus=True)
    if name == "resnet18":  # buffers that hold the network: most cores run it
        cfg = CoreConfigs(**{**cfg.__dict__, "if_bytes": cfg.rows * 1700 * 1024,
                             "o_bytes": cfg.cols * 13 * 1024 + (1 << 20)})  # fmt: skip
    plat = load_platform("vcu118")
    with monkeypatch.context() as m:  # afresh: nothing kept
        m.setattr(core_batch, "_workload_memo", lambda wl: {})
        ref = evaluate_core(wl, cfg, plat)
    assert ref.feasible.sum() > 300
    tm = dram_timing()
    key = ("pass", int(tm["read_burst_overhead"]), int(tm["write_burst_overhead"]))
    blocks = np.array_split(rng.permutation(len(cfg)), 6)

    def blockwise(values: int) -> list[int]:
        """Evaluate the blocks one after another, nothing kept at first and at most
        ``values`` kept per table, check them against ``ref``; the triples kept after each."""
        monkeypatch.setattr(core_batch, "_KEPT_VALUES", values)
        core_batch._MEMO.pop(id(wl), None)
        kept = []
        for idx in blocks:
            got = evaluate_core(wl, cfg.take(idx), plat)
            for p in PHASES:
                assert (getattr(got, p) == getattr(ref, p)[idx]).all(), (values, p)
            assert (got.end_cycles == ref.end_cycles[idx]).all()
            np.testing.assert_array_equal(got.energy_pj, ref.energy_pj[idx])
            kept.append(core_batch._workload_memo(wl)[key][0].size)
        return kept

    kept = blockwise(core_batch._KEPT_VALUES)
    assert kept[-1] > kept[0] * 3 // 2  # later blocks find some triples, not all
    # a budget that holds a block's triples (17 values each) but not all of them
    cap = kept[0] * 5 // 4
    kept = blockwise(17 * cap)
    assert max(kept) <= cap
    assert any(b < a for a, b in itertools.pairwise(kept))  # it started again

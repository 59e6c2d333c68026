"""The analytic predictor on hand-built graphs: consistency, the batch API, compression,
FPGA resources, ASIC area, and the ``autochip predict`` command."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autochip.commands import predict as predict_cmd
from autochip.errors import SpecError
from autochip.hw.platform import load_platform
from autochip.hw.spec import BufferSpec, DramSpec, HardwareSpec, PESpec, load_hardware_spec
from autochip.ir import save_graph
from autochip.ir.graph import AccelGraph
from autochip.ir.node import Arithmetic, LoopDims, Node, OpKind
from autochip.predictor.batch import ENERGY_PARTS, config_table, evaluate
from autochip.predictor.estimate import predict
from autochip.predictor.resources import bram_blocks
from autochip.predictor.scalesim_io import read_scalesim_config, read_scalesim_topology
from autochip.predictor.workload import workload_from_graph

ROOT = Path(__file__).resolve().parents[1]
HW = ROOT / "examples" / "hw"


def conv(
    name: str,
    src: str,
    c: int,
    k: int,
    hw_in: int,
    r: int,
    stride: int = 1,
    pad: int = 0,
    groups: int = 1,
    ar: Arithmetic | None = None,
) -> Node:
    p = (hw_in + 2 * pad - r) // stride + 1
    d = LoopDims(
        N=1,
        K=k,
        C=c,
        P=p,
        Q=p,
        R=r,
        S=r,
        H=hw_in,
        W=hw_in,
        stride_h=stride,
        stride_w=stride,
        pad_h=pad,
        pad_w=pad,
        groups=groups,
    )
    return Node(
        name,
        OpKind.CONV2D,
        (src,),
        ((1, c, hw_in, hw_in),),
        (1, k, p, p),
        dims=d,
        macs=d.macs,
        arithmetic=ar or Arithmetic(),
    )


def small_cnn(ar: Arithmetic | None = None) -> AccelGraph:
    g = AccelGraph("small_cnn")
    g.add(Node("x", OpKind.INPUT, (), (), (1, 3, 16, 16)))
    g.add(conv("conv1", "x", 3, 8, 16, 3, pad=1, ar=ar))
    g.add(
        Node("relu1", OpKind.ACTIVATION, ("conv1",), ((1, 8, 16, 16),), (1, 8, 16, 16), ops=8 * 256)
    )
    pool = LoopDims(N=1, K=8, C=8, P=8, Q=8, R=2, S=2, H=16, W=16, stride_h=2, stride_w=2, groups=8)
    g.add(
        Node(
            "pool1",
            OpKind.MAXPOOL,
            ("relu1",),
            ((1, 8, 16, 16),),
            (1, 8, 8, 8),
            dims=pool,
            ops=8 * 64 * 3,
        )
    )
    g.add(conv("dw2", "pool1", 8, 8, 8, 3, pad=1, groups=8, ar=ar))
    g.add(conv("pw2", "dw2", 8, 16, 8, 1, ar=ar))
    g.add(Node("flat", OpKind.RESHAPE, ("pw2",), ((1, 16, 8, 8),), (1, 1024)))
    fc = LoopDims(N=1, K=10, C=1024)
    g.add(
        Node(
            "fc",
            OpKind.LINEAR,
            ("flat",),
            ((1, 1024),),
            (1, 10),
            dims=fc,
            macs=fc.macs,
            arithmetic=ar or Arithmetic(),
        )
    )
    g.add(Node("out", OpKind.OUTPUT, ("fc",), ((1, 10),), (1, 10)))
    return g


def test_estimate_adds_up() -> None:
    g = small_cnn()
    hw = load_hardware_spec(HW / "os16x16_int8.yaml")
    est = predict(g, hw, load_platform("asic-45nm"))
    t = est.total
    layers = est.layers
    assert list(layers["name"]) == ["conv1", "relu1", "pool1", "dw2", "pw2", "fc"]
    assert t.macs == sum(n.macs for n in g)  # the IR's own MAC count
    assert t.cycles == int(layers["cycles"].sum() + layers["stall_cycles"].sum())
    assert t.latency_s == pytest.approx(t.cycles / (hw.clock_mhz * 1e6))
    assert t.throughput_ips == pytest.approx(1 / t.latency_s)
    assert t.energy_pj == pytest.approx(sum(est.energy_breakdown.values()))
    assert t.energy_pj == pytest.approx(layers["energy_pj"].sum())
    assert t.power_w == pytest.approx(t.energy_pj * 1e-12 / t.latency_s)
    assert t.gops == pytest.approx(2 * t.macs / t.latency_s / 1e9)
    assert set(est.energy_breakdown) == set(ENERGY_PARTS)
    assert all(v >= 0 for v in est.energy_breakdown.values())
    assert ((layers["utilization"] >= 0) & (layers["utilization"] <= 1)).all()
    assert est.area is not None and est.resources is None
    a = est.area
    tech = load_platform("asic-45nm").tech
    assert a.pe_array == pytest.approx(256 * tech.pe_area_um2(hw.pe))
    assert a.total == pytest.approx(a.pe_array + 3 * tech.sram_area_um2(64 * 1024))


def _random_specs(n: int, seed: int) -> list[HardwareSpec]:
    rng = random.Random(seed)
    specs = []
    for i in range(n):
        bw = rng.choice([1.0, 4.0, 16.0])
        specs.append(
            HardwareSpec(
                f"h{i}",
                PESpec(),
                rng.randint(1, 40),
                rng.randint(1, 40),
                rng.choice(["os", "ws", "is"]),
                BufferSpec(rng.choice([512, 8192, 65536]), 2, bw),
                BufferSpec(rng.choice([512, 8192, 65536]), 1, bw),
                BufferSpec(4096, 1, bw),
                DramSpec(rng.choice([0.5, 2.0, 8.0])),
                100.0,
            )
        )
    return specs


def test_batch_equals_batches_of_one() -> None:
    """The batch API and the scalar path are one model: row i of a batch is a batch of one."""
    wl = workload_from_graph(small_cnn())
    plat = load_platform("asic-45nm")
    specs = _random_specs(25, seed=7)
    batch = evaluate(wl, config_table(specs, plat))
    for i, hw in enumerate(specs):
        one = evaluate(wl, config_table([hw], plat))
        np.testing.assert_array_equal(batch.cycles[i], one.cycles[0])
        np.testing.assert_array_equal(batch.stall_cycles[i], one.stall_cycles[0])
        np.testing.assert_allclose(batch.energy_total[i], one.energy_total[0], rtol=1e-12)
        est = predict(small_cnn(), hw, plat)
        assert est.total.compute_cycles == int(batch.cycles[i].sum())


def test_grouped_conv_is_groups_times_one_group() -> None:
    """Depthwise 3x3 over 8 channels = 8 single-channel layers, exactly as SCALE-Sim splits a
    'DP' layer into '<name>Channel_<i>' layers."""
    plat = load_platform("asic-45nm")
    g = AccelGraph("dw")
    g.add(Node("x", OpKind.INPUT, (), (), (1, 8, 10, 10)))
    g.add(conv("dw", "x", 8, 8, 10, 3, groups=8))
    one = AccelGraph("one")
    one.add(Node("x", OpKind.INPUT, (), (), (1, 1, 10, 10)))
    one.add(conv("c", "x", 1, 1, 10, 3))
    for df in ("os", "ws", "is"):
        hw = HardwareSpec(
            "h",
            PESpec(),
            4,
            6,
            df,
            BufferSpec(65536),
            BufferSpec(65536),
            BufferSpec(65536),
            DramSpec(1e9),
        )
        grouped = evaluate(workload_from_graph(g), config_table([hw], plat))
        single = evaluate(workload_from_graph(one), config_table([hw], plat))
        assert grouped.cycles[0, 0] == 8 * (single.cycles[0, 0] + 1) - 8
        assert grouped.sram_reads_ifmap[0, 0] == 8 * single.sram_reads_ifmap[0, 0]


def test_depthwise_matches_scalesim_dp_split(tmp_path: Path) -> None:
    cfg = tmp_path / "a.cfg"
    from autochip.predictor.scalesim_ref import write_scalesim_config

    write_scalesim_config(cfg, 4, 6, "ws")
    topo = tmp_path / "t.csv"
    topo.write_text("Layer, H, W, R, S, C, K, Stride,\nDP1, 10, 10, 3, 3, 8, 1, 1,\n")
    wl = read_scalesim_topology(topo)
    assert wl.names == [f"DP1Channel_{i}" for i in range(8)]
    hw = read_scalesim_config(cfg).hw
    plat = load_platform("asic-45nm")
    split = evaluate(wl, config_table([hw], plat))
    g = AccelGraph("dw")
    g.add(Node("x", OpKind.INPUT, (), (), (1, 8, 10, 10)))
    g.add(conv("dw", "x", 8, 8, 10, 3, groups=8))
    grouped = evaluate(workload_from_graph(g), config_table([hw], plat))
    # SCALE-Sim counts each split layer's last-cycle index; the grouped layer does the same
    assert grouped.cycles[0, 0] == split.cycles[0].sum()


def test_more_bandwidth_and_buffer_never_hurt() -> None:
    wl = workload_from_graph(small_cnn())
    plat = load_platform("asic-45nm")
    base = HardwareSpec(
        "b",
        PESpec(),
        8,
        8,
        "ws",
        BufferSpec(1024, 1, 2.0),
        BufferSpec(1024, 1, 2.0),
        BufferSpec(1024, 1, 2.0),
        DramSpec(0.5),
    )
    bigger = [
        HardwareSpec(
            "b2",
            PESpec(),
            8,
            8,
            "ws",
            BufferSpec(1024, 1, 2.0),
            BufferSpec(1024, 1, 2.0),
            BufferSpec(1024, 1, 2.0),
            DramSpec(bw),
        )
        for bw in (0.5, 1.0, 4.0, 64.0)
    ]
    r = evaluate(wl, config_table(bigger, plat))
    stalls = r.stall_cycles.sum(axis=1)
    assert list(stalls) == sorted(stalls, reverse=True) and stalls[0] > stalls[-1]
    np.testing.assert_array_equal(r.cycles[0], r.cycles[-1])  # compute is unchanged
    bufs = [
        HardwareSpec(
            "b3",
            PESpec(),
            8,
            8,
            "ws",
            BufferSpec(kb * 1024),
            BufferSpec(kb * 1024),
            BufferSpec(kb * 1024),
            DramSpec(0.5),
        )
        for kb in (1, 4, 16, 256)
    ]
    rb = evaluate(wl, config_table(bufs, plat))
    dram = (rb.dram_bytes_ifmap + rb.dram_bytes_weight + rb.dram_bytes_ofmap).sum(axis=1)
    assert list(dram) == sorted(dram, reverse=True) and dram[0] > dram[-1]
    assert evaluate(wl, config_table([base], plat)).stall_cycles.sum() == stalls[0]


def test_compressed_layers_cost_less() -> None:
    plat = load_platform("asic-45nm")
    hw = load_hardware_spec(HW / "os16x16_int8.yaml")
    fp = predict(small_cnn(), hw, plat)
    w4 = predict(small_cnn(Arithmetic("mac", "int", 4, 4, 32)), hw, plat)
    assert w4.layers["dram_bytes"].sum() < fp.layers["dram_bytes"].sum()
    assert w4.total.energy_pj < fp.total.energy_pj
    # a binary layer on a 32-lane xnor PE needs ~32x fewer streamed reduction steps (os: T)
    xnor = load_hardware_spec(HW / "xnor16x16_v32.yaml")
    b = predict(small_cnn(Arithmetic("xnor", "int", 1, 1, 16)), xnor, plat)
    mac1 = predict(
        small_cnn(Arithmetic("xnor", "int", 1, 1, 16)),
        HardwareSpec(
            "x1",
            PESpec("xnor", "int", 1, 1, 16, 1),
            16,
            16,
            "os",
            xnor.ifmap,
            xnor.weight,
            xnor.ofmap,
            xnor.dram,
            200.0,
        ),
        plat,
    )
    fc_b = b.layers.set_index("name").loc["fc", "cycles"]
    fc_1 = mac1.layers.set_index("name").loc["fc", "cycles"]
    assert fc_b < fc_1 / 10


def test_arithmetic_notes() -> None:
    plat = load_platform("asic-45nm")
    hw = load_hardware_spec(HW / "os16x16_int8.yaml")
    fp = predict(small_cnn(), hw, plat)
    assert fp.notes == (
        "4 fp32 layers on int8 PEs: costed at the PE's precision (the model must be quantised "
        "to run as predicted) (conv1, dw2, pw2, fc)",
    )
    assert predict(small_cnn(Arithmetic("mac", "int", 8, 8, 32)), hw, plat).notes == ()
    adder = predict(small_cnn(Arithmetic("adder", "int", 8, 8, 32)), hw, plat)
    assert adder.notes[0].startswith("4 adder-int8 layers on int8 PEs: costed as the PE's")


def test_fpga_resources() -> None:
    plat = load_platform("pynq-z2")
    hw = plat.default_hw
    est = predict(small_cnn(), hw, plat)
    r = est.resources
    assert r is not None and est.area is None
    geom = plat.device.bram if plat.device else None
    assert geom is not None
    # 64 kB over 2 banks of RAMB36 (36 Kb, 72 bits wide): ceil(262144 / 36864) = 8 per bank
    assert bram_blocks(BufferSpec(64 * 1024, 2, 16.0), geom) == 16
    # a wide port needs blocks side by side: 64 B/cycle over 1 bank = 512 bits -> 8 blocks
    assert bram_blocks(BufferSpec(4 * 1024, 1, 64.0), geom) == 8
    assert r.bram_buffers == {
        op: bram_blocks(hw.buffer(op), geom) for op in ("ifmap", "weight", "ofmap")
    }
    assert r.available == {"lut": 53200, "ff": 106400, "dsp": 220, "bram": 140}
    if r.lut is not None:  # the RTL library's Yosys-calibrated PE-array model
        assert r.lut > 0 and r.ff > 0
    huge = HardwareSpec(
        "huge",
        PESpec(),
        8,
        8,
        "os",
        BufferSpec(4 << 20),
        BufferSpec(4096),
        BufferSpec(4096),
        DramSpec(8.0),
    )
    over = predict(small_cnn(), huge, plat).resources
    assert over is not None and any(s.startswith("bram:") for s in over.over_budget)


# -- the command --------------------------------------------------------------------------


def run_cli(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    predict_cmd.add_arguments(parser)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = predict_cmd.run(parser.parse_args(argv))
    return code, buf.getvalue()


@pytest.fixture
def graph_json(tmp_path: Path) -> Path:
    p = tmp_path / "small_cnn.json"
    save_graph(small_cnn(), p)
    return p


def test_cli_json_fpga(graph_json: Path, tmp_path: Path) -> None:
    csv = tmp_path / "layers.csv"
    png = tmp_path / "plot.png"
    code, out = run_cli(
        [str(graph_json), "--platform", "pynq-z2", "--json", "--csv", str(csv), "--plot", str(png)]
    )
    assert code == 0
    d: dict[str, Any] = json.loads(out)
    assert set(d["total"]) >= {"cycles", "latency_s", "throughput_ips", "energy_pj", "power_w"}
    assert set(d["energy_breakdown"]) == set(ENERGY_PARTS)
    assert set(d["resources"]) >= {"lut", "ff", "dsp", "bram"} and "area_um2" not in d
    assert [x["name"] for x in d["layers"]] == ["conv1", "relu1", "pool1", "dw2", "pw2", "fc"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(csv.read_text().splitlines()) == 1 + 6


def test_cli_asic_hw_and_table(graph_json: Path) -> None:
    code, out = run_cli(
        [
            str(graph_json),
            "--hw",
            str(HW / "ws32x32_int8.yaml"),
            "--platform",
            "asic-16nm",
            "--json",
        ]
    )
    d = json.loads(out)
    assert code == 0 and d["hardware"] == "ws32x32-int8" and d["platform"] == "asic-16nm"
    assert d["area_um2"]["total"] > 0 and "resources" not in d
    code, text = run_cli([str(graph_json), "--hw", str(HW / "ws32x32_int8.yaml")])
    assert code == 0 and "asic-45nm" in text and "conv1" in text and "area" in text


def test_cli_bad_input_writes_nothing(graph_json: Path, tmp_path: Path) -> None:
    csv = tmp_path / "out.csv"
    with pytest.raises(SpecError, match=r"--plot x\.jpg: expected a \.png file name"):
        run_cli([str(graph_json), "--platform", "pynq-z2", "--csv", str(csv), "--plot", "x.jpg"])
    assert not csv.exists()
    with pytest.raises(SpecError, match=r"expected --platform NAME or --hw HW\.yaml"):
        run_cli([str(graph_json)])
    with pytest.raises(SpecError, match=r"found unknown platform 'zynq'"):
        run_cli([str(graph_json), "--platform", "zynq"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("array: {rows: 0, cols: 4}\ndataflow: xs\n")
    with pytest.raises(
        SpecError,
        match=r"2 problems:\n  - .*bad.yaml: array.rows: .*\n  - .*bad"
        r".yaml: dataflow: ",
    ):
        run_cli([str(graph_json), "--hw", str(bad)])
    # the command line, the platform and the spec: every problem in one error
    with pytest.raises(
        SpecError,
        match=r"4 problems:\n  - --csv .*found no folder.*\n  - "
        r"--platform: .*found unknown platform 'pynq' \(did you mean 'pynq-z2'"
        r"\?\)\n  - .*bad.yaml: array.rows",
    ):
        run_cli(
            [
                str(graph_json),
                "--platform",
                "pynq",
                "--hw",
                str(bad),
                "--csv",
                str(tmp_path / "no" / "x.csv"),
            ]
        )


def test_scalesim_inputs_bad(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("[architecture_presets]\nArrayHeight: 0\nArrayWidth: x\nDataflow: rs\n")
    with pytest.raises(SpecError) as info:
        read_scalesim_config(cfg)
    msg = str(info.value)
    for part in (
        "ArrayHeight: expected a positive integer, found 0",
        "ArrayWidth: expected a positive integer, found 'x'",
        "IfmapSramSzkB: required, not given",
        "Dataflow: expected one of ['os', 'ws', 'is'], found 'rs'",
    ):
        assert part in msg
    topo = tmp_path / "bad.csv"
    topo.write_text(
        "Layer, H, W, R, S, C, K, Stride,\nc1, 8, 8, 3, 3, 3,\nc2, 8, 8, 9, 3, 3, 4, 1,\n"
        "c3, 8, eight, 3, 3, 3, 4, 1,\n"
    )
    with pytest.raises(
        SpecError,
        match=r"3 problems:\n  - line 2: expected 8 fields .*\n  - line 3 "
        r"\(c2\): filter 9x3 is larger than the ifmap 8x8.*\n  - line 4 \(c3\): "
        r"IFMAP width: expected a positive integer, found 'eight'",
    ):
        read_scalesim_topology(topo)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SpecError, match="found an empty file"):
        read_scalesim_topology(empty)
    with pytest.raises(SpecError, match=r"expected a SCALE-Sim config file, found no file"):
        read_scalesim_config(tmp_path / "none.cfg")


def test_scalesim_without_trailing_commas(tmp_path: Path) -> None:
    """SCALE-Sim drops the last field of every row (its rows end with a comma); autochip reads
    rows with or without the trailing comma the same way."""
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    a.write_text("Layer, M, N, K,\ng, 7, 9, 11,\n")
    b.write_text("Layer,M,N,K\ng,7,9,11\n")
    wa, wb = read_scalesim_topology(a), read_scalesim_topology(b)
    assert (wa.M[0], wa.F[0], wa.Kw[0]) == (wb.M[0], wb.F[0], wb.Kw[0]) == (7, 9, 11)
    assert math.isclose(float(wa.in_elems[0]), 77.0)


@pytest.mark.slow
def test_cli_end_to_end_zoo_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``autochip predict`` through the real CLI on a traced zoo model."""
    from autochip.cli import main
    from autochip.ir import graph_for

    assert main(["predict", "lenet_digits", "--platform", "pynq-z2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    graph = graph_for("lenet_digits")
    assert d["total"]["macs"] == sum(n.macs for n in graph)
    computes = [n.name for n in graph if n.is_compute]
    assert [x["name"] for x in d["layers"] if x["macs"] > 0] == computes
    bad = tmp_path / "hw.yaml"
    bad.write_text("array: {rows: 4, colums: 4}\n")
    assert main(["predict", "lenet_digits", "--hw", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "colums: unknown key" in err and "did you mean 'cols'" in err
    assert "Traceback" not in err


def test_platform_defaults_fit_their_devices() -> None:
    from autochip.hw.platform import platform_names
    from autochip.predictor.resources import fpga_usage

    for name in platform_names():
        plat = load_platform(name)
        if not plat.is_fpga:
            continue
        use = fpga_usage(plat.default_hw, plat)
        assert use.over_budget == [], (name, use.over_budget)


def test_rtl_fidelity_matches_rtl_model() -> None:
    """``fidelity='rtl'`` counts cycles as autochip's own os array runs, per the RTL library's
    formulas (verified there against cocotb simulation)."""
    from autochip.predictor.rtl_model import os_gemm_cycles

    wl = workload_from_graph(small_cnn())
    plat = load_platform("asic-45nm")
    specs = [s for s in _random_specs(30, seed=3) if s.dataflow == "os"]
    res = evaluate(wl, config_table(specs, plat), fidelity="rtl")
    for i, hw in enumerate(specs):
        for j, row in enumerate(wl.rows):
            if row.op in ("conv2d", "linear"):
                want = row.G * os_gemm_cycles(row.M, row.Kw, row.F, hw.rows, hw.cols)
                assert res.cycles[i, j] == want, (hw, row)
    ws = [s for s in _random_specs(10, seed=3) if s.dataflow != "os"]
    with pytest.raises(SpecError, match=r"autochip's RTL array is output-stationary"):
        evaluate(wl, config_table(ws, plat), fidelity="rtl")


def test_scalesim_topology_quirks_of_real_files(tmp_path: Path) -> None:
    """Forms found in SCALE-Sim's own topologies/ (mobilnet_paper.csv, sparsity/gemm.csv): a
    blank line after the header, tab-indented rows, a '#dw' comment after the last comma, a row
    without its trailing comma, and a GEMM sparsity column."""
    conv = tmp_path / "m.csv"
    conv.write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
        "Num Filter, Strides,\n\nConv1, 224, 224, 3, 3, 3, 32, 2,\n"
        "Conv2_dw, 112, 112, 3, 3, 1, 1, 1,#dw\n\tConv15_0,14,14,1,1,512,512,1,\n"
        "Conv11,28,28,1,1,256,256,1\n"
    )
    wl = read_scalesim_topology(conv)
    assert wl.names == ["Conv1", "Conv2_dw", "Conv15_0", "Conv11"]
    assert list(wl.M) == [112 * 112, 110 * 110, 14 * 14, 28 * 28]
    assert list(wl.Kw) == [27, 9, 512, 256]
    gemm = tmp_path / "g.csv"
    gemm.write_text("Layer Name, M, N, K, Sparsity,\nGEMM_1, 3, 5, 16, 3:4,\n")
    g = read_scalesim_topology(gemm)
    assert (g.M[0], g.F[0], g.Kw[0]) == (3, 5, 16)


def test_first_tile_fill_is_exposed() -> None:
    """Double buffering hides transfers behind compute except the first fold's operands."""
    g = AccelGraph("one")
    g.add(Node("x", OpKind.INPUT, (), (), (1, 1, 10, 10)))
    g.add(conv("c", "x", 1, 4, 10, 3, ar=Arithmetic("mac", "int", 8, 8, 32)))
    wl = workload_from_graph(g)
    plat = load_platform("asic-45nm")
    big = BufferSpec(1 << 20, 1, 1e6)
    specs = [
        HardwareSpec(f"bw{bw}", PESpec(), 4, 4, "os", big, big, big, DramSpec(bw))
        for bw in (1.0, 1e9)
    ]
    r = evaluate(wl, config_table(specs, plat))
    # os: the first fold needs R x T ifmap words and T x C weights (T = 9): 36 + 36 bytes
    assert r.stall_cycles[0, 0] >= 72
    assert r.stall_cycles[1, 0] <= 1
    assert r.cycles[0, 0] == r.cycles[1, 0]


def test_vector_layers_take_their_producers_data_width() -> None:
    """Pooling in an int4 network moves int4 data; in a float network, fp32."""
    int4 = Arithmetic(kind="mac", dtype="int", w_bits=4, a_bits=4, acc_bits=32)
    rows = {r.name: r for r in workload_from_graph(small_cnn(int4)).rows}
    assert (rows["relu1"].a_bits, rows["relu1"].arithmetic) == (4, "int4")
    assert (rows["pool1"].a_bits, rows["pool1"].arithmetic) == (4, "int4")
    rows = {r.name: r for r in workload_from_graph(small_cnn()).rows}
    assert (rows["pool1"].a_bits, rows["pool1"].arithmetic) == (32, "fp32")

"""The analytic model against SCALE-Sim 3.0.0 itself, run here on small topologies.

Each case writes a SCALE-Sim config and topology, runs ``scalesim`` in-process, and runs
``autochip predict --scalesim-config/--scalesim-topology --json`` on the same files. Per layer,
compute cycles (SCALE-Sim's "Total Cycles" minus its "Stall Cycles"), overall utilisation (when
nothing stalls), mapping efficiency, compute utilisation and SRAM reads/writes per operand must
agree; the issue asks for 1 %, the model is exact on all of these cases.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pytest

from autochip.commands import predict as predict_cmd
from autochip.predictor.scalesim_ref import run_scalesim, write_scalesim_config

CONV_HEADER = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
    "Num Filter, Strides,"
)

# odd shapes, strides 1-3, 1x1 and non-square filters, a depthwise (DP) layer, an FC layer
ODD_CONV = [
    "c1, 13, 11, 3, 3, 3, 10, 1,",
    "c2, 15, 9, 5, 3, 7, 5, 2,",
    "c3, 9, 9, 1, 1, 17, 33, 1,",
    "c4, 12, 10, 4, 4, 5, 3, 3,",
    "DP5, 8, 8, 3, 3, 3, 1, 1,",
    "fc6, 1, 1, 1, 1, 40, 11, 1,",
]
GEMM = ["g1, 17, 9, 23,", "g2, 5, 31, 7,", "g3, 1, 40, 64,"]


def _random_conv(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        r, s = rng.randint(1, 5), rng.randint(1, 5)
        h, w = rng.randint(max(r, 3), 14), rng.randint(max(s, 3), 14)
        rows.append(
            f"r{i}, {h}, {w}, {r}, {s}, {rng.randint(1, 9)}, {rng.randint(1, 24)}, "
            f"{rng.randint(1, 3)},"
        )
    return rows


# (id, rows, cols, dataflow, topology rows, gemm?, USER bandwidth or None for CALC, SRAM kB)
CASES = [
    ("os-8x8-odd", 8, 8, "os", ODD_CONV, False, None, 64),
    ("ws-4x7-odd", 4, 7, "ws", ODD_CONV, False, None, 64),
    ("is-6x5-odd", 6, 5, "is", ODD_CONV, False, None, 64),
    ("os-5x3-gemm", 5, 3, "os", GEMM, True, None, 64),
    ("ws-8x8-gemm", 8, 8, "ws", GEMM, True, None, 64),
    ("is-3x9-gemm", 3, 9, "is", GEMM, True, None, 64),
    ("os-7x4-random", 7, 4, "os", _random_conv(1, 6), False, None, 64),
    ("ws-3x6-random", 3, 6, "ws", _random_conv(2, 6), False, None, 64),
    ("is-9x4-random", 9, 4, "is", _random_conv(3, 6), False, None, 64),
    ("ws-5x8-user-bw", 5, 8, "ws", ODD_CONV[:4], False, 2, 1),
    ("os-8x4-user-bw", 8, 4, "os", ODD_CONV[:4], False, 4, 1),
]


def _autochip_json(cfg: Path, topo: Path) -> dict[str, object]:
    parser = argparse.ArgumentParser()
    predict_cmd.add_arguments(parser)
    args = parser.parse_args(
        ["--scalesim-config", str(cfg), "--scalesim-topology", str(topo), "--json"]
    )
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert predict_cmd.run(args) == 0
    out: dict[str, object] = json.loads(buf.getvalue())
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rows", "cols", "dataflow", "layers", "gemm", "bandwidth", "sram_kb"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_agrees_with_scalesim(
    tmp_path: Path,
    rows: int,
    cols: int,
    dataflow: str,
    layers: list[str],
    gemm: bool,
    bandwidth: int | None,
    sram_kb: int,
) -> None:
    cfg = tmp_path / "arch.cfg"
    write_scalesim_config(cfg, rows, cols, dataflow, (sram_kb,) * 3, bandwidth)
    topo = tmp_path / "topo.csv"
    header = "Layer, M, N, K," if gemm else CONV_HEADER
    topo.write_text("\n".join([header, *layers]) + "\n")
    ref = run_scalesim(cfg, topo, gemm=gemm)
    got = _autochip_json(cfg, topo)
    mine = got["layers"]
    assert isinstance(mine, list)
    assert len(mine) == len(ref)
    for m, s in zip(mine, ref, strict=True):
        compute = s.cycles - s.stall_cycles  # SCALE-Sim's Total Cycles include stalls
        assert m["cycles"] == pytest.approx(compute, rel=0.01), m["name"]
        assert m["cycles"] == compute, m["name"]  # in fact exact
        # autochip's JSON has fractions, SCALE-Sim's report percent
        assert 100 * m["mapping_efficiency"] == pytest.approx(s.mapping_efficiency, rel=1e-9)
        assert 100 * m["compute_utilization"] == pytest.approx(s.compute_utilization, rel=1e-9)
        assert m["sram_reads"]["ifmap"] == s.sram_ifmap_reads
        assert m["sram_reads"]["filter"] == s.sram_filter_reads
        assert m["sram_writes"]["ofmap"] == s.sram_ofmap_writes
        if s.stall_cycles == 0 and m["stall_cycles"] == 0:
            assert 100 * m["utilization"] == pytest.approx(s.utilization, rel=1e-9)
    if bandwidth is None:  # CALC mode: SCALE-Sim sizes the bandwidth, nothing stalls
        assert all(m["stall_cycles"] == 0 for m in mine)
        assert all(s.stall_cycles == 0 for s in ref)
        assert got["total_cycles"] == sum(s.cycles for s in ref)
    else:  # a starved DRAM port stalls in both models (the analytic stall is an estimate)
        assert sum(m["stall_cycles"] for m in mine) > 0
        assert sum(s.stall_cycles for s in ref) > 0


@pytest.mark.slow
def test_reference_golden_alexnet_part_ws32(tmp_path: Path) -> None:
    """REFERENCE.md: SCALE-Sim alexnet_part on ws 32x32, 64 kB SRAMs: 112,283 cycles, 0 stalls,
    mapping efficiency 94.531 %, compute utilisation 90.78 % (SCALE-Sim's test/golden_trace).
    SCALE-Sim 3.0.0 reproduces it (run here), and so does the analytic model."""
    cfg = tmp_path / "scale.cfg"
    write_scalesim_config(cfg, 32, 32, "ws", (64, 64, 64), None)
    topo = tmp_path / "alexnet_part.csv"
    topo.write_text(CONV_HEADER + "\nConv1, 224, 224, 11, 11, 3, 96, 4,\n")
    (ref,) = run_scalesim(cfg, topo)
    assert (ref.cycles, ref.stall_cycles) == (112283, 0)
    assert ref.mapping_efficiency == pytest.approx(94.531, abs=1e-3)
    assert ref.compute_utilization == pytest.approx(90.78, abs=1e-2)
    (mine,) = _autochip_json(cfg, topo)["layers"]  # type: ignore[misc]
    assert mine["cycles"] == 112283 and mine["stall_cycles"] == 0
    assert mine["mapping_efficiency"] == pytest.approx(0.94531, abs=1e-5)
    assert mine["compute_utilization"] == pytest.approx(0.9078, abs=1e-4)
    assert 100 * mine["utilization"] == pytest.approx(ref.utilization, rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_stalls_follow_scalesim_memory(tmp_path: Path, dataflow: str) -> None:
    """Under a USER bandwidth of 10 words/cycle and 64 kB SRAMs, the layers that stall in
    SCALE-Sim are the layers that stall in the model (an operand matrix larger than half its
    SRAM, streamed once per pass), and the stall counts agree within a factor of two (SCALE-Sim's
    read buffer adds each wait twice, read_buffer.py service_reads)."""
    cfg = tmp_path / "arch.cfg"
    write_scalesim_config(cfg, 16, 16, dataflow, (64, 64, 64), 10)
    topo = tmp_path / "topo.csv"
    rows = [
        "conv1, 34, 34, 3, 3, 3, 32, 1,",
        "conv2, 34, 34, 3, 3, 32, 32, 2,",
        "conv4, 16, 16, 1, 1, 64, 128, 2,",
    ]
    topo.write_text("\n".join([CONV_HEADER, *rows]) + "\n")
    ref = run_scalesim(cfg, topo)
    mine = _autochip_json(cfg, topo)["layers"]
    assert isinstance(mine, list)
    for m, s in zip(mine, ref, strict=True):
        assert (m["stall_cycles"] == 0) == (s.stall_cycles == 0), m["name"]
        if s.stall_cycles:
            assert 0.5 <= m["stall_cycles"] / s.stall_cycles <= 2.0, (m, s)
    assert sum(s.stall_cycles for s in ref) > 0

"""Peer analytic tools reproduced with the same unit costs: Timeloop exercise 01 and ZigZag
``gemm_l1`` (figures from ../shared/REFERENCE.md; ZigZag 3.9.1 is also run here)."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import pytest

from autochip.hw.platform import load_platform
from autochip.hw.spec import BufferSpec, DramSpec, HardwareSpec, PESpec
from autochip.predictor.batch import config_table, evaluate
from autochip.predictor.loopnest import LoopNest, Operand, evaluate_loopnest
from autochip.predictor.workload import GEMM, LayerRow, workload_from_rows

# -- Timeloop tutorial exercise 01: 1-D convolution R=3, P=16, output-stationary, one MAC -------
# Published: 48 cycles, 100 % utilisation; buffer: weight 48 reads / 3 fills, input 48 reads /
# 18 fills, output 48 updates. Timeloop's MAC has no operand registers in this exercise.


def _timeloop_nest(mac_pj: float, read_pj: float, write_pj: float) -> LoopNest:
    ops = (
        Operand("W", (("R",),), 8, "buf", 8),
        Operand("I", (("P", "R"),), 8, "buf", 8),
        Operand("O", (("P",),), 8, "buf", 8, is_output=True),
    )
    return LoopNest(
        bounds={"R": 3, "P": 16},
        spatial=(),
        temporal=(("R", 3), ("P", 16)),  # output-stationary: R innermost
        operands=ops,
        port_bits_per_cycle={"buf": 32},  # a W, an I, an O read and an O write per cycle
        mac_pj=mac_pj,
        read_pj=read_pj,
        write_pj=write_pj,
        array_holds_operands=False,
    )


def test_timeloop_exercise01_loopnest() -> None:
    tech = load_platform("asic-45nm").tech
    mac = tech.pe_op_energy_pj(PESpec())
    rd = tech.sram_read_pj_per_bit(64 * 1024) * 8
    wr = tech.sram_write_pj_per_bit(64 * 1024) * 8
    r = evaluate_loopnest(_timeloop_nest(mac, rd, wr))
    assert r.cycles == 48
    assert r.utilization == 1.0
    assert r.elementwise_reads["W"] == 48 and r.fills["W"] == 3
    assert r.elementwise_reads["I"] == 48 and r.fills["I"] == 18
    assert r.writes["O"] == 48  # updates
    # energy with autochip's 45 nm unit costs: 48 MACs + 48x3 reads + 48 output writes
    assert r.energy == pytest.approx(48 * mac + 48 * 3 * rd + 48 * wr)


def test_timeloop_exercise01_systolic_model() -> None:
    """The same 1-D convolution through the main predictor on a 1x1 output-stationary array:
    SRAM reads and DRAM fills match; cycles follow SCALE-Sim's convention (the index of the
    last cycle, so one less than Timeloop's count of cycles)."""
    hw = HardwareSpec(
        "tl-ex01",
        PESpec(),
        1,
        1,
        "os",
        BufferSpec(1024),
        BufferSpec(1024),
        BufferSpec(1024),
        DramSpec(1e9),
    )
    row = LayerRow(
        "conv1d",
        "conv2d",
        GEMM,
        M=16,
        F=1,
        Kw=3,
        G=1,
        in_elems=18,
        w_elems=3,
        out_elems=16,
        w_bits=8,
        a_bits=8,
    )
    res = evaluate(workload_from_rows("tl", [row]), config_table([hw], load_platform("asic-45nm")))
    assert int(res.cycles[0, 0]) + 1 == 48
    assert res.sram_reads_weight[0, 0] == 48
    assert res.sram_reads_ifmap[0, 0] == 48
    assert res.dram_bytes_weight[0, 0] == 3  # weight fills
    assert res.dram_bytes_ifmap[0, 0] == 18  # input fills
    assert res.pe_ops[0, 0] == 48


# -- ZigZag tests/main/test_origin/test_gemm_l1.py: 128^3 GEMM, 8/8/32-bit, 8x8x8 MACs ---------
# 0.04 pJ/MAC, 4 MB L1 at 22.9 pJ read / 52.01 pJ write, 32-bit output registers at 0.02 pJ.
# Published: 511,349.76 pJ and 8,191 cycles.
ZZ_ENERGY = 511349.76
ZZ_CYCLES = 8191


def _zigzag_nest() -> LoopNest:
    ops = (
        Operand("I", (("D0",), ("D2",)), 8, "rw1", 512),
        Operand("W", (("D2",), ("D1",)), 8, "rw2", 512),
        Operand("O", (("D0",), ("D1",)), 32, "rw3", 2048, is_output=True),
    )
    return LoopNest(
        bounds={"D0": 128, "D1": 128, "D2": 128},
        spatial=(("D0", 8), ("D2", 8), ("D1", 8)),
        temporal=(("D1", 16), ("D2", 16), ("D0", 16)),
        operands=ops,
        port_bits_per_cycle={"rw1": 512, "rw2": 512, "rw3": 2048},
        mac_pj=0.04,
        read_pj=22.9,
        write_pj=52.01,
        array_holds_operands=True,
        out_reg_pj=0.02,
    )


def test_zigzag_gemm_l1_published() -> None:
    r = evaluate_loopnest(_zigzag_nest())
    assert r.energy == pytest.approx(ZZ_ENERGY, rel=1e-12)
    assert r.energy_mac == pytest.approx(2**21 * 0.04)
    assert (r.reads["I"], r.reads["W"], r.reads["O"], r.writes["O"]) == (256, 4096, 4096, 4096)
    # ZigZag overlaps one cycle of the output port's traffic that this model does not
    assert r.cycles == pytest.approx(ZZ_CYCLES, rel=2e-4)


@pytest.mark.slow
def test_zigzag_gemm_l1_run(tmp_path: Path) -> None:
    """Run ZigZag 3.9.1 itself on its own gemm_l1 hardware and mapping files."""
    api = pytest.importorskip("zigzag.api")
    inputs = resources.files("zigzag") / "inputs"
    workload = tmp_path / "gemm_layer.yaml"
    workload.write_text(
        "- id: 0\n  operator_type: Gemm\n  equation: O[d0][d1]+=I[d0][d2]*W[d2][d1]\n"
        "  dimension_relations: []\n  loop_dims: [D0, D1, D2]\n  loop_sizes: [128, 128, 128]\n"
        "  operand_precision: {W: 8, I: 8, O: 32, O_final: 32}\n  operand_source: {I: 0, W: 0}\n"
    )
    logging.disable(logging.INFO)
    try:
        energy, latency, _ = api.get_hardware_performance_zigzag(
            str(workload),
            str(inputs / "hardware" / "gemm_l1.yaml"),
            str(inputs / "mapping" / "gemm_l1.yaml"),
            lpf_limit=3,
            dump_folder=str(tmp_path / "out"),
            pickle_filename=str(tmp_path / "out" / "cmes.pickle"),
        )
    finally:
        logging.disable(logging.NOTSET)
    assert energy == pytest.approx(ZZ_ENERGY)
    assert latency == pytest.approx(ZZ_CYCLES)
    r = evaluate_loopnest(_zigzag_nest())
    assert r.energy == pytest.approx(energy, rel=1e-9)
    assert r.cycles == pytest.approx(latency, rel=2e-4)

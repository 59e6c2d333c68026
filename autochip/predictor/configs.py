"""Hardware configurations as column arrays, with their unit costs resolved on a platform.

Built once per batch by :func:`config_table` and consumed by
:func:`autochip.predictor.batch.evaluate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from autochip.hw.platform import Platform
from autochip.hw.spec import DATAFLOWS, OPERANDS, HardwareSpec, PESpec

__all__ = ["ConfigTable", "config_table"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ConfigTable:
    """Hardware configurations as column arrays of shape (configs, 1), with unit costs resolved."""

    specs: tuple[HardwareSpec, ...]
    rows: F64
    cols: F64
    dataflow: F64  # index into DATAFLOWS
    vector: F64
    w_bits: F64
    a_bits: F64
    acc_bits: F64
    buf_bytes: F64  # (configs, 3): ifmap, weight, ofmap
    buf_bw: F64  # (configs, 3) bytes per cycle, all banks
    dram_bw: F64
    clock_hz: F64
    e_pe_op: F64  # pJ per PE operation
    e_vec_op: F64  # pJ per post-processing op
    e_reg_op: F64  # pJ of register traffic per PE operation
    e_sram_rd: F64  # (configs, 3) pJ per bit read
    e_sram_wr: F64  # (configs, 3) pJ per bit written
    e_dram_bit: F64
    leak_w: F64

    def __len__(self) -> int:
        return len(self.specs)


def config_table(specs: Sequence[HardwareSpec], platform: Platform) -> ConfigTable:
    """Resolve the unit costs of each configuration on ``platform``.

    Unit costs depend only on the PE and on buffer sizes, so each distinct value is looked up
    once (a design space repeats them many times)."""
    tech = platform.tech
    pe_cost: dict[PESpec, tuple[float, float, float, float]] = {}
    sram_cost: dict[int, tuple[float, float, float]] = {}

    def pe_costs(pe: PESpec) -> tuple[float, float, float, float]:
        if pe not in pe_cost:
            pe_cost[pe] = (
                tech.pe_op_energy_pj(pe),
                tech.add_energy_pj(pe.acc_bits, pe.dtype),
                tech.register_energy_pj(pe.vector * (pe.w_bits + pe.a_bits) + pe.acc_bits),
                tech.pe_area_um2(pe),
            )
        return pe_cost[pe]

    def sram_costs(size: int) -> tuple[float, float, float]:
        if size not in sram_cost:
            sram_cost[size] = (
                tech.sram_read_pj_per_bit(size),
                tech.sram_write_pj_per_bit(size),
                tech.sram_area_um2(size),
            )
        return sram_cost[size]

    n = len(specs)
    sc = np.empty((n, 13), dtype=np.float64)
    ops = np.empty((n, 4, 3), dtype=np.float64)  # size, bandwidth, read pJ/bit, write pJ/bit
    static_w = platform.device.static_power_w if platform.device is not None else None
    for i, hw in enumerate(specs):
        pe = hw.pe
        e_pe, e_vec, e_reg, a_pe = pe_costs(pe)
        area = hw.num_pes * a_pe
        for j, op in enumerate(OPERANDS):
            buf = hw.buffer(op)
            rd, wr, a_sram = sram_costs(buf.size_bytes)
            ops[i, :, j] = (buf.size_bytes, buf.bandwidth * buf.banks, rd, wr)
            area += a_sram
        leak = static_w if static_w is not None else tech.leakage_w(area)
        sc[i] = (
            hw.rows,
            hw.cols,
            DATAFLOWS.index(hw.dataflow),
            pe.vector,
            pe.w_bits,
            pe.a_bits,
            pe.acc_bits,
            hw.dram.bandwidth,
            hw.clock_mhz * 1e6,
            e_pe,
            e_vec,
            e_reg,
            leak,
        )

    def col(k: int) -> F64:
        return sc[:, k : k + 1].copy()

    return ConfigTable(
        specs=tuple(specs),
        rows=col(0),
        cols=col(1),
        dataflow=col(2),
        vector=col(3),
        w_bits=col(4),
        a_bits=col(5),
        acc_bits=col(6),
        buf_bytes=ops[:, 0, :].copy(),
        buf_bw=ops[:, 1, :].copy(),
        dram_bw=col(7),
        clock_hz=col(8),
        e_pe_op=col(9),
        e_vec_op=col(10),
        e_reg_op=col(11),
        e_sram_rd=ops[:, 2, :].copy(),
        e_sram_wr=ops[:, 3, :].copy(),
        e_dram_bit=np.full((n, 1), tech.dram_pj_per_bit),
        leak_w=col(12),
    )

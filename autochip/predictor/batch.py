"""The vectorised model: many hardware configurations x all layers in one numpy pass.

``evaluate(workload, configs)`` returns arrays of shape (configs, layers). The scalar
:func:`autochip.predictor.predict` is a batch of one through this same function; there is no
second model. Equations (see docs/predictor.md):

    dataflow   Sr (array rows)   Sc (array cols)   T (streamed)
    os         M                 F                 Kw'
    ws         Kw'               F                 M
    is         Kw'               M                 F          (Kw' = ceil(Kw / vector))

    folds = ceil(Sr / R) * ceil(Sc / C)
    cycles = G * (folds * (T + R + C - 2) - 1)          os
    cycles = G * (folds * (2R + C + T - 2) - 1)         ws, is

which is SCALE-Sim 3.0.0's "Total Cycles" of a layer without bandwidth stalls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from autochip.errors import SpecError
from autochip.hw.platform import Platform
from autochip.hw.spec import DATAFLOWS, OPERANDS, HardwareSpec, PESpec
from autochip.predictor.workload import VECTOR, Workload

__all__ = ["ENERGY_PARTS", "BatchResult", "ConfigTable", "config_table", "evaluate"]

F64 = npt.NDArray[np.float64]

ENERGY_PARTS = ("compute", "register", "sram_ifmap", "sram_weight", "sram_ofmap", "dram", "leakage")


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


@dataclass(frozen=True)
class BatchResult:
    """Per (configuration, layer) arrays. Counts are words of the operand; energies pJ."""

    cycles: F64
    stall_cycles: F64
    row_folds: F64
    col_folds: F64
    mapping_efficiency: F64
    utilization: F64
    compute_utilization: F64
    pe_ops: F64
    sram_reads_ifmap: F64
    sram_reads_weight: F64
    sram_writes_ofmap: F64
    dram_bytes_ifmap: F64
    dram_bytes_weight: F64
    dram_bytes_ofmap: F64
    energy: dict[str, F64]

    @property
    def total_cycles(self) -> F64:
        return self.cycles + self.stall_cycles

    @property
    def energy_total(self) -> F64:
        return sum((self.energy[p] for p in ENERGY_PARTS), np.zeros_like(self.cycles))


def _ceil_div(a: F64, b: F64) -> F64:
    return np.floor((a + b - 1) / b)


def _scalesim_port_time(
    cfg: ConfigTable,
    ports: F64,
    ifmap_words: F64,
    filter_words: F64,
    ofmap_words: F64,
    ifmap_passes: F64,
    filter_passes: F64,
) -> F64:
    """Cycles each SCALE-Sim backing port needs; the slowest one paces the layer.

    SCALE-Sim prefetches an operand matrix (ifmap M x Kw, filter Kw x F, one byte per word)
    into the half of its SRAM that is not being read; a matrix that fits there is fetched once,
    one that does not is streamed again on every pass over it (scalesim/memory/read_buffer.py).
    Its ofmap buffer drains ceil(drain size / bandwidth) trace lines of one array row each per
    cycle (write_buffer.py, empty_drain_buf), i.e. ``cols`` words per cycle whatever the
    configured bandwidth, so the ofmap port keeps up with the array.
    """
    half = np.ceil(cfg.buf_bytes / 2)
    w_i = np.where(ifmap_words <= half[:, 0:1], ifmap_words, ifmap_words * ifmap_passes)
    w_f = np.where(filter_words <= half[:, 1:2], filter_words, filter_words * filter_passes)
    t = np.maximum(w_i / ports[:, 0:1], w_f / ports[:, 1:2])
    out: F64 = np.maximum(t, ofmap_words / cfg.cols)
    return out


def evaluate(
    wl: Workload,
    cfg: ConfigTable,
    scalesim_ports: F64 | None = None,
    fidelity: str = "analytic",
) -> BatchResult:
    """Evaluate every configuration of ``cfg`` on every layer of ``wl`` (arrays (configs, L)).

    ``fidelity="analytic"`` counts compute cycles as SCALE-Sim does; ``"rtl"`` as autochip's
    own output-stationary RTL runs (``autochip.predictor.rtl_model``: tiles back to back,
    T + R + C - 1 cycles each), for os configurations only.

    ``scalesim_ports`` (configs, 2) switches the stall model to SCALE-Sim's memory semantics:
    the ifmap and filter SRAMs each have their own backing port (words per cycle) and move the
    operand matrices as the array consumes them (im2col words, no convolutional reuse).
    """
    R, C, V = cfg.rows, cfg.cols, cfg.vector
    is_os = cfg.dataflow == 0
    is_ws = cfg.dataflow == 1
    vec = (wl.kind == VECTOR)[None, :]
    M = wl.M.astype(np.float64)[None, :]
    F = wl.F.astype(np.float64)[None, :]
    G = wl.G.astype(np.float64)[None, :]
    Kw = _ceil_div(wl.Kw.astype(np.float64)[None, :], V)

    # -- mapping onto the array ---------------------------------------------------------------
    Sr = np.where(is_os, M, Kw)
    Sc = np.where(is_os | is_ws, F, M)
    T = np.where(is_os, Kw, np.where(is_ws, M, F))
    rf = _ceil_div(Sr, R)
    cf = _ceil_div(Sc, C)
    folds = rf * cf
    if fidelity == "rtl":
        not_os = [hw.name for hw, df in zip(cfg.specs, cfg.dataflow[:, 0], strict=True) if df]
        if not_os:
            raise SpecError(
                "fidelity rtl",
                [
                    f"autochip's RTL array is output-stationary; expected dataflow 'os', found "
                    f"another dataflow in {', '.join(not_os[:5])}"
                ],
            )
        gemm_cycles = G * folds * (T + R + C - 1)
    elif fidelity == "analytic":
        per_fold = np.where(is_os, T + R + C - 2, 2 * R + C + T - 2)
        gemm_cycles = G * (folds * per_fold - 1)
    else:
        raise SpecError("fidelity", [f"expected 'analytic' or 'rtl', found {fidelity!r}"])
    pe_ops = G * Sr * Sc * T
    mapping = Sr * Sc / (folds * R * C)
    fold_cycles = np.where(is_os, T + R + C - 2, 2 * R + 2 * C + T - 3)
    compute_util = Sr * Sc * T / (folds * R * C * fold_cycles)

    # -- on-chip accesses (words), SCALE-Sim's counting ---------------------------------------
    ifm = G * np.where(is_os | is_ws, cf * Sr * T, Sr * Sc)
    flt = G * np.where(is_os, rf * Sc * T, np.where(is_ws, Sr * Sc, cf * Sr * T))
    ofm = G * np.where(is_os, Sr * Sc + folds * (R + C), rf * Sc * T)

    ops = wl.ops.astype(np.float64)[None, :]
    vec_cycles = _ceil_div(ops, C)
    in_e = wl.in_elems.astype(np.float64)[None, :]
    out_e = wl.out_elems.astype(np.float64)[None, :]
    cycles = np.where(vec, vec_cycles, gemm_cycles)
    ifm = np.where(vec, in_e, ifm)
    flt = np.where(vec, 0.0, flt)
    ofm = np.where(vec, out_e, ofm)
    pe_ops = np.where(vec, 0.0, pe_ops)
    mapping = np.where(vec, 0.0, mapping)
    compute_util = np.where(vec, 0.0, compute_util)

    # -- word widths: the layer's precision, never wider than the hardware's ------------------
    wb = np.minimum(wl.w_bits[None, :], cfg.w_bits)
    ab = np.minimum(wl.a_bits[None, :], cfg.a_bits)
    accb = cfg.acc_bits

    # -- DRAM traffic with double-buffered reuse ----------------------------------------------
    i_u = in_e * ab / 8
    w_u = wl.w_elems.astype(np.float64)[None, :] * wb / 8
    o_u = out_e * ab / 8
    half = cfg.buf_bytes / 2
    i_pass = np.where(is_os | is_ws, cf, 1.0)
    w_pass = np.where(is_os, rf, np.where(is_ws, 1.0, cf))
    dram_i = np.where(i_u <= half[:, 0:1], i_u, i_u * i_pass)
    dram_w = np.where(w_u <= half[:, 1:2], w_u, w_u * w_pass)
    # ws/is accumulate partial sums over the row folds. Two loop orders, the cheaper one wins:
    # (a) stream all T per fold and spill partial sums that do not fit to DRAM and back;
    # (b) tile T so one column fold's partial sums stay in the ofmap buffer, and refetch the
    #     stationary operand (weights for ws, ifmap for is) once per T tile if it does not fit.
    psum = out_e * accb / 8
    spill = np.where(is_os | (psum <= half[:, 2:3]), 0.0, 2 * (rf - 1) * psum)
    n_t = np.maximum(np.ceil(np.minimum(Sc, C) * T * accb / 8 / half[:, 2:3]), 1.0)
    tiled_w = np.where(is_ws & (w_u > half[:, 1:2]), w_u * (n_t - 1), 0.0)
    tiled_i = np.where(~is_os & ~is_ws & (i_u > half[:, 0:1]), i_u * (n_t - 1), 0.0)
    use_tiles = (tiled_w + tiled_i) < spill
    spill = np.where(use_tiles, 0.0, spill)
    dram_w = dram_w + np.where(use_tiles, tiled_w, 0.0)
    dram_i = dram_i + np.where(use_tiles, tiled_i, 0.0)
    dram_o = o_u + spill
    dram_i = np.where(vec, i_u, dram_i)
    dram_w = np.where(vec, 0.0, dram_w)
    dram_o = np.where(vec, o_u, dram_o)

    # -- stalls: the slowest of DRAM and each buffer port against the compute cycles ----------
    t_dram = (dram_i + dram_w + dram_o) / cfg.dram_bw
    t_i = ifm * ab / 8 / cfg.buf_bw[:, 0:1]
    t_w = flt * wb / 8 / cfg.buf_bw[:, 1:2]
    t_o = ofm * np.where(vec, ab, accb) / 8 / cfg.buf_bw[:, 2:3]
    t_mem = np.maximum(np.maximum(t_dram, t_i), np.maximum(t_w, t_o))
    if scalesim_ports is not None:
        t_mem = _scalesim_port_time(
            cfg,
            scalesim_ports,
            G * M * Kw,
            G * Kw * F,
            ofm,
            np.where(is_os | is_ws, cf, 1.0),
            np.where(is_os, rf, np.where(is_ws, 1.0, cf)),
        )
    stall = np.ceil(np.maximum(t_mem - cycles, 0.0))
    total = cycles + stall
    util = np.where(vec, 0.0, pe_ops / (total * R * C))

    # -- energy (pJ) --------------------------------------------------------------------------
    energy = {
        "compute": pe_ops * cfg.e_pe_op + ops * vec * cfg.e_vec_op,
        "register": pe_ops * cfg.e_reg_op,
        "sram_ifmap": ifm * ab * cfg.e_sram_rd[:, 0:1],
        "sram_weight": flt * wb * cfg.e_sram_rd[:, 1:2],
        "sram_ofmap": ofm * np.where(vec, ab, accb) * cfg.e_sram_wr[:, 2:3],
        "dram": (dram_i + dram_w + dram_o) * 8 * cfg.e_dram_bit,
        "leakage": cfg.leak_w * total / cfg.clock_hz * 1e12,
    }
    return BatchResult(
        cycles=cycles,
        stall_cycles=stall,
        row_folds=np.where(vec, 0.0, rf),
        col_folds=np.where(vec, 0.0, cf),
        mapping_efficiency=mapping,
        utilization=util,
        compute_utilization=compute_util,
        pe_ops=pe_ops,
        sram_reads_ifmap=ifm,
        sram_reads_weight=flt,
        sram_writes_ofmap=ofm,
        dram_bytes_ifmap=dram_i,
        dram_bytes_weight=dram_w,
        dram_bytes_ofmap=dram_o,
        energy=energy,
    )

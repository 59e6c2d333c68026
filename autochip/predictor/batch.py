"""The vectorised model: many hardware configurations x all layers in one numpy pass.

``evaluate(workload, config_table(specs, platform))`` returns arrays of shape (configs, layers).
The scalar :func:`autochip.predictor.predict` is a batch of one through this same function;
there is no second model. Equations (see docs/predictor.md):

    dataflow   Sr (array rows)   Sc (array cols)   T (streamed)
    os         M                 F                 Kw'
    ws         Kw'               F                 M
    is         Kw'               M                 F          (Kw' = ceil(Kw / vector))

    folds = ceil(Sr / R) * ceil(Sc / C)
    cycles = G * (folds * (T + R + C - 2) - 1)          os
    cycles = G * (folds * (2R + C + T - 2) - 1)         ws, is

which is SCALE-Sim 3.0.0's "Total Cycles" of a layer without bandwidth stalls.

Configurations are grouped by dataflow and layers by kind (GEMM or vector work), and each group
is computed with its own closed-form expressions, so no work is spent on masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from autochip.errors import SpecError
from autochip.predictor.configs import ConfigTable, config_table
from autochip.predictor.workload import GEMM, VECTOR, Workload

__all__ = ["ENERGY_PARTS", "BatchResult", "ConfigTable", "config_table", "evaluate"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

ENERGY_PARTS = ("compute", "register", "sram_ifmap", "sram_weight", "sram_ofmap", "dram", "leakage")
_FIELDS = (
    "cycles",
    "stall_cycles",
    "row_folds",
    "col_folds",
    "mapping_efficiency",
    "utilization",
    "compute_utilization",
    "pe_ops",
    "sram_reads_ifmap",
    "sram_reads_weight",
    "sram_writes_ofmap",
    "dram_bytes_ifmap",
    "dram_bytes_weight",
    "dram_bytes_ofmap",
)
OS, WS, IS = 0, 1, 2
_CHUNK_ELEMENTS = 16384  # (configs x layers) per kernel call: ~128 kB per array, cache-resident


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


@dataclass(frozen=True)
class _Cfg:
    """The rows of a :class:`ConfigTable` that one kernel works on (arrays (h, 1) / (h, 3))."""

    R: F64
    C: F64
    V: F64
    w_bits: F64
    a_bits: F64
    acc_bits: F64
    half: F64
    buf_bw: F64
    dram_bw: F64
    clock_hz: F64
    e_pe_op: F64
    e_vec_op: F64
    e_reg_op: F64
    e_sram_rd: F64
    e_sram_wr: F64
    e_dram_bit: F64
    leak_w: F64
    ports: F64 | None


def _rows(cfg: ConfigTable, rows: I64, ports: F64 | None) -> _Cfg:
    return _Cfg(
        R=cfg.rows[rows],
        C=cfg.cols[rows],
        V=cfg.vector[rows],
        w_bits=cfg.w_bits[rows],
        a_bits=cfg.a_bits[rows],
        acc_bits=cfg.acc_bits[rows],
        half=cfg.buf_bytes[rows] / 2,
        buf_bw=cfg.buf_bw[rows],
        dram_bw=cfg.dram_bw[rows],
        clock_hz=cfg.clock_hz[rows],
        e_pe_op=cfg.e_pe_op[rows],
        e_vec_op=cfg.e_vec_op[rows],
        e_reg_op=cfg.e_reg_op[rows],
        e_sram_rd=cfg.e_sram_rd[rows],
        e_sram_wr=cfg.e_sram_wr[rows],
        e_dram_bit=cfg.e_dram_bit[rows],
        leak_w=cfg.leak_w[rows],
        ports=None if ports is None else ports[rows],
    )


def _col(values: I64, cols: I64) -> F64:
    out: F64 = values[cols].astype(np.float64)[None, :]
    return out


def _gemm(wl: Workload, cols: I64, c: _Cfg, df: int, fidelity: str) -> dict[str, F64]:
    """GEMM layers ``cols`` on configurations ``c`` that all use dataflow ``df``."""
    R, C = c.R, c.C
    M, F, G = _col(wl.M, cols), _col(wl.F, cols), _col(wl.G, cols)
    Kw = _ceil_div(_col(wl.Kw, cols), c.V)  # (h, l): xnor PEs pack V lanes of the reduction

    # -- mapping onto the array and compute cycles -------------------------------------------
    Sr, Sc, T = {OS: (M, F, Kw), WS: (Kw, F, M), IS: (Kw, M, F)}[df]
    rf = _ceil_div(Sr, R)
    cf = _ceil_div(Sc, C)
    folds = rf * cf
    if fidelity == "rtl":  # autochip's own os array: tiles back to back (rtl_model)
        cycles = G * folds * (T + R + C - 1)
    elif df == OS:
        cycles = G * (folds * (T + R + C - 2) - 1)
    else:
        cycles = G * (folds * (2 * R + C + T - 2) - 1)
    pe_ops = G * Sr * Sc * T
    fold_cycles = T + R + C - 2 if df == OS else 2 * R + 2 * C + T - 3
    mapping = Sr * Sc / (folds * R * C)
    compute_util = Sr * Sc * T / (folds * R * C * fold_cycles)

    # -- on-chip accesses (words), SCALE-Sim's counting ---------------------------------------
    ifm = G * (Sr * Sc if df == IS else cf * Sr * T)
    flt = G * {OS: rf * Sc * T, WS: Sr * Sc, IS: cf * Sr * T}[df]
    ofm = G * (Sr * Sc + folds * (R + C) if df == OS else rf * Sc * T)

    # -- word widths: the layer's precision, never wider than the hardware's ------------------
    wb = np.minimum(_col(wl.w_bits, cols), c.w_bits)
    ab = np.minimum(_col(wl.a_bits, cols), c.a_bits)
    accb = c.acc_bits

    # -- DRAM traffic with double-buffered reuse ----------------------------------------------
    out_e = _col(wl.out_elems, cols)
    i_u = _col(wl.in_elems, cols) * ab / 8
    w_u = _col(wl.w_elems, cols) * wb / 8
    o_u = out_e * ab / 8
    i_fit = i_u <= c.half[:, 0:1]
    w_fit = w_u <= c.half[:, 1:2]
    dram_i = i_u if df == IS else np.where(i_fit, i_u, i_u * cf)
    dram_w = {OS: np.where(w_fit, w_u, w_u * rf), WS: w_u, IS: np.where(w_fit, w_u, w_u * cf)}[df]
    dram_o = o_u
    if df != OS:
        # Partial sums accumulate over the row folds. Two loop orders, the cheaper one wins:
        # (a) stream all T per fold, spilling partial sums that do not fit to DRAM and back;
        # (b) tile T so one column fold's partial sums stay in the ofmap buffer, refetching the
        #     stationary operand (weights for ws, ifmap for is) per T tile if it does not fit.
        psum = out_e * accb / 8
        spill = np.where(psum <= c.half[:, 2:3], 0.0, 2 * (rf - 1) * psum)
        n_t = np.maximum(np.ceil(np.minimum(Sc, C) * T * accb / 8 / c.half[:, 2:3]), 1.0)
        stationary, fits = (w_u, w_fit) if df == WS else (i_u, i_fit)
        refetch = np.where(fits, 0.0, stationary * (n_t - 1))
        tiles = refetch < spill
        dram_o = o_u + np.where(tiles, 0.0, spill)
        if df == WS:
            dram_w = dram_w + np.where(tiles, refetch, 0.0)
        else:
            dram_i = dram_i + np.where(tiles, refetch, 0.0)

    # -- stalls: the slowest of DRAM and each buffer port against the compute cycles ----------
    if c.ports is not None:
        t_mem = _scalesim_port_time(c, c.ports, df, G * M * Kw, G * Kw * F, ofm, rf, cf)
    else:
        # double buffering overlaps transfers with compute, except the first fold's operands (at
        # most one buffer half), which must be on chip before the array starts
        first = {OS: (R * T, T * C), WS: (T * R, R * C), IS: (R * C, R * T)}[df]
        fill_i = np.minimum(np.minimum(first[0] * ab / 8, i_u), c.half[:, 0:1])
        fill_w = np.minimum(np.minimum(first[1] * wb / 8, w_u), c.half[:, 1:2])
        fill = (fill_i + fill_w) / c.dram_bw
        t_dram = (dram_i + dram_w + dram_o) / c.dram_bw
        t_i = ifm * ab / 8 / c.buf_bw[:, 0:1]
        t_w = flt * wb / 8 / c.buf_bw[:, 1:2]
        t_o = ofm * accb / 8 / c.buf_bw[:, 2:3]
        t_mem = np.maximum(np.maximum(t_dram, t_i), np.maximum(t_w, t_o))
        t_mem = np.maximum(t_mem, cycles + fill)
    stall = np.ceil(np.maximum(t_mem - cycles, 0.0))
    total = cycles + stall
    energy = {
        "compute": pe_ops * c.e_pe_op,
        "register": pe_ops * c.e_reg_op,
        "sram_ifmap": ifm * ab * c.e_sram_rd[:, 0:1],
        "sram_weight": flt * wb * c.e_sram_rd[:, 1:2],
        "sram_ofmap": ofm * accb * c.e_sram_wr[:, 2:3],
        "dram": (dram_i + dram_w + dram_o) * 8 * c.e_dram_bit,
        "leakage": c.leak_w * total / c.clock_hz * 1e12,
    }
    return {
        "cycles": cycles,
        "stall_cycles": stall,
        "row_folds": rf,
        "col_folds": cf,
        "mapping_efficiency": mapping,
        "utilization": pe_ops / (total * R * C),
        "compute_utilization": compute_util,
        "pe_ops": pe_ops,
        "sram_reads_ifmap": ifm,
        "sram_reads_weight": flt,
        "sram_writes_ofmap": ofm,
        "dram_bytes_ifmap": dram_i,
        "dram_bytes_weight": dram_w,
        "dram_bytes_ofmap": dram_o,
        **{f"energy_{k}": v for k, v in energy.items()},
    }


def _vector(wl: Workload, cols: I64, c: _Cfg) -> dict[str, F64]:
    """Vector layers (pooling, add, activations, ...) on the ``cols``-lane post-processing unit:
    one op per lane per cycle, inputs read and outputs written once."""
    ops = _col(wl.ops, cols)
    ab = np.minimum(_col(wl.a_bits, cols), c.a_bits)
    in_e, out_e = _col(wl.in_elems, cols), _col(wl.out_elems, cols)
    cycles = _ceil_div(ops, c.C)
    dram_i, dram_o = in_e * ab / 8, out_e * ab / 8
    t_mem = np.maximum(
        (dram_i + dram_o) / c.dram_bw,
        np.maximum(dram_i / c.buf_bw[:, 0:1], dram_o / c.buf_bw[:, 2:3]),
    )
    stall = np.ceil(np.maximum(t_mem - cycles, 0.0))
    zero = np.zeros_like(cycles)
    energy = {
        "compute": ops * c.e_vec_op,
        "register": zero,
        "sram_ifmap": in_e * ab * c.e_sram_rd[:, 0:1],
        "sram_weight": zero,
        "sram_ofmap": out_e * ab * c.e_sram_wr[:, 2:3],
        "dram": (dram_i + dram_o) * 8 * c.e_dram_bit,
        "leakage": c.leak_w * (cycles + stall) / c.clock_hz * 1e12,
    }
    return {
        "cycles": cycles,
        "stall_cycles": stall,
        "sram_reads_ifmap": in_e + zero,
        "sram_writes_ofmap": out_e + zero,
        "dram_bytes_ifmap": dram_i,
        "dram_bytes_ofmap": dram_o,
        **{f"energy_{k}": v for k, v in energy.items()},
    }


def _scalesim_port_time(
    c: _Cfg,
    ports: F64,
    df: int,
    ifmap_words: F64,
    filter_words: F64,
    ofmap_words: F64,
    rf: F64,
    cf: F64,
) -> F64:
    """Cycles each SCALE-Sim backing port needs; the slowest one paces the layer.

    SCALE-Sim prefetches an operand matrix (ifmap M x Kw, filter Kw x F, one byte per word)
    into the half of its SRAM that is not being read; a matrix that fits there is fetched once,
    one that does not is streamed again on every pass over it (scalesim/memory/read_buffer.py).
    Its ofmap buffer drains ceil(drain size / bandwidth) trace lines of one array row each per
    cycle (write_buffer.py, empty_drain_buf), i.e. ``cols`` words per cycle whatever the
    configured bandwidth, so the ofmap port keeps up with the array.
    """
    one = np.ones_like(cf)
    ifmap_passes = one if df == IS else cf
    filter_passes = {OS: rf, WS: one, IS: cf}[df]
    half = np.ceil(c.half)
    w_i = np.where(ifmap_words <= half[:, 0:1], ifmap_words, ifmap_words * ifmap_passes)
    w_f = np.where(filter_words <= half[:, 1:2], filter_words, filter_words * filter_passes)
    t = np.maximum(w_i / ports[:, 0:1], w_f / ports[:, 1:2])
    out: F64 = np.maximum(t, ofmap_words / c.C)
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
    if fidelity not in ("analytic", "rtl"):
        raise SpecError("fidelity", [f"expected 'analytic' or 'rtl', found {fidelity!r}"])
    dataflow = cfg.dataflow[:, 0].astype(np.int64)
    if fidelity == "rtl" and (dataflow != OS).any():
        names = [hw.name for hw, df in zip(cfg.specs, dataflow, strict=True) if df != OS]
        raise SpecError(
            "fidelity rtl",
            [
                "autochip's RTL array is output-stationary; expected dataflow 'os', found "
                f"another dataflow in {', '.join(names[:5])}"
            ],
        )
    H, L = len(cfg), len(wl)
    out = {k: np.zeros((H, L)) for k in _FIELDS}
    out.update({f"energy_{p}": np.zeros((H, L)) for p in ENERGY_PARTS})
    gemm_cols = np.flatnonzero(wl.kind == GEMM)
    vec_cols = np.flatnonzero(wl.kind == VECTOR)
    # work in chunks of configurations small enough for the arrays to stay in cache
    chunk = max(1, _CHUNK_ELEMENTS // max(L, 1))
    for df in (OS, WS, IS):
        group = np.flatnonzero(dataflow == df)
        for start in range(0, group.size if gemm_cols.size else 0, chunk):
            rows = group[start : start + chunk]
            block = _gemm(wl, gemm_cols, _rows(cfg, rows, scalesim_ports), df, fidelity)
            _put(out, rows, gemm_cols, block, L)
    for start in range(0, H if vec_cols.size else 0, chunk):
        rows = np.arange(start, min(start + chunk, H))
        _put(out, rows, vec_cols, _vector(wl, vec_cols, _rows(cfg, rows, None)), L)
    energy = {p: out.pop(f"energy_{p}") for p in ENERGY_PARTS}
    return BatchResult(**out, energy=energy)


def _put(out: dict[str, F64], rows: I64, cols: I64, block: dict[str, F64], L: int) -> None:
    for k, v in block.items():
        if cols.size == L:
            out[k][rows] = v
        else:
            out[k][np.ix_(rows, cols)] = v

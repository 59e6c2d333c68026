"""The core model, vectorised: many core configurations x every layer of one network at once.

:mod:`autochip.predictor.core_model` walks the compiled program of one core layer by layer; this
module evaluates the same cycle and resource model for a table of configurations with numpy,
in closed form, and is checked to equal it exactly (``tests/test_core_batch.py``):

* A network becomes a :class:`CoreWorkload`: the layers as the compiler sees them (descriptor
  fields that do not depend on the core, tensor sizes, which tensor each layer reads), derived
  from the AccelGraph without compiling (:func:`core_workload`).
* Per configuration the compiler's tiling (``kt``, ``ntiles``, ``tpp``, ``npt``) and DRAM layout
  (256-byte descriptors, per-layer parameter blobs of ``p_tile`` bytes per tile and weight
  tiles padded to whole bus words, then tensors aligned to ``max(16, bus)``) follow from rows,
  cols, buffer sizes and the AXI data bus (``bus`` bytes, from ``dram.bandwidth``); every DMA
  command's bursts are counted in closed form in bus words (:func:`_dma`: per 4 KB page
  touched, its words in bursts of at most 256 beats), the per-pass weight, parameter and
  write-back commands pass by pass (a loop over the pass index, vectorised over the rest).
* Energy from the platform's technology tables (the analytic model's unit costs): PE operations
  and post-processing, SRAM bytes read and written per buffer, DRAM bytes, static power.

Infeasible configurations (a layer the compiler would refuse: input larger than one ifmap copy,
a weight tile larger than the weight buffer, ...) get ``feasible = False`` and infinite latency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from autochip.errors import SpecError
from autochip.hw.platform import Platform
from autochip.hw.spec import HardwareSpec, PESpec
from autochip.ir.graph import AccelGraph
from autochip.ir.node import OpKind
from autochip.predictor.core_model import (
    _XILINX_BRAM18_BITS,
    _XILINX_BRAM36_DEPTH,
    _XILINX_LUTRAM_MAX_BITS,
    BURST_BOUNDARY,
    CONTROL_FEATURES,
    DESC_BYTES,
    FLUSH_CYCLES,
    MAX_BURST,
    POSTED_ISSUE,
    _control_model,
    dram_timing,
    flush_compute_cycles,
)

__all__ = [
    "CoreConfigs",
    "CoreResult",
    "CoreWorkload",
    "core_configs",
    "core_feasible",
    "core_geometry",
    "core_plan",
    "core_workload",
    "evaluate_core",
    "planned_layers",
    "why_infeasible",
]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
ALIGN = 16  # compiler.ALIGN
DEFAULT_BUS = 8  # the AXI data bus of the default dram.bandwidth (8 bytes per cycle)
MIN_BUS, MAX_BUS = 4, 64  # core.MIN_BUS_BYTES, core.MAX_BUS_BYTES
PARAM_TILES = 16  # core.PARAM_TILES
PARAM_RECORD_BYTES = 16  # program.PARAM_RECORD_BYTES
_MAX_BITS = 8


@dataclass(frozen=True)
class CoreWorkload:
    """A network's layers as the core's compiler sees them (arrays of one entry per layer).

    ``src``/``src2`` index ``tensor_bytes`` (0 is the network input, layer i writes tensor
    i + 1, padded / concatenated tensors follow; ``src2`` is -1 without a second input).
    ``problems`` lists what the core cannot run at all (then no configuration is feasible)."""

    name: str
    names: tuple[str, ...]
    kinds: tuple[str, ...]  # conv, linear, maxpool, avgpool, add
    vector: npt.NDArray[np.bool_]
    in_len: I64
    t: I64
    kg: I64
    groups: I64
    c: I64  # output channels
    p: I64
    q: I64
    kr: I64
    ks: I64
    src: I64
    src2: I64
    tensor_bytes: I64
    macs: I64
    w_bits: int  # operand widths the layers need (float layers: int8 after quantisation)
    a_bits: int
    adder: bool
    problems: tuple[str, ...] = ()
    # byte offset of every tensor from the first tensor region (default: back to back, 16-byte
    # aligned); a tensor placed inside a padded / concatenated one is at its offset there
    tensor_off: I64 | None = None
    # compute layers whose groups the compiler merges onto the columns (integer MAC, grouped)
    merge: npt.NDArray[np.bool_] | None = None

    def __len__(self) -> int:
        return len(self.names)

    @property
    def pq(self) -> I64:
        out: I64 = self.p * self.q
        return out


def _prod(shape: Sequence[int]) -> int:
    return math.prod(shape[1:]) if len(shape) > 1 else int(math.prod(shape))


def core_workload(graph: AccelGraph) -> CoreWorkload:
    """The core's layer table for ``graph`` (what ``compile_model`` would emit for it).

    As the compiler does: a strided slice ``x[:, :, ::s, ::s]`` is a vector subsample (its
    source layer computed again when the source has other consumers, as the export quantises
    the shortcut separately), a channel pad and a channel concatenation cost no descriptor
    (their inputs are placed by address inside the padded / concatenated tensor), a flatten
    aliases its input."""
    tensor: dict[str, int] = {}
    sizes: list[int] = []
    parent: dict[int, tuple[int, int]] = {}  # tensor -> (tensor it is placed in, byte offset)
    regions: list[int] = []  # padded / concatenated tensors, after the layer outputs
    rows: list[dict[str, int]] = []
    names: list[str] = []
    kinds: list[str] = []
    problems: list[str] = []
    row_of: dict[int, int] = {}  # tensor -> the row that writes it
    row_out: list[int] = []  # the tensor each row writes
    consumers: dict[str, int] = {}
    for node in graph:
        for i in node.inputs:
            consumers[i] = consumers.get(i, 0) + 1
    w_bits = a_bits = 2
    adder = False

    def add_row(name: str, kind: str, row: dict[str, int], size: int) -> int:
        out = len(sizes)
        sizes.append(size)
        row_of[out] = len(rows)
        row_out.append(out)
        names.append(name)
        kinds.append(kind)
        rows.append(row)
        return out

    def place(src: int, into: int, off: int, name: str) -> bool:
        if src in parent:
            problems.append(
                f"node '{name}': its input is already placed inside another tensor (padded or "
                "concatenated); the core places a tensor once"
            )
            return False
        parent[src] = (into, off)
        return True

    for node in graph:
        k = node.kind
        if k == OpKind.INPUT:
            tensor[node.name] = len(sizes)
            sizes.append(_prod(node.output_shape))
            continue
        if k == OpKind.OUTPUT:
            continue
        srcs = [tensor.get(i, 0) for i in node.inputs]
        out_shape = node.output_shape
        in_shape = node.input_shapes[0] if node.input_shapes else ()
        if k == OpKind.RESHAPE:
            op = node.attrs.get("op")
            four = len(in_shape) == 4 and len(out_shape) == 4
            if _prod(node.output_shape) == _prod(in_shape) and op != "pad":
                tensor[node.name] = srcs[0] if srcs else 0
            elif op == "slice" and four and in_shape[:2] == out_shape[:2]:
                src = srcs[0] if srcs else 0
                prod = row_of.get(src)
                if prod is not None and consumers.get(node.inputs[0], 0) > 1:
                    # the export quantises the shortcut on its own: the source layer again
                    src = add_row(names[prod] + ".again", kinds[prod], dict(rows[prod]), sizes[src])
                c = in_shape[1]
                row = {"src": src, "src2": -1, "p": out_shape[2], "q": out_shape[3], "vec": 1,
                       "in_len": _prod(in_shape), "c": c, "kr": 1, "ks": 1, "macs": 0}  # fmt: skip
                tensor[node.name] = add_row(node.name, "subsample", row, _prod(out_shape))
            elif (
                op == "pad"
                and four
                and in_shape[2:] == out_shape[2:]
                and len(node.attrs.get("pads", ())) == 6
                and list(node.attrs["pads"][:4]) == [0, 0, 0, 0]
            ):
                out = len(sizes)
                sizes.append(_prod(out_shape))
                regions.append(out)
                tensor[node.name] = out
                c0 = int(node.attrs["pads"][4])
                place(srcs[0] if srcs else 0, out, c0 * in_shape[2] * in_shape[3], node.name)
            else:
                problems.append(
                    f"node '{node.name}': a {op} that changes the element count "
                    f"({in_shape} -> {out_shape}) is not a core operation"
                )
                tensor[node.name] = srcs[0] if srcs else 0
            continue
        if k == OpKind.CONCAT:
            shapes = node.input_shapes
            if len(out_shape) != 4 or any(len(s) != 4 or s[2:] != out_shape[2:] for s in shapes):
                problems.append(f"node '{node.name}': the core concatenates 4-D tensors along "
                                f"the channels only, found {shapes} -> {out_shape}")  # fmt: skip
                tensor[node.name] = srcs[0] if srcs else 0
                continue
            out = len(sizes)
            sizes.append(_prod(out_shape))
            regions.append(out)
            tensor[node.name] = out
            off = 0
            for src, shp in zip(srcs, shapes, strict=True):
                if src not in row_of:
                    problems.append(f"node '{node.name}': the core concatenates layer outputs "
                                    "only")  # fmt: skip
                place(src, out, off, node.name)
                off += _prod(shp)
            continue
        p, q = (out_shape[2], out_shape[3]) if len(out_shape) == 4 else (1, 1)
        row = {"src": srcs[0] if srcs else 0, "src2": -1, "p": p, "q": q, "macs": 0}
        d = node.dims
        kind = ""
        if node.is_compute and k in (OpKind.CONV2D, OpKind.LINEAR) and d is not None:
            ar = node.arithmetic
            if ar.dtype == "int" and ar.kind != "xnor":
                w_bits, a_bits = max(w_bits, ar.w_bits), max(a_bits, ar.a_bits)
            else:  # float layers run as int8 after quantisation; binary as +-1 on a mac
                w_bits, a_bits = max(w_bits, 8 if ar.kind != "xnor" else 2), max(a_bits, 8)
            adder = adder or ar.kind == "adder"
            g = max(d.groups, 1)
            if k == OpKind.LINEAR:
                cin, t, kgv, g = _prod(in_shape), d.C, d.K, 1
            else:
                cin, t, kgv = d.C * d.H * d.W, (d.C // g) * d.R * d.S, d.K // g
                if (d.dil_h, d.dil_w) != (1, 1):
                    problems.append(f"node '{node.name}': the core runs dilation 1 only")
            merge = int(k == OpKind.CONV2D and ar.kind == "mac" and g > 1)
            row.update(vec=0, in_len=cin, t=t, kg=kgv, groups=g, c=d.K, kr=d.R, ks=d.S)
            row.update(merge=merge)
            row["macs"] = d.N * d.K * d.P * d.Q * (d.C // g) * d.R * d.S
            kind = "linear" if k == OpKind.LINEAR else "conv"
        elif k in (OpKind.MAXPOOL, OpKind.AVGPOOL, OpKind.MEAN) and len(in_shape) == 4:
            c = in_shape[1]
            if k == OpKind.MEAN or d is None:
                kr, ks = in_shape[2], in_shape[3]
            else:
                kr, ks = d.R, d.S
            row.update(vec=1, in_len=_prod(in_shape), c=c, kr=kr, ks=ks)
            kind = "maxpool" if k == OpKind.MAXPOOL else "avgpool"
        elif k == OpKind.ADD and len(srcs) == 2:
            c = out_shape[1] if len(out_shape) > 1 else 1
            row.update(vec=1, in_len=_prod(in_shape), c=c, kr=2, ks=1, src2=srcs[1])
            kind = "add"
        else:
            problems.append(f"node '{node.name}': the core has no {k.value} operation")
            tensor[node.name] = srcs[0] if srcs else 0
            continue
        tensor[node.name] = add_row(node.name, kind, row, _prod(out_shape))

    # the compiler's tensor layout: input and layer outputs, then the padded / concatenated
    # regions, each 16-byte aligned; a tensor placed inside another gets no region
    order = [0, *row_out, *regions]
    pos = {j: i for i, j in enumerate(order)}  # tensor index -> position in the layout
    sizes_al = [-(-sizes[j] // ALIGN) * ALIGN for j in order]
    off_at: dict[int, int] = {}
    at = 0
    for j, size in zip(order, sizes_al, strict=True):
        if j not in parent:
            off_at[j] = at
            at += size

    def offset(j: int) -> int:
        if j not in off_at:
            into, off = parent[j]
            off_at[j] = offset(into) + off
        return off_at[j]

    offs = [offset(j) for j in order]
    src_pos = [pos[r["src"]] for r in rows]
    src2_pos = [pos[r["src2"]] if r["src2"] >= 0 else -1 for r in rows]
    for r, a, b in zip(rows, src_pos, src2_pos, strict=True):
        r["src"], r["src2"] = a, b

    def col(key: str, default: int = 0) -> I64:
        return np.array([r.get(key, default) for r in rows], dtype=np.int64)

    return CoreWorkload(
        name=graph.name,
        names=tuple(names),
        kinds=tuple(kinds),
        vector=col("vec").astype(bool),
        in_len=col("in_len"),
        t=col("t", 1),
        kg=col("kg", 1),
        groups=col("groups", 1),
        c=col("c"),
        p=col("p", 1),
        q=col("q", 1),
        kr=col("kr", 1),
        ks=col("ks", 1),
        src=col("src"),
        src2=col("src2", -1),
        tensor_bytes=np.array([sizes[j] for j in order], dtype=np.int64),
        macs=col("macs"),
        w_bits=w_bits,
        a_bits=a_bits,
        adder=adder,
        problems=tuple(problems),
        tensor_off=np.array(offs, dtype=np.int64),
        merge=col("merge").astype(bool),
    )


# -- configurations ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CoreConfigs:
    """Core configurations as columns of shape (H,): the fields of a core hardware spec."""

    rows: I64
    cols: I64
    a_bits: I64
    w_bits: I64
    adder: I64  # 1: pe.kind adder (mac and adder datapaths), 0: mac
    if_bytes: I64  # buffers.*.size_kb * 1024 (ifmap holds `rows` copies)
    w_bytes: I64
    o_bytes: I64
    clock_mhz: F64
    # AXI data bus bytes (core.core_params: from dram.bandwidth); None: the default bandwidth's
    bus_bytes: I64 | None = None

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    @property
    def bus(self) -> I64:
        if self.bus_bytes is None:
            return np.full(len(self), DEFAULT_BUS, dtype=np.int64)
        return self.bus_bytes

    def take(self, idx: I64) -> CoreConfigs:
        cols = {f: getattr(self, f)[idx] for f in _CFG_FIELDS}
        return CoreConfigs(**cols, bus_bytes=self.bus[idx])

    def spec(self, i: int, name: str = "core") -> dict[str, object]:
        """Configuration ``i`` as a hardware spec dict (the ``--hw`` YAML schema)."""
        kb = {
            "ifmap": int(self.if_bytes[i]) / 1024,
            "weight": int(self.w_bytes[i]) / 1024,
            "ofmap": int(self.o_bytes[i]) / 1024,
        }
        return {
            "name": name,
            "pe": {
                "kind": "adder" if self.adder[i] else "mac",
                "dtype": "int",
                "w_bits": int(self.w_bits[i]),
                "a_bits": int(self.a_bits[i]),
                "acc_bits": 32,
            },
            "array": {"rows": int(self.rows[i]), "cols": int(self.cols[i])},
            "dataflow": "os",
            "buffers": {k: {"size_kb": v} for k, v in kb.items()},
            "dram": {"bandwidth": float(self.bus[i])},
            "clock_mhz": float(self.clock_mhz[i]),
        }


_CFG_FIELDS = (
    "rows",
    "cols",
    "a_bits",
    "w_bits",
    "adder",
    "if_bytes",
    "w_bytes",
    "o_bytes",
    "clock_mhz",
)  # fmt: skip (bus_bytes: CoreConfigs.bus)


def core_configs(specs: Sequence[HardwareSpec], source: str = "core") -> CoreConfigs:
    """Configurations from hardware specs; what the core cannot build is one :class:`SpecError`
    (the same checks as :func:`autochip.builder.core.core_params`)."""
    from autochip.builder.core import core_params

    problems: list[str] = []
    for hw in specs:
        try:
            core_params(hw)
        except SpecError as exc:
            problems += [f"{hw.name}: {p}" for p in exc.problems]
    if problems:
        raise SpecError(source, problems)

    def col(fn: object) -> I64:
        return np.array([fn(hw) for hw in specs], dtype=np.int64)  # type: ignore[operator]

    return CoreConfigs(
        rows=col(lambda h: h.rows),
        cols=col(lambda h: h.cols),
        a_bits=col(lambda h: h.pe.a_bits),
        w_bits=col(lambda h: h.pe.w_bits),
        adder=col(lambda h: h.pe.kind == "adder"),
        if_bytes=col(lambda h: h.ifmap.size_bytes),
        w_bytes=col(lambda h: h.weight.size_bytes),
        o_bytes=col(lambda h: h.ofmap.size_bytes),
        clock_mhz=np.array([hw.clock_mhz for hw in specs], dtype=np.float64),
        bus_bytes=col(lambda h: min(MAX_BUS, 1 << max(0, int(h.dram.bandwidth).bit_length() - 1))),
    )


def _bitlen(x: I64) -> I64:
    """``int.bit_length`` element-wise (x >= 0)."""
    x = np.asarray(x, dtype=np.int64)
    out = np.zeros_like(x)
    for k in range(63):
        out += (x >> k) > 0
    return out


def _pow2_ceil(x: I64) -> I64:
    """``1 << max(0, (x - 1).bit_length())``: the smallest power of two >= x (x >= 1)."""
    out: I64 = np.left_shift(1, _bitlen(np.maximum(x - 1, 0)))
    return out


def core_geometry(cfg: CoreConfigs) -> dict[str, I64]:
    """``core.core_params``' buffer geometry per configuration, (H,): ``bus``, ``w_row`` (bytes
    per weight row), ``w_word``, ``p_tile``, ``if_depth`` (bytes of one ifmap copy),
    ``w_depth`` (weight rows), ``o_wb``, ``o_depth`` (ofmap bytes)."""
    bus = cfg.bus
    w_row = _pow2_ceil(cfg.cols)
    w_word = np.maximum(w_row, bus)
    o_wb = np.maximum(bus, _pow2_ceil(cfg.rows))
    return {
        "bus": bus,
        "w_row": w_row,
        "w_word": w_word,
        "p_tile": np.maximum(bus, _pow2_ceil(PARAM_RECORD_BYTES * cfg.cols)),
        "if_depth": cfg.if_bytes // cfg.rows // bus * bus,
        "w_depth": cfg.w_bytes // w_word * w_word // w_row,
        "o_wb": o_wb,
        "o_depth": cfg.o_bytes // (2 * o_wb) * (2 * o_wb),
    }


# -- DMA bursts in closed form -------------------------------------------------------------------
def _cdiv(a: I64, b: I64 | int) -> I64:
    out: I64 = -(-a // b)
    return out


def _dma(addr: I64, length: I64, bus: I64, over: int) -> I64:
    """``core_model.dma_cycles`` element-wise: the bus words of [addr, addr + length), per 4 KB
    page touched its words in bursts of at most 256 beats, each costing ``over`` more; 2 for
    the issue and done cycles (also for an empty command)."""
    wa = addr // bus
    we = (addr + length - 1) // bus + 1
    words = we - wa
    page = BURST_BOUNDARY // bus  # words per 4 KB page
    pa, pe = wa // page, (we - 1) // page
    first = np.minimum(words, page - wa % page)
    last = we - pe * page
    per_page = _cdiv(page, MAX_BURST)
    bursts = np.where(
        pa == pe,
        _cdiv(words, MAX_BURST),
        _cdiv(first, MAX_BURST) + (pe - pa - 1) * per_page + _cdiv(last, MAX_BURST),
    )
    out: I64 = np.where(length > 0, 2 + words + over * bursts, 2)
    return out


# -- evaluation ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CoreResult:
    """Per (configuration, layer) cycles and energy, per configuration totals and resources."""

    fetch: I64
    load: I64
    compute: I64
    writeback: I64
    control: I64
    energy_pj: F64  # (H, L), or (H, 1) summed over layers
    end_cycles: I64  # (H,): the end-of-program descriptor
    feasible: npt.NDArray[np.bool_]  # (H,)
    resources: dict[str, I64]  # lut ff dsp bram, (H,); empty for ASIC platforms
    area_um2: F64 | None  # (H,) for ASIC platforms
    static_w: F64  # (H,)

    @property
    def cycles(self) -> I64:
        out: I64 = self.fetch + self.load + self.compute + self.writeback + self.control
        return out

    @property
    def total_cycles(self) -> I64:
        out: I64 = self.cycles.sum(axis=1) + self.end_cycles
        return out


def _tile_cycles(r: I64, c: I64, t: I64) -> I64:
    # core_model.tile_cycles: tiles back to back, max(T, R, C)
    out: I64 = np.maximum(t, np.maximum(r, c))
    return out


def _merged(wl: CoreWorkload, C: I64, w_depth: I64) -> tuple[I64, I64, I64]:
    """``t``, ``kg`` and ``groups`` per (configuration, layer) after the compiler merges the
    groups of grouped integer MAC layers onto the columns (``compiler.merge_groups``: the
    largest divisor m of the groups with ``m * kg <= max(cols, kg)`` whose reduction
    ``m * t`` fits a weight bank)."""
    shape = (C.shape[0], len(wl))
    t = np.broadcast_to(wl.t[None, :], shape).copy()
    kg = np.broadcast_to(wl.kg[None, :], shape).copy()
    groups = np.broadcast_to(wl.groups[None, :], shape).copy()
    if wl.merge is None:
        return t, kg, groups
    for j in np.flatnonzero(wl.merge).tolist():
        g0, kg0, t0 = int(wl.groups[j]), int(wl.kg[j]), int(wl.t[j])
        m = np.ones(shape[0], dtype=np.int64)
        for d in range(2, g0 + 1):
            if g0 % d == 0:
                ok = (d * kg0 <= np.maximum(C[:, 0], kg0)) & (d * t0 <= w_depth[:, 0])
                m = np.where(ok, d, m)
        t[:, j], kg[:, j], groups[:, j] = m * t0, m * kg0, g0 // m
    return t, kg, groups


def _tensor_off(wl: CoreWorkload, align: int) -> I64:
    """Byte offset of every tensor from the first tensor region when regions are ``align``-byte
    aligned. ``wl.tensor_off`` (16-byte alignment) tells which tensors sit inside another
    (a padded / concatenated one: the outermost region holding its bytes) and where."""
    n = wl.tensor_bytes.shape[0]
    t_al0 = _cdiv(wl.tensor_bytes, ALIGN) * ALIGN
    off0 = wl.tensor_off if wl.tensor_off is not None else np.cumsum(t_al0) - t_al0
    end0 = off0 + wl.tensor_bytes
    outer = np.arange(n)
    for j in range(n):
        hold = np.flatnonzero(
            (off0 <= off0[j]) & (end0 >= end0[j]) & (wl.tensor_bytes > wl.tensor_bytes[j])
        )
        if hold.size:
            outer[j] = int(hold[np.argmax(wl.tensor_bytes[hold])])
    own = outer == np.arange(n)
    t_al = np.where(own, _cdiv(wl.tensor_bytes, align) * align, 0)
    start = np.cumsum(t_al) - t_al
    out: I64 = start[outer] + off0 - off0[outer]
    return out


def _layout(wl: CoreWorkload, ucols: I64, uwdepth: I64, ubus: I64) -> dict[str, I64]:
    """What depends on the array's columns, weight rows and bus alone, arrays (U, L) for the
    distinct (``ucols``, ``uwdepth``, ``ubus``): group merging, weight tiling and the whole
    DRAM layout (256-byte descriptors, per-layer parameter and weight blobs, then the tensors,
    every region aligned to ``max(16, bus)``)."""
    L = len(wl)
    C = ucols[:, None]
    bus = ubus[:, None]
    comp = ~wl.vector[None, :]
    t, kg, groups = _merged(wl, C, uwdepth[:, None])
    kt = _cdiv(kg, C)
    ntiles = np.where(comp, groups * kt, 0)
    w_row = _pow2_ceil(C)
    p_tile = np.maximum(bus, _pow2_ceil(PARAM_RECORD_BYTES * C))
    tile_w = _cdiv(t * w_row, bus) * bus
    p_len = ntiles * p_tile
    blob = p_len + ntiles * tile_w
    align = np.maximum(ALIGN, bus)
    blob_al = _cdiv(blob, align) * align
    start = _cdiv((L + 1) * DESC_BYTES + 0 * align, align) * align
    p_addr = start + np.cumsum(blob_al, axis=1) - blob_al
    offs = {a: _tensor_off(wl, a) for a in np.unique(align).tolist()}
    t_off = np.zeros((len(ucols), wl.tensor_bytes.shape[0]), dtype=np.int64)
    for a, off in offs.items():
        t_off[align[:, 0] == a] = off
    base = start + blob_al.sum(axis=1, keepdims=True)
    rows = np.arange(len(ucols))[:, None]
    return {
        "in_addr": base + t_off[rows, wl.src[None, :]],
        "in2_addr": np.where(
            wl.src2[None, :] >= 0, base + t_off[rows, np.maximum(wl.src2, 0)[None, :]], 0
        ),
        "out_addr": base + t_off[rows, np.arange(1, L + 1)[None, :]],
        "p_addr": np.where(comp, p_addr, 0),
        "w_addr": np.where(comp, p_addr + p_len, 0),
        "ntiles": ntiles,
        "kt": np.where(comp, kt, 0),
        "tile_w": np.where(comp, tile_w, 0),
        "p_len": p_len,
        "blob": np.where(comp, blob, 0),
        "t": np.where(comp, t, 1),
        "kg": np.where(comp, kg, 1),
    }


def _unique_layout(wl: CoreWorkload, cfg: CoreConfigs) -> tuple[dict[str, I64], I64]:
    """:func:`_layout` of the distinct (cols, weight rows, bus) of ``cfg`` and the index of
    each configuration's triple."""
    # the merge only tells weight buffers apart up to the deepest reduction a merge can need
    cap = 0
    if wl.merge is not None and wl.merge.any():
        cap = int((wl.groups * wl.t)[wl.merge].max())
    w_depth = np.minimum(core_geometry(cfg)["w_depth"], cap)
    triples = np.stack([cfg.cols, w_depth, cfg.bus], axis=1)
    ut, inv = np.unique(triples, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    return _layout(wl, ut[:, 0], ut[:, 1], ut[:, 2]), inv


def _needs(wl: CoreWorkload, cfg: CoreConfigs, geo: dict[str, I64], lay: dict[str, I64]
           ) -> dict[str, I64]:  # fmt: skip
    """What each (configuration, layer) needs of the buffers, as the compiler checks it: bytes
    of one ifmap copy (from the bus word of the input's address; a second input from the next
    bus word on), weight rows of one tile, ofmap bytes (a compute pass's tile from any byte of
    a bus word; a vector layer's output from the bus word of its address)."""
    bus = geo["bus"][:, None]
    comp = ~wl.vector[None, :]
    in_len = wl.in_len[None, :]
    pq = wl.pq[None, :]
    need_if = lay["in_addr"] % bus + in_len
    in2 = _cdiv(need_if, bus) * bus + lay["in2_addr"] % bus + in_len
    need_if = np.where(wl.src2[None, :] >= 0, in2, need_if)
    need_o = np.where(
        comp, cfg.cols[:, None] * pq + bus - 1, lay["out_addr"] % bus + wl.c[None, :] * pq
    )
    out: dict[str, I64] = {
        "if": need_if,
        "w": np.where(comp, lay["tile_w"] // geo["w_row"][:, None], 0),
        "o": need_o,
    }
    return out


def _feasible(
    wl: CoreWorkload, cfg: CoreConfigs, geo: dict[str, I64], lay: dict[str, I64]
) -> npt.NDArray[np.bool_]:
    need = _needs(wl, cfg, geo, lay)
    ok = (need["if"] <= geo["if_depth"][:, None]) & (need["w"] <= geo["w_depth"][:, None])
    ok &= need["o"] <= geo["o_depth"][:, None]
    feasible: npt.NDArray[np.bool_] = np.asarray(ok.all(axis=1))
    feasible &= (cfg.w_bits >= wl.w_bits) & (cfg.a_bits >= wl.a_bits)
    if wl.adder:
        feasible &= cfg.adder == 1
    if wl.problems:
        feasible[:] = False
    return feasible


def core_feasible(wl: CoreWorkload, cfg: CoreConfigs) -> npt.NDArray[np.bool_]:
    """Whether ``compile_model`` accepts the network on each configuration, (H,): every
    layer's input fits one ifmap copy (from the bus word of its DRAM address on), one weight
    tile fits the weight buffer and its outputs the ofmap buffer, the operand widths and PE
    kind suit the network."""
    lu, inv = _unique_layout(wl, cfg)
    lay = {k: v[inv] for k, v in lu.items()}
    return _feasible(wl, cfg, core_geometry(cfg), lay)


def _tiling(
    wl: CoreWorkload, cfg: CoreConfigs, geo: dict[str, I64], lay: dict[str, I64]
) -> tuple[I64, I64, npt.NDArray[np.bool_]]:
    """``tpp`` and ``npt`` per (configuration, layer), and whether the compiler accepts each
    configuration (``feasible``, (H,))."""
    R = cfg.rows[:, None]
    C = cfg.cols[:, None]
    bus = geo["bus"][:, None]
    comp = ~wl.vector[None, :]
    pq = wl.pq[None, :]
    rows_per_tile = np.maximum(lay["tile_w"] // geo["w_row"][:, None], 1)
    lim = np.minimum(
        np.minimum(geo["w_depth"][:, None] // rows_per_tile,
                   (geo["o_depth"][:, None] - (bus - 1)) // (C * pq)),
        PARAM_TILES,
    )  # fmt: skip
    tpp = np.where(comp, np.minimum(lim, lay["ntiles"]), 0)
    npt_ = np.where(comp, _cdiv(pq, R), 0)
    return tpp, npt_, _feasible(wl, cfg, geo, lay)


def core_plan(wl: CoreWorkload, cfg: CoreConfigs) -> dict[str, I64]:
    """The compiler's tiling and DRAM layout for every (configuration, layer), arrays (H, L):
    the descriptor fields the cycle model reads (``in_addr``, ``tpp``, ``w_addr``, ...) and
    ``feasible`` (H,) (whether ``compile_model`` accepts the network on the core)."""
    H, L = len(cfg), len(wl)
    lu, inv = _unique_layout(wl, cfg)
    lay = {k: v[inv] for k, v in lu.items()}
    tpp, npt_, feasible = _tiling(wl, cfg, core_geometry(cfg), lay)
    comp = ~wl.vector[None, :]
    pq = wl.pq[None, :]
    return {
        "feasible": feasible,
        **{k: lay[k] for k in ("in_addr", "in2_addr", "out_addr", "p_addr", "w_addr", "ntiles",
                               "kt", "tile_w", "blob", "t", "kg")},
        "in_len": np.broadcast_to(wl.in_len[None, :], (H, L)),
        "tpp": tpp,
        "npt": npt_,
        "c_pq": np.where(comp, cfg.cols[:, None] * pq, wl.c[None, :] * pq),
    }  # fmt: skip


def evaluate_core(
    wl: CoreWorkload,
    cfg: CoreConfigs,
    platform: Platform | None = None,
    *,
    energy: bool = True,
    per_layer: bool = True,
) -> CoreResult:
    """Cycles per (configuration, layer) of every configuration of ``cfg`` on ``wl``; energy
    (pJ) per layer, or with ``per_layer=False`` its sum over layers (shape (H, 1))."""
    H, L = len(cfg), len(wl)
    tm = dram_timing()
    rd, wr = int(tm["read_burst_overhead"]), int(tm["write_burst_overhead"])
    geo = core_geometry(cfg)
    lu, inv = _unique_layout(wl, cfg)
    lay = {k: v[inv] for k, v in lu.items()}
    comp = ~wl.vector[None, :]
    in_len = wl.in_len[None, :] + np.zeros((H, 1), dtype=np.int64)
    pq = wl.pq[None, :]
    K = wl.c[None, :]
    c_pq = K * pq
    bus = geo["bus"][:, None] + np.zeros((1, L), dtype=np.int64)
    R = cfg.rows[:, None]
    C = cfg.cols[:, None]
    load = _dma(lay["in_addr"], in_len, bus, rd)
    load = load + np.where(wl.src2[None, :] >= 0, _dma(lay["in2_addr"], in_len, bus, rd), 0)
    ntiles, tile_w, t, kt = lay["ntiles"], lay["tile_w"], lay["t"], lay["kt"]
    kg = lay["kg"]
    tpp, npt, feasible = _tiling(wl, cfg, geo, lay)
    tpp_s = np.maximum(tpp, 1)
    npass = np.where(comp, _cdiv(ntiles, tpp_s), 0)
    two = np.where(wl.src2 >= 0, 2, 1)[None, :]
    p_tile = geo["p_tile"][:, None]
    # per pass: one weight and one parameter load, one write-back of the pass's channels
    # (contiguous: channel chan(tile) = (tile // kt) * kg + (tile % kt) * C starts a tile)
    out_a = lay["out_addr"]
    shape = (H, L)

    def flat(x: Any) -> I64:
        out: I64 = np.broadcast_to(x, shape).ravel()
        return out

    np_f, tpp_f, nt_f, tw_f = flat(npass), flat(tpp_s), flat(ntiles), flat(tile_w)
    wa_f, pa_f, pt_f, bus_f = flat(lay["w_addr"]), flat(lay["p_addr"]), flat(p_tile), flat(bus)
    kt_f, kg_f, c_f = flat(np.maximum(kt, 1)), flat(kg), flat(C)
    pq_f, oa_f = flat(pq), flat(out_a)
    pass_f = np.zeros(H * L, dtype=np.int64)
    wb_f = np.zeros(H * L, dtype=np.int64)
    first_f = np.zeros(H * L, dtype=np.int64)  # the first pass's weight + parameter loads
    last_f = np.zeros(H * L, dtype=np.int64)  # the last pass's (posted) write-back
    idx = np.flatnonzero(flat(comp & feasible[:, None]) & (np_f > 0))
    j = 0
    while idx.size:  # pass j of every layer that has one, gathered
        s0: I64 = j * tpp_f[idx]
        e0: I64 = np.minimum(s0 + tpp_f[idx], nt_f[idx])
        n = e0 - s0
        bb = bus_f[idx]
        w_c = _dma(wa_f[idx] + s0 * tw_f[idx], n * tw_f[idx], bb, rd)
        p_c = _dma(pa_f[idx] + s0 * pt_f[idx], n * pt_f[idx], bb, rd)
        kt_i, kg_i, c_i = kt_f[idx], kg_f[idx], c_f[idx]
        ch0: I64 = (s0 // kt_i) * kg_i + (s0 % kt_i) * c_i
        ch1: I64 = (e0 // kt_i) * kg_i + (e0 % kt_i) * c_i
        o_c = _dma(oa_f[idx] + ch0 * pq_f[idx], (ch1 - ch0) * pq_f[idx], bb, wr)
        pass_f[idx] += w_c + p_c
        wb_f[idx] += o_c
        last_f[idx] = o_c
        if j == 0:
            first_f[idx] = w_c + p_c
        j += 1
        idx = idx[np_f[idx] > j]
    pass_load = pass_f.reshape(shape)
    posted = last_f.reshape(shape)  # core_model._write_backs(...)[-1]
    wb_c = wb_f.reshape(shape) - posted + POSTED_ISSUE
    load = load + np.where(comp, pass_load, 0)
    fetch = _dma(np.arange(L, dtype=np.int64)[None, :] * DESC_BYTES, DESC_BYTES + 0 * bus, bus, rd)
    # core_model.posted_wait: the input load waits for the previous layer's posted write-back
    prev = np.zeros(shape, dtype=np.int64)
    prev[:, 1:] = np.where(comp[:, :-1], posted[:, :-1], 0)
    spent = np.where(comp, 5 + fetch + first_f.reshape(shape), 4 + fetch)
    load = load + np.maximum(0, prev - 1 - spent)
    flush_c = flush_compute_cycles(R, C)  # type: ignore[arg-type]
    cmp_c = npass * (R + 1 + flush_c) + npt * ntiles * _tile_cycles(R, C, t)
    vec_c = c_pq * wl.kr[None, :] * wl.ks[None, :] + FLUSH_CYCLES
    compute = np.where(comp, cmp_c, vec_c)
    wb = np.where(comp, wb_c, _dma(out_a, c_pq + 0 * out_a, bus, wr))
    control = np.where(comp, 2 + npass, 2)
    end_addr = np.full(H, L * DESC_BYTES, dtype=np.int64)
    end_fetch = _dma(end_addr, np.full(H, DESC_BYTES), geo["bus"], rd)
    last_posted = np.where(comp[0, -1], posted[:, -1], 0) if L else np.zeros(H, dtype=np.int64)
    end_cycles = end_fetch + 1 + np.maximum(0, last_posted - 1 - (4 + end_fetch))
    blob = lay["blob"]

    res: dict[str, I64] = {}
    area: F64 | None = None
    static = np.zeros(H)
    e = np.zeros((H, L))
    if platform is not None:
        if platform.is_fpga:
            assert platform.device is not None
            res = core_resources_batch(cfg, platform.device.synth_target)
            static = np.full(H, platform.device.static_power_w)
        else:
            area = core_area_um2(cfg, platform)
            static = _leak_vec(platform, area)
        if energy:
            beats = (npt * ntiles * t).astype(np.float64)  # array beats of the layer
            qty = {
                "b": beats,
                "post_rc": np.where(comp, (npt * ntiles).astype(np.float64), 0.0),
                "post_1": np.where(comp, 0, c_pq * wl.kr[None, :] * wl.ks[None, :]) + 0.0 * beats,
                "if_written": in_len * two + 0.0 * beats,
                "w_written": (ntiles * tile_w).astype(np.float64),
                "out_bytes": c_pq + 0.0 * beats,
                "dram_bytes": DESC_BYTES + in_len * two + blob + c_pq + 0.0 * beats,
            }
            cyc = fetch + load + compute + wb + control
            if not per_layer:
                qty = {k: v.sum(axis=1, keepdims=True) for k, v in qty.items()}
                cyc = cyc.sum(axis=1, keepdims=True)
            e = _energy(cfg, platform, qty)
            e = e + static[:, None] * cyc / (cfg.clock_mhz[:, None] * 1e6) * 1e12
    return CoreResult(
        fetch=np.ascontiguousarray(fetch),
        load=load,
        compute=compute,
        writeback=wb,
        control=control,
        energy_pj=e,
        end_cycles=end_cycles,
        feasible=feasible,
        resources=res,
        area_um2=area,
        static_w=static,
    )


def _leak_vec(platform: Platform, area: F64) -> F64:
    tech = platform.tech  # Technology.leakage_w, linear in the area
    out: F64 = area * tech.scalars["leakage_nw_per_um2"] * 1e-9 * tech.leakage_scale
    return out


def _per_unique(values: I64, fn: object) -> F64:
    u, inv = np.unique(values, return_inverse=True)
    vals = np.array([fn(int(v)) for v in u], dtype=np.float64)  # type: ignore[operator]
    out: F64 = vals[inv.reshape(values.shape)]
    return out


def _pe(adder: int, a: int, w: int) -> PESpec:
    return PESpec("adder" if adder else "mac", "int", w, a, 32, 1)


def sram_read_pj_per_bit(tech: Any, size_bytes: I64) -> F64:
    """``Technology.sram_read_pj_per_bit`` for an array of sizes (log-log interpolation of the
    same table, the same equations; ``tests/test_core_batch.py`` checks they agree)."""
    pts = tech.sram_points
    xs = np.array([math.log(sz) for sz, _ in pts])
    ys = np.array([math.log(e) for _, e in pts])
    x = np.log(np.maximum(size_bytes.astype(np.float64), 1.0))
    i = np.clip(np.searchsorted(xs, x, side="left"), 1, len(xs) - 1)
    slope = (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1])
    out: F64 = np.exp(ys[i - 1] + slope * (x - xs[i - 1])) / 64.0 * tech.energy_scale
    return out


def _energy(cfg: CoreConfigs, platform: Platform, q: dict[str, F64]) -> F64:
    """Dynamic energy (pJ) from the technology tables. ``q`` holds per-(configuration, layer)
    counts, or their sums over layers (the model is linear in them): array beats ``b``,
    post-processing ops ``post_rc`` (times R*C) and ``post_1``, bytes written to the ifmap
    (each of R copies) and weight buffers, output bytes, DRAM bytes."""
    tech = platform.tech
    key = cfg.adder * 10000 + cfg.a_bits * 100 + cfg.w_bits
    e_pe = _per_unique(
        key, lambda k: tech.pe_op_energy_pj(_pe(k // 10000, k // 100 % 100, k % 100))
    )
    e_reg = _per_unique(key, lambda k: tech.register_energy_pj((k // 100 % 100) + k % 100 + 32))
    e_post = tech.add_energy_pj(32, "int")
    depths = (("i", cfg.if_bytes // cfg.rows), ("w", cfg.w_bytes // cfg.cols), ("o", cfg.o_bytes))
    ratio = tech.scalars["sram_write_over_read"]
    rd = {n: sram_read_pj_per_bit(tech, b)[:, None] for n, b in depths}
    wr = {n: v * ratio for n, v in rd.items()}
    R = cfg.rows[:, None].astype(np.float64)
    C = cfg.cols[:, None].astype(np.float64)
    b = q["b"]
    e = b * (R * C * (e_pe + e_reg)[:, None] + 8 * R * rd["i"] + 8 * C * rd["w"])
    e = e + (q["post_rc"] * R * C + q["post_1"]) * e_post
    e = e + 8 * q["if_written"] * R * wr["i"] + 8 * q["w_written"] * wr["w"]
    e = e + 8 * q["out_bytes"] * (wr["o"] + rd["o"]) + 8 * q["dram_bytes"] * tech.dram_pj_per_bit
    out: F64 = e
    return out


# -- resources and area ------------------------------------------------------------------------
def _xilinx_bram_blocks(depth: I64, width: int = 8) -> I64:
    bits = depth * width
    big = _cdiv(depth, _XILINX_BRAM36_DEPTH) * -(-width // 9)
    out: I64 = np.where(
        bits <= _XILINX_LUTRAM_MAX_BITS,
        0,
        np.where((bits <= _XILINX_BRAM18_BITS) & (width <= 9), 1, big),
    )
    return out


def core_resources_batch(cfg: CoreConfigs, target: str) -> dict[str, I64]:
    """:func:`autochip.predictor.core_model.core_resources` for every configuration."""
    from autochip.hw.fpga_model import FEATURES, RESOURCES, _model, coefficients_for

    ctrl_model = _control_model()["targets"]
    if target not in ctrl_model:
        raise SpecError(
            "core resources",
            [
                f"target: the whole-core resource model is calibrated for "
                f"{sorted(ctrl_model)}, found {target!r} (scripts/validate_core.py --calibrate)"
            ],
        )
    H = len(cfg)
    r, c = cfg.rows.astype(np.float64), cfg.cols.astype(np.float64)
    n = r * c
    out = {k: np.zeros(H, dtype=np.int64) for k in ("lut", "ff", "dsp", "bram")}
    model = _model()
    pairs = cfg.a_bits * 100 + cfg.w_bits
    for pair in np.unique(pairs):
        sel = pairs == pair
        a, w = int(pair // 100), int(pair % 100)
        coefs = coefficients_for(model, target, "mac", a, w)
        rr, cc, nn = r[sel], c[sel], n[sel]
        moves = rr * (cc - 1) * (a + 1) + (rr - 1) * cc * w
        moves += (rr * (rr - 1) // 2) * (a + 1) + (cc * (cc - 1) // 2) * w
        x = {
            "pe_core": nn * (a * w),
            "pe_ops": nn * (a + w),
            "pe_acc": nn * 32,
            "pe": nn,
            "moves": moves,
            "out": cc * 32,
            "one": np.ones_like(rr),
        }
        for res in RESOURCES:
            if res not in ("lut", "ff", "dsp"):
                continue
            acc = np.zeros_like(rr)
            for f in FEATURES:
                acc = acc + coefs.get(res, {}).get(f, 0.0) * x[f]
            out[res][sel] += np.maximum(0, np.round(acc)).astype(np.int64)
    coefs_c: dict[str, dict[str, float]] = ctrl_model[target]
    xc = {"one": np.ones(H), "rows": r, "cols": c}
    for res in ("lut", "ff", "dsp"):
        acc = np.zeros(H)
        for f in CONTROL_FEATURES:
            acc = acc + coefs_c[res].get(f, 0.0) * xc[f]
        out[res] += np.maximum(0, np.round(acc)).astype(np.int64)
    # core_model.buffer_brams of core_params' depths (its byte-wide geometry predates the
    # wide buffers of core_wram.v: stale for the current RTL, docs/core.md)
    geo = core_geometry(cfg)
    out["bram"] = (
        cfg.rows * _xilinx_bram_blocks(geo["if_depth"])
        + cfg.cols * _xilinx_bram_blocks(geo["w_depth"])
        + _xilinx_bram_blocks(geo["o_depth"])
        + 10 * _xilinx_bram_blocks(PARAM_TILES * cfg.cols)
    )
    return out


def core_area_um2(cfg: CoreConfigs, platform: Platform) -> F64:
    """ASIC area: PEs and the three buffers from the technology tables (as ``asic_area``)."""
    tech = platform.tech
    key = cfg.adder * 10000 + cfg.a_bits * 100 + cfg.w_bits
    pe = _per_unique(key, lambda k: tech.pe_area_um2(_pe(k // 10000, k // 100 % 100, k % 100)))
    area: F64 = cfg.rows * cfg.cols * pe
    per_byte = 8 * tech.scalars["sram_um2_per_bit"] * tech.area_scale
    area = area + (cfg.if_bytes + cfg.w_bytes + cfg.o_bytes) * per_byte
    return area


@dataclass(frozen=True)
class PlannedLayer:
    """One layer of configuration ``i`` as the scalar model reads it (``CompiledLayer``'s
    ``name``/``mode``/``get``), from :func:`core_plan`: lets ``core_model.core_cycles`` cost
    a network that was never compiled."""

    name: str
    mode: str
    fields: dict[str, int]

    def get(self, key: str) -> int:
        return int(self.fields.get(key, 0))


def planned_layers(wl: CoreWorkload, cfg: CoreConfigs, i: int) -> tuple[PlannedLayer, ...]:
    plan = core_plan(wl, cfg.take(np.array([i])))
    out = []
    for j, name in enumerate(wl.names):
        f = {k: int(v[0, j]) for k, v in plan.items() if k != "feasible"}
        f.update(pq=int(wl.pq[j]), c=int(wl.c[j]))
        f.update(p=int(wl.p[j]), q=int(wl.q[j]), kr=int(wl.kr[j]), ks=int(wl.ks[j]))
        out.append(PlannedLayer(name, "vector" if wl.vector[j] else "mac", f))
    return tuple(out)


def why_infeasible(wl: CoreWorkload, cfg: CoreConfigs, i: int) -> list[str]:
    """What keeps configuration ``i`` from running ``wl`` (empty when it is feasible)."""
    one = cfg.take(np.array([i]))
    out = list(wl.problems)
    geo = core_geometry(one)
    lu, inv = _unique_layout(wl, one)
    need = _needs(wl, one, geo, {k: v[inv] for k, v in lu.items()})
    if_depth, w_depth = int(geo["if_depth"][0]), int(geo["w_depth"][0])
    o_depth, w_row = int(geo["o_depth"][0]), int(geo["w_row"][0])
    if int(one.w_bits[0]) < wl.w_bits or int(one.a_bits[0]) < wl.a_bits:
        out.append(f"the network needs w_bits >= {wl.w_bits} and a_bits >= {wl.a_bits}")
    if wl.adder and not one.adder[0]:
        out.append("the network has adder layers: expected pe.kind 'adder'")
    for j, name in enumerate(wl.names):
        n_if, n_w, n_o = (int(need[k][0, j]) for k in ("if", "w", "o"))
        if n_if > if_depth:
            out.append(
                f"layer '{name}': its input ({n_if} bytes from the bus word of its address) does "
                f"not fit one ifmap copy ({if_depth} bytes = buffers.ifmap.size_kb / rows in "
                "whole bus words)"
            )
        if n_w > w_depth:
            out.append(
                f"layer '{name}': one weight tile needs {n_w} weight rows of {w_row} bytes "
                f"(have {w_depth})"
            )
        if n_o > o_depth:
            out.append(f"layer '{name}': its outputs need {n_o} ofmap bytes (have {o_depth})")
    return out

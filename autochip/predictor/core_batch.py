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
  touched, its words in bursts of at most 256 beats); the per-pass weight, parameter and
  write-back commands of a layer are back-to-back runs, summed over the passes in closed form
  too (:func:`_dma_run`: telescoping word and burst-grid counts, linear congruences and floor
  sums), once per distinct (layout, layer, tiles per pass), kept from call to call with the
  layouts (:func:`_kept_columns`).
* Energy from the platform's technology tables (the analytic model's unit costs): PE operations
  and post-processing, SRAM bytes read and written per buffer, DRAM bytes, static power.

Infeasible configurations (a layer the compiler would refuse: input larger than one ifmap copy,
a weight tile larger than the weight buffer, ...) get ``feasible = False`` and infinite latency.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from autochip.errors import SpecError
from autochip.hw.platform import Platform
from autochip.hw.spec import HardwareSpec, PESpec
from autochip.ir.graph import AccelGraph
from autochip.ir.node import OpKind
from autochip.predictor.core_model import (
    _BRAM_DROPS_LANES,
    _BRAM_MODES,
    _LUTRAM,
    ADDED_LOGIC,
    BURST_BOUNDARY,
    DESC_BYTES,
    FIT_RESOURCES,
    FLUSH_CYCLES,
    MAX_BURST,
    POSTED_ISSUE,
    READ_ISSUE,
    RESIDENT_LOAD,
    WRITE_ISSUE,
    _model_for,
    dram_timing,
    flush_compute_cycles,
    pe_resources,
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
_LOG_PAGE = BURST_BOUNDARY.bit_length() - 1  # both powers of two: divisions are shifts
_LOG_BURST = MAX_BURST.bit_length() - 1
assert 1 << _LOG_PAGE == BURST_BOUNDARY and 1 << _LOG_BURST == MAX_BURST


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
    # compute layers' input height, row stride and row padding (feature-map tiling in row
    # bands, :func:`tiled_layers`); None: not known (no tiling)
    h: I64 | None = None
    sh: I64 | None = None
    ph: I64 | None = None

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
            if k != OpKind.LINEAR:
                row.update(h=d.H, sh=d.stride_h, ph=d.pad_h)
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
        h=col("h", 1),
        sh=col("sh", 1),
        ph=col("ph"),
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
    # frexp: x = f * 2^e with 0.5 <= f < 1, e = x.bit_length() (exact below 2^53; 0 for 0)
    out: I64 = np.frexp(x.astype(np.float64))[1].astype(np.int64)
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


def _cdiv_k(x: I64, k: int) -> I64:
    """``ceil(x / k)`` for a constant ``k >= 1``: a shift when ``k`` is a power of two."""
    if k & (k - 1):
        return _cdiv(x, k)
    out: I64 = (x + (k - 1)) >> (k.bit_length() - 1)
    return out


def _dma(addr: I64, length: I64, bus: I64, over: int) -> I64:
    """``core_model.dma_cycles`` element-wise: the bus words of [addr, addr + length), per 4 KB
    page touched its words in bursts of at most 256 beats, each costing ``over`` more; 2 for
    the issue and done cycles (also for an empty command). ``bus`` is a power of two (the
    core's), so every division is a shift (floor division by 2^k, also of negative numbers)."""
    lb = _log2(np.asarray(bus))
    wa = addr >> lb
    we = ((addr + length - 1) >> lb) + 1
    words = we - wa
    lp = _LOG_PAGE - lb  # log2 of the words per 4 KB page
    pa, pe = wa >> lp, (we - 1) >> lp
    first = np.minimum(words, (1 << lp) - (wa & ((1 << lp) - 1)))
    last = we - (pe << lp)
    up, lm = MAX_BURST - 1, _LOG_BURST  # ceil(x / MAX_BURST) = (x + up) >> lm
    bursts = np.where(
        pa == pe,
        (words + up) >> lm,
        ((first + up) >> lm) + (pe - pa - 1) * (((1 << lp) + up) >> lm) + ((last + up) >> lm),
    )
    out: I64 = np.where(length > 0, 2 + words + over * bursts, 2)
    return out


def dma_cycles_batch(addr: I64, length: I64, bus: I64, over: int) -> I64:
    """``core_model.dma_cycles`` element-wise (``bus`` powers of two; ``over`` the read or
    write burst overhead of ``core_timing.yaml``)."""
    return _dma(addr, length, bus, over)


def _floor_sum(n: I64, m: I64, a: I64, b: I64) -> I64:
    """``sum(floor((a * i + b) / m) for i in range(n))`` element-wise (n >= 0, m >= 1; a, b
    any sign): the Euclid-like recursion of AtCoder Library's ``floor_sum``, vectorised."""
    shape = np.broadcast(n, m, a, b).shape
    n, m, a, b = (np.broadcast_to(np.asarray(x, dtype=np.int64), shape).ravel().copy()
                  for x in (n, m, a, b))  # fmt: skip
    a2, b2 = a % m, b % m  # negative a, b: shift into [0, m)
    ans = -(n * (n - 1) // 2 * ((a2 - a) // m) + n * ((b2 - b) // m))
    a, b = a2, b2
    idx = np.arange(n.size)
    while idx.size:
        ans[idx] += n * (n - 1) // 2 * (a // m) + n * (b // m)
        a, b = a % m, b % m
        y = a * n + b
        go = y >= m
        idx, y, a, m = idx[go], y[go], a[go], m[go]
        n, b = y // m, y % m
        m, a = a, m
    out: I64 = ans.reshape(shape)
    return out


@cache
def _mod4096_tables() -> tuple[I64, I64]:
    """Trailing zeros of s (12 for 0) and, for odd s, s^-1 mod 4096 (Newton's iteration
    x <- x (2 - s x), exact mod 2^3, 2^6, 2^12), for s = 0 .. 4095."""
    s = np.arange(4096, dtype=np.int64)
    low = s & -s
    ctz = np.where(low > 0, np.frexp(np.maximum(low, 1).astype(np.float64))[1] - 1, 12)
    inv = s.copy()
    for _ in range(3):
        inv = (inv * (2 - s * inv)) & 4095
    return ctz.astype(np.int64), inv


def _multiples(addr: I64, step: I64, j0: I64, j1: I64, log2m: I64) -> I64:
    """How many of ``addr + j * step`` (j0 <= j < j1) are multiples of ``2 ** log2m``
    (log2m <= 12) in closed form: with step = 2^v * s (s odd, v < log2m), exactly the j of
    one class modulo 2^(log2m - v), j = -(addr / 2^v) * s^-1 (the inverse mod 4096 from a
    table); all j or none when 2^log2m divides the step."""
    ctz, inverse = _mod4096_tables()
    s12 = step & 4095
    v = np.minimum(ctz[s12], log2m)
    inv = inverse[np.right_shift(s12, v)]  # s odd when v < log2m
    t = np.left_shift(1, log2m - v)  # the period of the solutions
    ok = (addr & (np.left_shift(1, v) - 1)) == 0
    js = (-np.right_shift(addr, v) * inv) & (t - 1)
    n_cls: I64 = (j1 - 1 - js) // t - (j0 - 1 - js) // t
    out: I64 = np.where(ok, np.where(v >= log2m, np.maximum(j1 - j0, 0), n_cls), 0)
    return out


def _log2(x: I64) -> I64:
    out: I64 = np.frexp(x.astype(np.float64))[1] - 1  # x a power of two
    return out


def _count_in_page(a: I64, step: I64, n: I64, lo: I64, hi: I64) -> I64:
    """``#{j < n : lo <= (a + j * step) mod 4096 < hi}`` element-wise: as floor sums,
    [r < c] = floor(u / 4K) - floor((u - c) / 4K); runs of at most 16 commands directly (cheaper
    than the floor sums' recursion)."""
    k = BURST_BOUNDARY
    out = np.zeros(n.size, dtype=np.int64)
    big = np.flatnonzero(n > 16)
    if big.size:
        nn = np.concatenate([n[big], n[big]])
        fs = _floor_sum(nn, np.full(nn.size, k), np.concatenate([step[big], step[big]]),
                        np.concatenate([a[big] - lo[big], a[big] - hi[big]]))  # fmt: skip
        out[big] = fs[: big.size] - fs[big.size :]
    idx = np.flatnonzero((n > 0) & (n <= 16))
    j = 0
    while idx.size:
        r = (a[idx] + j * step[idx]) & (k - 1)
        out[idx] += (r >= lo[idx]) & (r < hi[idx])
        j += 1
        idx = idx[n[idx] > j]
    return out


def _dma_run(
    addr: I64, length: I64, n: I64, bus: I64, over: I64 | int, stride: I64 | None = None
) -> I64:
    """``sum(core_model.dma_cycles(addr + j * stride, length, bus) for j in range(n))``
    element-wise, in closed form (n >= 0; ``stride`` default ``length``: back-to-back
    commands; ``tests/test_core_batch.py`` checks it against the scalar loop on random
    addresses, lengths, strides and buses).

    Command j covers the bus words x .. e - 1 of bytes [u, u + L), u = addr + j * L; its
    bursts start at x, then every 256 words while in x's 4 KB page, then at the multiples of
    G = min(256, words per page) in the later pages. Counting the multiples of G in (x, e):
    bursts = 1 + floor((e - 1) / G) - floor(x / G) - [one page] * [(e - 1) mod G < x mod G]
    (the correction: in the first page the bursts run from x, off the grid, so one fewer when
    the command ends in its grid block before x's offset; none when G is a page, bus >= 16).
    The words and the grid terms telescope over the run (consecutive commands start where the
    last ended): a difference of two floors less the commands that start on a word / grid
    boundary, a linear congruence modulo a power of two (:func:`_multiples`). The correction
    is an interval of u mod 4 KB (summed as floor sums, :func:`_floor_sum`), except when
    (L - 1) mod (G bus words) is within one bus word of a whole block: then it depends on
    u mod bus too, and the commands are summed by their class j mod bus. With a ``stride``
    (commands not back to back) the words and grid terms are floor sums instead."""
    k = BURST_BOUNDARY
    strided = stride is not None
    step = length if stride is None else stride
    shape = np.broadcast(addr, length, n, bus, step).shape
    A, L, N, B, S = (np.broadcast_to(np.asarray(x, dtype=np.int64), shape).ravel()
                     for x in (addr, length, n, bus, step))  # fmt: skip
    out = np.where(N > 0, 2 * N, 0)
    live = np.flatnonzero((N > 0) & (L > 0))
    A, L, N, B, S = A[live], L[live], N[live], B[live], S[live]
    lb = _log2(B)
    gb = np.minimum(MAX_BURST * B, k)  # the grid in bytes: G words
    lg = _log2(gb)
    one = np.ones_like(N)
    if strided:  # sum over j of floor((A + L - 1 + j S) / m) - floor((A + j S) / m)
        fs = _floor_sum(np.concatenate([N, N, N, N]), np.concatenate([B, B, gb, gb]),
                        np.concatenate([S, S, S, S]),
                        np.concatenate([A + L - 1, A, A + L - 1, A]))  # fmt: skip
        m = N.size
        words = N + fs[:m] - fs[m : 2 * m]
        grid = fs[2 * m : 3 * m] - fs[3 * m :]
    else:
        end = A + N * L - 1
        words = N + (end >> lb) - (A >> lb) - _multiples(A, L, one, N, lb)
        grid = (end >> lg) - (A >> lg) - _multiples(A, L, one, N, lg)
    corr = np.zeros(live.size, dtype=np.int64)
    sel = np.flatnonzero((gb < k) & (k >= L))  # a finer grid than a page, one-page commands
    if sel.size:
        As, Ls, ns, Bs, g, Ss = A[sel], L[sel], N[sel], B[sel], gb[sel], S[sel]
        mu = g - (Ls - 1) % g  # (e - 1) mod G < x mod G  <=>  u mod (G bytes) >= mu ...
        # ... and then, when mu < bus, u mod bus < mu too (always, when every u is a multiple
        # of the bus: a bus-aligned run, such as the weight and parameter loads)
        fine = (mu < Bs) & (((As | Ss) & (Bs - 1)) != 0)
        # the commands j = t + i * T (T = 1, or bus when fine) whose u mod bus passes
        jobs: list[tuple[I64, I64, I64, I64]] = []  # (element, first address, step, count)
        e_all = np.arange(sel.size)
        jobs.append((e_all[~fine], As[~fine], Ss[~fine], ns[~fine]))
        for t in range(8 if fine.any() else 0):
            f = np.flatnonzero(fine & (t < Bs))
            a0 = As[f] + t * Ss[f]
            f = f[a0 % Bs[f] < mu[f]]
            a0 = As[f] + t * Ss[f]
            jobs.append((f, a0, Bs[f] * Ss[f], np.maximum(-(-(ns[f] - t) // Bs[f]), 0)))
        el = np.concatenate([j[0] for j in jobs])
        a0, st, cnt = (np.concatenate([j[i] for j in jobs]) for i in (1, 2, 3))
        # intervals [q G + mu, min(q G + G, 4097 - L)) of the page, q < 4 KB / G
        parts_e, parts = [], []
        for q in range(k // 1024):
            lo = q * g[el] + mu[el]
            hi = np.minimum(q * g[el] + g[el], k + 1 - Ls[el])
            use = np.flatnonzero((q * g[el] < k) & (lo < hi))
            parts_e.append(use)
            parts.append((a0[use], st[use], cnt[use], lo[use], hi[use]))
        ue = np.concatenate(parts_e)
        a1, s1, c1, lo1, hi1 = (np.concatenate([p[i] for p in parts]) for i in range(5))
        hits = _count_in_page(a1, s1, c1, lo1, hi1)
        corr += np.bincount(sel[el[ue]], weights=hits, minlength=corr.size).astype(np.int64)
    out[live] += words + over * (N + grid - corr)
    res: I64 = out.reshape(shape)
    return res


def _layout_dma(wl: CoreWorkload, lu: dict[str, I64], rd: int, wr: int
                ) -> tuple[I64, I64, I64, I64]:  # fmt: skip
    """The DMA commands that depend on the DRAM layout and the bus alone, costed once per
    distinct layout (``lu``, (U, L)): descriptor fetches, input loads (first and second
    input), vector layers' write-backs, (U, L) each."""
    L = len(wl)
    ub = lu["bus"] + np.zeros((1, L), dtype=np.int64)
    in_len = wl.in_len[None, :] + 0 * ub
    # the controller's read commands: READ_ISSUE each (core_model.read_cycles)
    fetch = READ_ISSUE + _dma(np.arange(L, dtype=np.int64)[None, :] * DESC_BYTES,
                              DESC_BYTES + 0 * ub, ub, rd)  # fmt: skip
    load = READ_ISSUE + _dma(lu["in_addr"], in_len, ub, rd)
    load2 = np.where(wl.src2[None, :] >= 0, READ_ISSUE + _dma(lu["in2_addr"], in_len, ub, rd), 0)
    vec_wb = np.where(
        wl.vector[None, :], WRITE_ISSUE + _dma(lu["out_addr"], wl.c * wl.pq + 0 * ub, ub, wr), 0
    )
    return fetch, load, load2, vec_wb


# id of a workload -> (a reference to it, what is kept for it: the pass DMA of its triples,
# :func:`_pass_rows`; its residency, :func:`_allocation`), dropped when the workload is gone
_MEMO: dict[int, tuple[Any, dict[Any, Any]]] = {}


def _workload_memo(wl: CoreWorkload) -> dict[Any, Any]:
    """What is kept from call to call for ``wl`` (values that depend on the workload and their
    key alone: the same results with or without)."""
    entry = _MEMO.get(id(wl))
    if entry is None or entry[0]() is not wl:
        entry = (weakref.ref(wl, _forget), {})
        _MEMO[id(wl)] = entry
    return entry[1]


def _forget(ref: Any) -> None:
    """Drop what is kept for a workload that is gone."""
    for k in [k for k, (r, _) in _MEMO.items() if r is ref]:
        del _MEMO[k]


def _pass_dma(wl: CoreWorkload, lu: dict[str, I64], inv: I64, busy: npt.NDArray[np.bool_],
              tpp: I64, ci: I64, rd: int, wr: int, pf: npt.NDArray[np.bool_] | None = None,
              run: I64 | None = None) -> tuple[I64, I64, I64, I64, I64, I64]:  # fmt: skip
    """Per (configuration, compute layer ``ci``), (H, Lc): the cycles of the per-pass weight
    and parameter loads, of the write-backs of every pass but the last, of the first pass's
    weight and parameter loads and of the last pass's write-back, where ``busy`` (else 0);
    with weight prefetch (``pf``, ``run``: a full pass's cycles) also the write-backs' waits
    for the prefetch engine in all and the first pass's (:func:`_pf_table`, :func:`_pf_apply`;
    0 where not ``pf & busy``). All of it but the waits depends on (layout, layer, tiles per
    pass) only: :func:`_pass_table` once per distinct triple (:func:`_pass_rows`: kept from
    call to call)."""
    H, Lc = tpp.shape
    flat = busy.ravel()
    pos = np.flatnonzero(flat)
    key = ((inv[:, None] * Lc + np.arange(Lc)[None, :]) * (PARAM_TILES + 1) + tpp).ravel()
    key = key[pos] if pos.size < flat.size else key
    # distinct keys without sorting: the key space is small (layouts x layers x 17)
    seen = np.zeros(int(key.max(initial=0)) + 1, dtype=bool)
    seen[key] = True
    ukey = np.flatnonzero(seen)
    back = (np.cumsum(seen) - 1)[key]
    at = np.empty(ukey.size, dtype=np.int64)
    at[back] = pos  # a (configuration, layer) of every distinct triple, flat index
    tab = _pass_rows(wl, lu, inv[at // Lc], at % Lc, ci, tpp.ravel()[at], rd, wr)
    outs = []
    for v in tab[:4]:
        if pos.size == flat.size:
            outs.append(v[back].reshape(H, Lc))
        else:
            o = np.zeros(H * Lc, dtype=np.int64)
            o[pos] = v[back]
            outs.append(o.reshape(H, Lc))
    w_tot, w_0 = np.zeros(H * Lc, dtype=np.int64), np.zeros(H * Lc, dtype=np.int64)
    if pf is not None and run is not None:
        sel = pf.ravel()[pos]
        ip, b = pos[sel], back[sel]  # (configuration, layer) with prefetch, flat; its triple
        rn = run.ravel()[ip]
        # a pass waits for max(0, 1 + loads - rn): none where rn is at least every bound
        may = np.flatnonzero(tab[16][b] >= rn)
        if may.size:
            ip, b, rn = ip[may], b[may], rn[may]
            tp, tw, wa, pt, pa, bb = tab[10:16]
            w_tot[ip], w_0[ip] = _pf_apply(tab[4:10], b, rn, tp, tw, wa, pt, pa, bb, rd)
    return (outs[0], outs[1], outs[2], outs[3], w_tot.reshape(H, Lc), w_0.reshape(H, Lc))


_KEPT_VALUES = 1 << 22  # int64 values kept per workload and name (_kept_columns: 32 MB)


def _pass_rows(wl: CoreWorkload, lu: dict[str, I64], u: I64, jc: I64, ci: I64, tp: I64,
               rd: int, wr: int) -> I64:  # fmt: skip
    """:func:`_pass_table` of the distinct triples (layout ``u`` of ``lu``, compute layer
    ``jc``, tiles per pass ``tp``), (17, K), kept from call to call per workload and DRAM
    timing (:func:`_kept_columns`): a triple is named by its layout's (cols, weight rows,
    bus) (``lu["key"]``), so a call with other configurations finds the triples an earlier
    one computed and computes only the others."""
    step = (PARAM_TILES + 1) * max(ci.size, 1)
    if int(lu["key"].max(initial=0)) >= (1 << 62) // step:  # keys past int64: not kept
        return _pass_table(wl, lu, u, ci[jc], tp, rd, wr)
    gk = (lu["key"][u, 0] * ci.size + jc) * (PARAM_TILES + 1) + tp
    return _kept_columns(wl, ("pass", rd, wr), gk,
                         lambda m: _pass_table(wl, lu, u[m], ci[jc[m]], tp[m], rd, wr))  # fmt: skip


def _kept_columns(wl: CoreWorkload, name: Any, keys: I64, compute: Callable[[I64], I64]) -> I64:
    """``compute(sel)`` (the values of ``keys[sel]``, (V, len(sel))) for distinct integer
    ``keys``, (V, len(keys)), kept from call to call per workload under ``name``: sorted
    keys, a binary search, and ``compute`` only for the keys not kept. At most
    ``_KEPT_VALUES`` values are kept per name: past that, it starts again from this call's
    keys (not kept either if they alone are more)."""
    memo = _workload_memo(wl)
    empty = np.zeros(0, dtype=np.int64)
    kept, idx, cols = memo.get(name, (empty, empty, None))
    at = np.minimum(np.searchsorted(kept, keys), max(kept.size - 1, 0))
    hit = kept[at] == keys if kept.size else np.zeros(keys.size, dtype=bool)
    if cols is not None and hit.all():
        found: I64 = cols[:, idx[at]]
        return found
    miss = np.flatnonzero(~hit)
    new = compute(miss)
    out = np.empty((new.shape[0], keys.size), dtype=np.int64)
    out[:, miss] = new
    if cols is not None:
        out[:, hit] = cols[:, idx[at[hit]]]
    if (kept.size + miss.size) * new.shape[0] > _KEPT_VALUES:  # start again from this call's
        kept, idx, cols, miss, new = empty, empty, None, np.arange(keys.size), out
        if keys.size * new.shape[0] > _KEPT_VALUES:
            memo.pop(name, None)
            return out
    start = 0 if cols is None else cols.shape[1]
    cols = new if cols is None else np.concatenate([cols, new], axis=1)
    order = np.argsort(keys[miss])
    ins = np.searchsorted(kept, keys[miss][order])
    memo[name] = (np.insert(kept, ins, keys[miss][order]), np.insert(idx, ins, start + order), cols)
    return out


def _pass_table(wl: CoreWorkload, lu: dict[str, I64], u: I64, j: I64, tp: I64, rd: int,
                wr: int) -> I64:  # fmt: skip
    """What a layer's passes take of the DMA per triple (layout ``u`` of ``lu``, layer ``j``,
    tiles per pass ``tp``), (17, K): the cycles of the per-pass weight and parameter loads,
    of the write-backs of every pass but the last, of the first pass's loads and of the last
    pass's write-back (rows 0-3), the prefetch waits' table (:func:`_pf_table`, rows 4-9),
    what :func:`_pf_apply` walks the passes with (rows 10-15: tiles per pass, weight tile
    bytes and address, parameter tile bytes and address, bus) and the most a pass's loads
    can take (row 16: no pass of a layer whose passes take at least that waits).

    Pass p carries tiles [p tpp, min((p + 1) tpp, ntiles)): one weight load of its tiles, one
    parameter load of their records, one write-back of their output channels (contiguous:
    tile s starts at channel (s // kt) kg + (s % kt) C). The passes before the last are back
    to back runs of one length, summed in closed form (:func:`_dma_run`; the write-back too
    when every pass starts the same number of channels further on), the last pass's commands
    one by one; grouped layers whose passes cover uneven channel counts (kg not a multiple of
    C, passes not whole groups) write back pass by pass. The first pass's weight and
    parameter loads come before the layer's input; the last pass's write-back is posted (it
    overlaps the next descriptor, ``core_model.posted_wait``)."""

    def g(name: str) -> I64:
        out: I64 = lu[name][u, j]
        return out

    def g1(name: str) -> I64:
        out: I64 = lu[name][u, 0]
        return out

    nt, kt, kg = g("ntiles"), np.maximum(g("kt"), 1), g("kg")
    c, bb, pt, pq = g1("cols"), g1("bus"), g1("p_tile"), wl.pq[j]
    full = _cdiv(nt, tp) - 1  # passes before the last
    s_last = full * tp
    n_last = nt - s_last
    n_first = np.minimum(tp, nt)
    wa, tw = g("w_addr"), g("tile_w")
    pa = g("p_addr")
    K = tp.size
    # weights and parameters in one call each (element-wise: the same sums, fewer calls)
    cat = np.concatenate
    r = _dma_run(cat([wa, pa]), cat([tp * tw, tp * pt]), cat([full, full]), cat([bb, bb]), rd)
    run_c = r[:K] + r[K:] + 2 * READ_ISSUE * full  # the passes before the last
    d = _dma(cat([wa + s_last * tw, pa + s_last * pt, wa, pa]),
             cat([n_last * tw, n_last * pt, n_first * tw, n_first * pt]), cat([bb, bb, bb, bb]),
             rd)  # fmt: skip
    last_c = d[:K] + d[K : 2 * K] + 2 * READ_ISSUE
    f_c = d[2 * K : 3 * K] + d[3 * K :] + 2 * READ_ISSUE
    w_c = run_c + last_c

    def chan(s: I64) -> I64:
        out: I64 = (s // kt) * kg + (s % kt) * c
        return out

    uniform = (kt == 1) | (kg == kt * c) | (tp % kt == 0) | (nt == kt)
    o_a = g("out_addr")
    ch_l = chan(s_last)
    # every write command WRITE_ISSUE more than its DMA (core_model.write_cycles)
    n_u = np.where(uniform, full, 0)
    o_c = WRITE_ISSUE * n_u + _dma_run(o_a, (chan(tp) - chan(0 * tp)) * pq, n_u, bb, wr)
    l_c = WRITE_ISSUE + _dma(o_a + ch_l * pq, (chan(nt) - ch_l) * pq, bb, wr)
    idx = np.flatnonzero(~uniform)
    o_c[idx] = 0
    p = 0
    while idx.size:  # uneven passes, one by one (the last one is l_c)
        p_idx = idx[full[idx] > p]
        s0 = p * tp[p_idx]
        e0 = np.minimum(s0 + tp[p_idx], nt[p_idx])
        kt_i, kg_i, c_i = kt[p_idx], kg[p_idx], c[p_idx]
        ch0 = (s0 // kt_i) * kg_i + (s0 % kt_i) * c_i
        ch1 = (e0 // kt_i) * kg_i + (e0 % kt_i) * c_i
        o_c[p_idx] += WRITE_ISSUE + _dma(
            o_a[p_idx] + ch0 * pq[p_idx], (ch1 - ch0) * pq[p_idx], bb[p_idx], wr
        )
        p += 1
        idx = p_idx
    # the passes 1 .. npass - 2 (those before the last but the first)
    mid = np.where(full > 0, run_c - f_c, 0)
    tab = _pf_table(tp, nt, bb, pt, tw, wa, pa, rd, mid)
    most = np.maximum(np.maximum(tab[0], tab[1]), tab[3])  # the loads a pass can wait for
    out: I64 = np.stack([w_c, o_c, f_c, l_c, *tab, tp, tw, wa, pt, pa, bb, most])
    return out


_NEVER = -(1 << 50)  # a wait's load bound where none applies: max(0, 1 - run + _NEVER) = 0


def _pf_table(tp: I64, nt: I64, bb: I64, pt: I64, tw: I64, wa: I64, pa: I64, rd: int,
              mid: I64 | None = None) -> I64:  # fmt: skip
    """What the weight prefetch's waits (:func:`_pf_waits_flat`) take from a layer's DMA, per
    distinct (layout, layer, tiles per pass) (tiles per pass, tiles, bus, parameter tile
    bytes, weight tile bytes, weight and parameter addresses; ``mid``: the loads of the
    passes 1 .. npass - 2 in all, if known), (6, K): pass 1's loads and the last pass's
    (``_NEVER`` with one pass), the lower and upper bounds of a full pass's loads
    (``_NEVER`` without full passes after the first), the full passes after the first and
    their loads in all."""
    npass = _cdiv(nt, tp)

    def loads(s0: I64, n: I64) -> I64:
        out: I64 = (
            2 * READ_ISSUE + _dma(wa + s0 * tw, n * tw, bb, rd) + _dma(pa + s0 * pt, n * pt, bb, rd)
        )
        return out

    s_l = (npass - 1) * tp
    full = np.maximum(npass - 2, 0)  # full passes 1 .. npass - 2, loaded during passes 0 ..
    l_1, l_l = loads(tp, np.clip(nt - tp, 0, tp)), loads(s_l, nt - s_l)
    if mid is None:
        mid = (
            2 * READ_ISSUE * full
            + _dma_run(wa + tp * tw, tp * tw, full, bb, rd)
            + _dma_run(pa + tp * pt, tp * pt, full, bb, rd)
        )
    g = np.minimum(MAX_BURST, (1 << _LOG_PAGE) // bb)  # words of a burst at most
    pw = (1 << _LOG_PAGE) // bb  # words of a 4 KB page
    lo = np.zeros_like(tp)
    hi = np.zeros_like(tp)
    for st in (tw, pt):
        words = tp * st // bb
        lo += READ_ISSUE + 2 + words + rd * _cdiv(words, g)
        # a page holds one burst (g = pw) or bursts of 256 from its first word on, the first
        # page's from the command's: at most one burst more per page touched
        more = np.where(g == pw, 1, _cdiv(words + 1, pw) + 1)
        hi += READ_ISSUE + 2 + words + 1 + rd * (_cdiv(words + 1, g) + more)
    two, some = npass > 1, full > 0
    tab = np.empty((6, tp.size), dtype=np.int64)
    tab[0] = np.where(two, l_1, _NEVER)
    tab[1] = np.where(two, l_l, _NEVER)
    tab[2] = np.where(some, lo, _NEVER)
    tab[3] = np.where(some, hi, _NEVER)
    tab[4] = full
    tab[5] = mid
    return tab


def _pf_apply(tab: I64, back: I64, rn: I64, tp: I64, tw: I64, wa: I64, pt: I64, pa: I64,
              bb: I64, rd: int) -> tuple[I64, I64]:  # fmt: skip
    """The waits of :func:`_pf_waits_flat` per element (``back``: its row of ``tab``, from
    :func:`_pf_table`; ``rn``: a full pass's cycles): in all and the first pass's. Pass p
    waits ``max(0, 1 + loads(p + 1) - rn)``: where even the lower bound of a full pass's
    loads outlasts the pass, every full pass waits (their loads in all, ``tab[5]``), where
    even the upper bound does not, none; only the elements in between walk their passes
    (all (element, pass) pairs at once; the other arguments per column of ``tab``)."""
    t = tab[:, back]
    base = 1 - rn
    w0 = np.maximum(base + t[0], 0)
    tot = np.maximum(base + t[1], 0)  # the last pass's
    fe = t[4]
    lin = base + t[2] >= 0
    tot += (fe * base + t[5]) * lin
    idx = np.flatnonzero(~lin & (base + t[3] > 0))
    # those pass by pass, all (element, pass) pairs at once
    reps = fe[idx]
    ix = np.repeat(idx, reps)
    p = np.arange(ix.size) - np.repeat(np.cumsum(reps) - reps, reps) + 1
    kx = back[ix]
    s0, n = p * tp[kx], tp[kx]
    ld = (
        2 * READ_ISSUE
        + _dma(wa[kx] + s0 * tw[kx], n * tw[kx], bb[kx], rd)
        + _dma(pa[kx] + s0 * pt[kx], n * pt[kx], bb[kx], rd)
    )
    w = np.maximum(0, base[ix] + ld)
    tot += np.bincount(ix, weights=w, minlength=rn.size).astype(np.int64)
    return tot, w0


def _pf_waits_flat(tp: I64, nt: I64, rn: I64, bb: I64, pt: I64, tw: I64, wa: I64, pa: I64,
                   rd: int, back: I64 | None = None) -> tuple[I64, I64]:  # fmt: skip
    """The weight prefetch's waits (``core_model.prefetch_waits``) of a flat list of layers,
    in all and the first pass's: per distinct layer (``back``: each element's, default one
    each) tiles per pass, tiles, bus, parameter tile bytes, weight tile bytes, weight and
    parameter addresses; per element ``rn``, a full pass's cycles (from S_INIT to S_WB).

    Pass p waits ``max(0, 1 + loads(p + 1) - rn)``. The loads of a full pass (every pass but
    the last) lie between bounds from its words and bursts (at least ``ceil(words / G)``, G
    the longest burst, at most one more per page touched): where even the lower bound
    outlasts the pass, every full pass waits and the waits sum in closed form
    (:func:`_dma_run`); where even the upper bound does not, none waits; only the layers in
    between are walked pass by pass (all their passes at once). The last pass's loads
    (partial) and the first pass's wait are computed directly (:func:`_pf_table`,
    :func:`_pf_apply`)."""
    if back is None:
        back = np.arange(tp.size)
    tab = _pf_table(tp, nt, bb, pt, tw, wa, pa, rd)
    return _pf_apply(tab, back, rn, tp, tw, wa, pt, pa, bb, rd)


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


def _outer_regions(wl: CoreWorkload) -> tuple[I64, I64, np.ndarray]:
    """The tensors' 16-byte-aligned offsets, the outermost region holding each tensor's bytes
    (a padded / concatenated one, else itself) and whether a tensor owns its region (kept per
    workload)."""
    memo = _workload_memo(wl)
    if "outer" not in memo:
        memo["outer"] = _find_outer_regions(wl)
        for x in memo["outer"]:
            x.setflags(write=False)  # shared by every call
    out: tuple[I64, I64, np.ndarray] = memo["outer"]
    return out


def _find_outer_regions(wl: CoreWorkload) -> tuple[I64, I64, np.ndarray]:
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
    return off0, outer, outer == np.arange(n)


def _tensor_off(wl: CoreWorkload, align: int, allocs: I64 | None = None) -> I64:
    """Byte offset of every tensor from the first tensor region when regions are ``align``-byte
    aligned. ``wl.tensor_off`` (16-byte alignment) tells which tensors sit inside another
    (a padded / concatenated one: the outermost region holding its bytes) and where.
    ``allocs``: how many times each tensor's region is laid out (the last one is the
    tensor's; default once)."""
    off0, outer, own = _outer_regions(wl)
    t_al = np.where(own, _cdiv(wl.tensor_bytes, align) * align, 0)
    start = np.cumsum(t_al if allocs is None else t_al * allocs) - t_al
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
        # (U, 1): the layout's columns, bus, weight row and parameter tile bytes
        "cols": C,
        "bus": bus,
        "w_row": w_row,
        "p_tile": p_tile,
    }


# what :func:`_layout` gives, (U, L) and (U, 1)
_LAYOUT_L = ("in_addr", "in2_addr", "out_addr", "p_addr", "w_addr", "ntiles", "kt", "tile_w",
             "p_len", "blob", "t", "kg")  # fmt: skip
_LAYOUT_1 = ("cols", "bus", "w_row", "p_tile")


def _unique_layout(wl: CoreWorkload, cfg: CoreConfigs) -> tuple[dict[str, I64], I64]:
    """:func:`_layout` of the distinct (cols, weight rows, bus) of ``cfg`` and the index of
    each configuration's triple."""
    # the merge only tells weight buffers apart up to the deepest reduction a merge can need
    cap = 0
    if wl.merge is not None and wl.merge.any():
        cap = int((wl.groups * wl.t)[wl.merge].max())
    w_depth = np.minimum(core_geometry(cfg)["w_depth"], cap)
    # one integer key per (cols, weight rows, bus), ordered as the triples (a 1-D unique)
    key = (cfg.cols * (cap + 1) + w_depth) * (MAX_BUS + 1) + cfg.bus
    uk, inv = np.unique(key, return_inverse=True)
    inv = inv.reshape(-1)
    ucols, rest = np.divmod(uk, (cap + 1) * (MAX_BUS + 1))
    uw, ubus = np.divmod(rest, MAX_BUS + 1)
    L = len(wl)

    def packed(m: I64) -> I64:
        lu = _layout(wl, ucols[m], uw[m], ubus[m])
        out: I64 = np.concatenate([lu[k] for k in _LAYOUT_L + _LAYOUT_1], axis=1).T
        return out

    # kept from call to call (the same layouts recur): (U, 12 L + 4) unpacked as views
    lu_p = np.ascontiguousarray(_kept_columns(wl, "layout", uk, packed).T)
    lu = {k: lu_p[:, i * L : (i + 1) * L] for i, k in enumerate(_LAYOUT_L)}
    lu |= {k: lu_p[:, len(_LAYOUT_L) * L + i][:, None] for i, k in enumerate(_LAYOUT_1)}
    lu["key"] = uk[:, None]  # (U, 1): names the layout for every configuration of ``wl``
    return lu, inv


def _kept_layout_dma(wl: CoreWorkload, lu: dict[str, I64], rd: int, wr: int
                     ) -> tuple[I64, I64, I64, I64]:  # fmt: skip
    """:func:`_layout_dma`, kept from call to call per layout (``lu["key"]``)."""
    L = len(wl)

    def packed(m: I64) -> I64:
        out: I64 = np.concatenate(_layout_dma(wl, {k: v[m] for k, v in lu.items()}, rd, wr),
                                  axis=1).T  # fmt: skip
        return out

    p = _kept_columns(wl, ("layout_dma", rd, wr), lu["key"][:, 0], packed).T
    return p[:, :L], p[:, L : 2 * L], p[:, 2 * L : 3 * L], p[:, 3 * L :]


def _needs(wl: CoreWorkload, lu: dict[str, I64]) -> dict[str, I64]:
    """What each (layout, layer) needs of the buffers, (U, L), as the compiler checks it: bytes
    of one ifmap copy (from the bus word of the input's address; a second input from the next
    bus word on), weight rows of one tile, ofmap bytes (a compute pass's tile from any byte of
    a bus word; a vector layer's output from the bus word of its address). All of it depends
    on the layout alone (columns, bus, addresses)."""
    bus = lu["bus"]
    word = bus - 1  # bus a power of two: x mod bus = x & (bus - 1)
    comp = ~wl.vector[None, :]
    in_len = wl.in_len[None, :]
    pq = wl.pq[None, :]
    need_if = (lu["in_addr"] & word) + in_len
    in2 = _cdiv(need_if, bus) * bus + (lu["in2_addr"] & word) + in_len
    need_if = np.where(wl.src2[None, :] >= 0, in2, need_if)
    need_o = np.where(comp, lu["cols"] * pq + word, (lu["out_addr"] & word) + wl.c[None, :] * pq)
    out: dict[str, I64] = {
        "if": need_if,
        "w": np.where(comp, lu["tile_w"] // lu["w_row"], 0),
        "o": need_o,
    }
    return out


def _feasible(
    wl: CoreWorkload, cfg: CoreConfigs, geo: dict[str, I64], lu: dict[str, I64], inv: I64
) -> npt.NDArray[np.bool_]:
    """Every layer fits the buffers: the largest need of each layout over its layers against
    each configuration's buffers (the same as layer by layer)."""
    need = {k: v.max(axis=1, initial=0)[inv] for k, v in _needs(wl, lu).items()}
    feasible: npt.NDArray[np.bool_] = need["if"] <= geo["if_depth"]
    feasible &= need["w"] <= geo["w_depth"]
    feasible &= need["o"] <= geo["o_depth"]
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
    return _feasible(wl, cfg, core_geometry(cfg), lu, inv)


def _per_column(x: I64, pq: I64) -> I64:
    """``x[:, None] // pq`` (H, L) for the layers' ``pq`` (L,): one division per distinct
    value (a network has few output sizes), spread to the layers."""
    upq, back = np.unique(pq, return_inverse=True)
    out: I64 = (x[:, None] // upq[None, :])[:, back.reshape(-1)]
    return out


def _tpp(geo: dict[str, I64], cols: I64, pq: I64, ntiles: I64, rows_per_tile: I64) -> I64:
    """Weight tiles per pass of compute layers (the compiler's ``tpp``): as many as the weight
    buffer, the ofmap buffer (a pass's outputs from any byte of a bus word:
    ``(o_depth - bus + 1) // (C PQ)``, taken as ``// C`` then ``// PQ``) and the parameter RAM
    (``PARAM_TILES``) hold, at most the layer's tiles; arrays (H, Lc) (``pq``: (Lc,))."""
    o_fit = _per_column((geo["o_depth"] - (geo["bus"] - 1)) // cols, pq)
    lim = np.minimum(np.minimum(geo["w_depth"][:, None] // rows_per_tile, o_fit), PARAM_TILES)
    out: I64 = np.minimum(lim, ntiles)
    return out


def _prefetch_n(cfg: CoreConfigs, geo: dict[str, I64], lu: dict[str, I64], inv: I64,
                layers: I64, pq: I64, tpp: I64, ntiles: I64, rows_per_tile: I64, npt: I64,
                tile_cycles: I64) -> I64:  # fmt: skip
    """The compiler's weight prefetch (``tiling.prefetch_passes``, as
    ``tiling.prefetch_passes_batch``): tiles per pass with two slots, 0 without, arrays (H, X)
    of the ``layers`` (X,; ``pq``: theirs); a tile's bus words of weights and parameters and
    of outputs once per layout."""
    from autochip.builder.tiling import prefetch_passes_batch

    load_tile = ((lu["tile_w"][:, layers] + lu["p_tile"]) // lu["bus"])[inv]
    wb_tile = (lu["cols"] * pq[None, :] // lu["bus"])[inv]
    out: I64 = prefetch_passes_batch(
        tpp, ntiles, rows_per_tile, geo["w_depth"][:, None], load_tile=load_tile,
        wb_tile=wb_tile, rows=cfg.rows[:, None], cols=cfg.cols[:, None], npt=npt,
        tile_cycles=tile_cycles,
    )  # fmt: skip
    return out


def _tiling(
    wl: CoreWorkload, cfg: CoreConfigs, geo: dict[str, I64], lu: dict[str, I64], inv: I64
) -> tuple[I64, I64, I64, npt.NDArray[np.bool_]]:
    """``tpp``, ``npt`` and the prefetch's tiles per pass (0: no prefetch) per (configuration,
    layer), and whether the compiler accepts each configuration (``feasible``, (H,))."""
    R = cfg.rows[:, None]
    comp = ~wl.vector[None, :]
    pq = wl.pq[None, :]
    rows_per_tile = np.maximum(lu["tile_w"] // lu["w_row"], 1)[inv]
    ntiles = lu["ntiles"][inv]
    tpp = np.where(comp, _tpp(geo, cfg.cols, wl.pq, ntiles, rows_per_tile), 0)
    tile_c = _tile_cycles(R, cfg.cols[:, None], lu["t"][inv])
    pf = np.where(comp, _prefetch_n(cfg, geo, lu, inv, np.arange(len(wl)), wl.pq,
                                    np.maximum(tpp, 1), ntiles, rows_per_tile, _cdiv(pq, R),
                                    tile_c), 0)  # fmt: skip
    npt_ = np.where(comp, _cdiv(pq, R), 0)
    return np.where(pf > 0, pf, tpp), npt_, pf, _feasible(wl, cfg, geo, lu, inv)


def _descs(wl: CoreWorkload, lu: dict[str, I64], u: int, rows: int) -> list[Any]:
    """The allocator's view (``residency.Desc``) of every layer on layout ``u`` of ``lu``
    (the tensors' offsets within a bus word depend on the bus alone) with ``rows`` array rows
    (forwarding: R divides the bus, R-aligned outputs)."""
    from autochip.builder.residency import Desc

    bus = int(lu["bus"][u, 0])
    _, _, own = _outer_regions(wl)
    n_t = wl.tensor_bytes.shape[0]
    descs = []
    for j in range(len(wl)):
        srcs = (int(wl.src[j]),) + ((int(wl.src2[j]),) if wl.src2[j] >= 0 else ())
        addrs = (int(lu["in_addr"][u, j]),) + ((int(lu["in2_addr"][u, j]),) if len(srcs) > 1
                                                else ())  # fmt: skip
        n = int(wl.in_len[j])
        out_a = int(lu["out_addr"][u, j])
        aligned = (
            bus % rows == 0 and out_a % rows == 0 and (bool(wl.vector[j]) or wl.pq[j] % rows == 0)
        )
        descs.append(Desc(
            srcs=tuple(str(t) for t in srcs),
            whole=tuple(n == int(wl.tensor_bytes[t]) for t in srcs),
            offs=tuple(a % bus for a in addrs), loads=tuple(a % bus + n for a in addrs),
            out=str(j + 1), out_off=out_a % bus, out_bytes=int(wl.tensor_bytes[j + 1]),
            fwd_ok=aligned and j + 1 < n_t and bool(own[j + 1]), in_place=wl.kinds[j] == "add",
        ))  # fmt: skip
    return descs


def _allocation(wl: CoreWorkload, lu: dict[str, I64], u: int, rows: int, cap: int
                ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], int]:  # fmt: skip
    """The compiler's residency (``autochip.builder.residency.allocate``) of an untiled
    program on layout ``u`` of ``lu`` with ``rows`` array rows (dividing the bus), for ifmap
    copies of ``cap`` bytes, or with ``cap = -1`` for every copy from the saturation size on
    (``residency.saturation``): whether each layer reads its first / second input resident,
    (L,) each, and the saturation size. Kept per workload, per (bus, rows, cap)."""
    bus = int(lu["bus"][u, 0])
    memo = _workload_memo(wl).setdefault("resident", {})
    if (bus, rows, -1) not in memo:
        from autochip.builder.residency import saturation

        place, sat = saturation(_descs(wl, lu, u, rows), bus)
        memo[(bus, rows, -1)] = (*_resident_flags(place), sat)
    if cap >= 0 and (bus, rows, cap) not in memo:
        from autochip.builder.residency import allocate

        place = allocate(_descs(wl, lu, u, rows), cap, bus)
        memo[(bus, rows, cap)] = (*_resident_flags(place), memo[(bus, rows, -1)][2])
    out: tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], int] = memo[(bus, rows, cap)]
    return out


def _resident_flags(place: Any) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    return (np.array([p.res[0] for p in place], dtype=bool),
            np.array([len(p.res) > 1 and p.res[1] for p in place], dtype=bool))  # fmt: skip


def _residency(wl: CoreWorkload, cfg: CoreConfigs, geo: dict[str, I64], lu: dict[str, I64],
               inv: I64, tpp: I64) -> tuple[Any, Any, Any]:  # fmt: skip
    """Op bits 9, 10, 11 of every (configuration, layer) of an untiled program, (H, L) each:
    resident first / second input (:func:`_allocation`, once per distinct layout, copy size
    and rows) and ``owait`` (``residency.ofmap_bases``: each layer's ofmap half after the
    previous posted write-back's, a scan over the layers vectorised over configurations)."""
    H, L = len(cfg), len(wl)
    if not L or not H:
        z = np.zeros((H, L), dtype=bool)
        return z, z.copy(), z.copy()
    bus = geo["bus"]
    fwd = bus % cfg.rows == 0
    # one allocation per (bus, rows) for copies from the saturation size on, one per distinct
    # (bus, rows, size) below it; the flags of each in a table, gathered at the end
    key = np.where(fwd, bus * 128 + cfg.rows, -1)
    ukey, first, which = np.unique(key, return_index=True, return_inverse=True)
    which = which.reshape(-1)
    none = np.zeros(L, dtype=bool)
    tab = [_allocation(wl, lu, int(inv[i]), int(cfg.rows[i]), -1) if k >= 0 else (none, none, 0)
           for k, i in zip(ukey.tolist(), first.tolist(), strict=True)]  # fmt: skip
    caps = geo["if_depth"]
    small = np.flatnonzero(caps < np.array([t[2] for t in tab], dtype=np.int64)[which])
    if small.size:
        m = int(caps[small].max()) + 1  # one integer per distinct (key, size)
        pairs, back = np.unique(which[small] * m + caps[small], return_inverse=True)
        which[small] = len(tab) + back.reshape(-1)
        g, c = np.divmod(pairs, m)  # the key (its first configuration) and the size
        tab += [_allocation(wl, lu, int(inv[i]), int(cfg.rows[i]), int(cap))
                for i, cap in zip(first[g].tolist(), c.tolist(), strict=True)]  # fmt: skip
    res_a = np.stack([t[0] for t in tab])[which]
    res_b = np.stack([t[1] for t in tab])[which]
    # the ofmap bytes each layer writes from ofmap byte 0 (compiler._ofmap_need): its tiles'
    # outputs in one pass, or a vector layer's, per layout; a pass of tpp tiles otherwise
    comp = ~wl.vector[None, :]
    pq = wl.pq[None, :]
    C = lu["cols"]
    kt = np.maximum(lu["kt"], 1)
    o_off = lu["out_addr"] & (lu["bus"] - 1)
    groups = lu["ntiles"] // kt
    tiles = (lu["ntiles"] - groups) * C * pq + groups * (lu["kg"] - (kt - 1) * C) * pq
    one = o_off + np.where(comp, tiles, wl.c[None, :] * pq)
    B = bus[:, None]
    need = np.where(tpp < lu["ntiles"][inv], B - 1 + tpp * cfg.cols[:, None] * pq, one[inv])
    o_depth, unit = geo["o_depth"], 2 * np.maximum(bus, _pow2_ceil(cfg.rows))
    half = (o_depth // 2 // unit * unit)[:, None]
    # a layer's outputs start at the ofmap's upper half (``up``) when the previous layer's
    # start at 0, its posted write-back ends below half and the layer's outputs fit above
    # (in a run of layers where both fit: up, 0, up, ...), else at 0; the previous compute
    # layer's posted write-back is waited for (owait) where the two ranges meet: both from
    # 0, or the previous one from half and the layer's past half
    over, nz = need > half, need > 0
    prev_over = np.zeros((H, L), dtype=bool)  # the previous compute layer's past half, ...
    prev_over[:, 1:] = over[:, :-1] & comp[:, :-1]
    prev_nz = np.zeros((H, L), dtype=bool)  # ... and not empty
    prev_nz[:, 1:] = nz[:, :-1] & comp[:, :-1]
    fits = (half > 0) & ~prev_over & (need <= o_depth[:, None] - half)
    up = np.zeros((H, L + 1), dtype=bool)  # column j + 1: layer j's
    for j in range(L):
        np.greater(fits[:, j], up[:, j], out=up[:, j + 1])  # fits and not the previous
    owait = res_a & ~up[:, 1:] & np.where(up[:, :-1], over, prev_nz & nz)
    return res_a, res_b, owait


def _cross(wl: CoreWorkload, cfg: CoreConfigs, geo: dict[str, I64], lu: dict[str, I64],
           inv: I64, ci: I64, tpp: I64, pf: npt.NDArray[np.bool_], first: I64 | None = None
           ) -> dict[str, Any]:  # fmt: skip
    """The compiler's cross-layer prefetch (``compiler.cross_prefetch``,
    ``tiling.cross_prefetch``) of the compute layers ``ci`` of an untiled program, (H, Lc):
    ``xin``, ``s0``, ``w_slot``, ``p_slot``, the first pass's tiles ``n0`` and its two loads'
    cycles ``first`` (given, or computed here)."""
    from autochip.builder.tiling import cross_prefetch

    R, C = cfg.rows[:, None], cfg.cols[:, None]
    ntiles = lu["ntiles"][:, ci][inv]
    tp = np.maximum(tpp, 1)
    n0 = np.minimum(tp, ntiles)
    rows_tile = np.maximum(lu["tile_w"][:, ci] // lu["w_row"], 1)[inv]
    if first is None:
        rd = int(dram_timing()["read_burst_overhead"])
        bus = geo["bus"][:, None] + 0 * n0
        first = (
            2 * READ_ISSUE
            + _dma(lu["w_addr"][:, ci][inv], n0 * lu["tile_w"][:, ci][inv], bus, rd)
            + _dma(lu["p_addr"][:, ci][inv], n0 * geo["p_tile"][:, None], bus, rd)
        )
    n_last = ntiles - (_cdiv(ntiles, tp) - 1) * tp
    tile = _tile_cycles(R, C, lu["t"][:, ci][inv])
    last = (R + 1 + flush_compute_cycles(R, C)  # type: ignore[arg-type]
            + _cdiv(wl.pq[ci][None, :], R) * n_last * tile)  # fmt: skip
    xin, s0, w_slot, p_slot = cross_prefetch(
        ntiles, tpp, pf, rows_tile, geo["w_depth"][:, None], first, last
    )
    return {"xin": xin, "s0": s0, "w_slot": w_slot, "p_slot": p_slot, "n0": n0, "first": first}


def _watermark0(wl: CoreWorkload, cfg: CoreConfigs, geo: dict[str, I64], lu: dict[str, I64],
                inv: I64, tpp0: I64, pf0: npt.NDArray[np.bool_], nxt: int | None,
                xpf0: npt.NDArray[np.bool_] | None, n0x: I64 | None,
                live: npt.NDArray[np.bool_]) -> tuple[I64, I64]:  # fmt: skip
    """The compiler's load watermark of the program's first layer (``compiler.watermark``,
    ``autochip/builder/watermark.py``), (H,) each: its row group (bytes per channel, 0: none)
    and its load phase. ``tpp0`` its tiles per pass, ``pf0`` its weight prefetch; ``nxt`` the
    next compute layer (None: none), ``xpf0`` whether the first layer's (last) pass loads that
    layer's first pass of ``n0x`` tiles; only for the ``live`` designs (those the untiled
    model costs)."""
    from autochip.builder.watermark import plan, prefetch_bound

    H = len(cfg)
    none = np.zeros(H, dtype=np.int64)
    if (not len(wl) or wl.vector[0] or wl.kinds[0] != "conv" or int(wl.groups[0]) != 1
            or wl.h is None or wl.sh is None or wl.ph is None):  # fmt: skip
        return none, none
    rd = int(dram_timing()["read_burst_overhead"])
    R, C, bus = cfg.rows, cfg.cols, geo["bus"]
    kr, ks, q = int(wl.kr[0]), int(wl.ks[0]), int(wl.q[0])
    cin = int(wl.t[0]) // (kr * ks)
    h = int(wl.h[0])
    wd = int(wl.in_len[0]) // (cin * h)
    t0, ntiles0, tile_w0 = (lu[k][:, 0][inv] for k in ("t", "ntiles", "tile_w"))
    in_addr = lu["in_addr"][:, 0][inv]
    period = _tile_cycles(R, C, t0)
    n1 = np.minimum(np.maximum(tpp0, 1), ntiles0)
    npt = _cdiv(int(wl.pq[0]) + 0 * R, R)
    run = R + 1 + flush_compute_cycles(R, C) + npt * n1 * period  # type: ignore[arg-type]
    # the first pass's prefetch: the second pass (op bit 12), else the next layer's first
    n2 = np.minimum(n1, ntiles0 - n1)
    multi = pf0 & (ntiles0 > n1)
    pf_w = np.where(multi, n2 * tile_w0, 0)
    pf_p = np.where(multi, n2 * geo["p_tile"], 0)
    if nxt is not None:  # else the next compute layer's first pass (op bit 13)
        assert xpf0 is not None and n0x is not None
        x = xpf0 & ~multi
        pf_w = np.where(x, n0x * lu["tile_w"][:, nxt][inv], pf_w)
        pf_p = np.where(x, n0x * geo["p_tile"], pf_p)
    plain = READ_ISSUE + _dma(in_addr, int(wl.in_len[0]) + 0 * in_addr, bus, rd)
    grp_out, load_out = none.copy(), plain.copy()
    if h <= 1 or not live.any():
        return grp_out, load_out
    pf_busy = prefetch_bound(pf_w, pf_p, bus, rd)
    x = [v[live] for v in (R, C, bus, in_addr, t0, n1, npt, run, pf_busy, plain)]
    use, grp, load = plan(
        rows=x[0], cols=x[1], bus=x[2], in_addr=x[3], t=x[4], pass_tiles=x[5], npt=x[6],
        pass_run=x[7], pf_busy=x[8], plain_load=x[9], cin=cin, h=h, wd=wd,
        q=q, sh=int(wl.sh[0]), ph=int(wl.ph[0]), kr=kr, over=rd,
    )  # fmt: skip
    grp_out[live] = np.where(use, grp, 0)
    load_out[live] = np.where(use, load, x[9])
    return grp_out, load_out


def program_x_fields() -> tuple[str, ...]:
    """The cross-layer prefetch's descriptor fields (``program.X_FIELDS``)."""
    from autochip.builder.program import X_FIELDS

    return tuple(X_FIELDS)


def core_plan(wl: CoreWorkload, cfg: CoreConfigs) -> dict[str, I64]:
    """The compiler's tiling and DRAM layout for every (configuration, layer), arrays (H, L):
    the descriptor fields the cycle model reads (``in_addr``, ``tpp``, ``w_addr``, ...) and
    ``feasible`` (H,) (whether ``compile_model`` accepts the network on the core)."""
    H, L = len(cfg), len(wl)
    lu, inv = _unique_layout(wl, cfg)
    tpp, npt_, pf, feasible = _tiling(wl, cfg, core_geometry(cfg), lu, inv)
    comp = ~wl.vector[None, :]
    pq = wl.pq[None, :]
    geo = core_geometry(cfg)
    res_a, res_b, owait = _residency(wl, cfg, geo, lu, inv, tpp)
    # cross-layer prefetch (op bits 13-15) and its fields on the layer before (compiler)
    ci = np.flatnonzero(~wl.vector)
    x = _cross(wl, cfg, geo, lu, inv, ci, tpp[:, ci], pf[:, ci] > 0)
    xin, s0 = np.zeros((H, L), dtype=np.int64), np.zeros((H, L), dtype=np.int64)
    xin[:, ci], s0[:, ci] = x["xin"], x["s0"]
    p_slot = pf.copy()
    w_slot = pf * np.maximum(lu["tile_w"] // lu["w_row"], 1)[inv]
    p_slot[:, ci], w_slot[:, ci] = x["p_slot"], x["w_slot"]
    xf = {k: np.zeros((H, L), dtype=np.int64) for k in program_x_fields()}
    xpf = np.zeros((H, L), dtype=np.int64)
    if ci.size > 1:
        nx, pv = ci[1:], ci[:-1]  # each compute layer and the one before it
        on = x["xin"][:, 1:]
        xpf[:, pv] = on
        up = x["s0"][:, 1:]
        vals = {
            "x_w_addr": lu["w_addr"][:, nx][inv],
            "x_p_addr": lu["p_addr"][:, nx][inv],
            "x_w_len": x["n0"][:, 1:] * lu["tile_w"][:, nx][inv],
            "x_p_len": x["n0"][:, 1:] * geo["p_tile"][:, None],
            "x_w_row": np.where(up, x["w_slot"][:, 1:], 0),
            "x_p_word": np.where(up, x["p_slot"][:, 1:], 0),
        }
        for k, v in vals.items():
            xf[k][:, pv] = np.where(on, v, 0)
    # the first layer's load watermark (op bit 16, its row group in_grp)
    in_grp = xf["in_grp"]
    if L and not wl.vector[0]:
        more = ci.size > 1
        in_grp[:, 0] = _watermark0(
            wl, cfg, geo, lu, inv, tpp[:, 0], pf[:, 0] > 0, int(ci[1]) if more else None,
            x["xin"][:, 1] if more else None, x["n0"][:, 1] if more else None, feasible,
        )[0]  # fmt: skip
        if wl.h is not None:  # (watermarked: a convolution of one group, h known)
            kr, cin = int(wl.kr[0]), int(wl.t[0]) // int(wl.kr[0] * wl.ks[0])
            wd = int(wl.in_len[0]) // (cin * int(wl.h[0]))
            xf["in_need"][:, 0] = np.where(in_grp[:, 0] > 0, kr * wd, 0)
    return {
        "feasible": feasible,
        # op word bits 9-16 (the rest of the op word is not modelled)
        "op": (res_a.astype(np.int64) << 9) | (res_b.astype(np.int64) << 10)
        | (owait.astype(np.int64) << 11) | ((pf > 0).astype(np.int64) << 12)
        | (xpf << 13) | (xin << 14) | (s0 << 15) | ((in_grp > 0).astype(np.int64) << 16),
        "p_slot": p_slot,
        "w_slot": w_slot,
        **xf,
        **{k: lu[k][inv] for k in ("in_addr", "in2_addr", "out_addr", "p_addr", "w_addr",
                                   "ntiles", "kt", "tile_w", "blob", "t", "kg")},
        "in_len": np.broadcast_to(wl.in_len[None, :], (H, L)),
        "tpp": tpp,
        # compute: pixel tiles of R outputs; vector: groups of R outputs (one per lane)
        "npt": np.where(comp, npt_, _cdiv(wl.c[None, :] * pq, cfg.rows[:, None])),
        "c_pq": np.where(comp, cfg.cols[:, None] * pq, wl.c[None, :] * pq),
    }  # fmt: skip


def evaluate_core(
    wl: CoreWorkload,
    cfg: CoreConfigs,
    platform: Platform | None = None,
    *,
    energy: bool = True,
    per_layer: bool = True,
    tiled: bool = False,
) -> CoreResult:
    """Cycles per (configuration, layer) of every configuration of ``cfg`` on ``wl``; energy
    (pJ) per layer. With ``per_layer=False`` the phases and the energy are their sums over
    the layers (shape (H, 1): the same totals, fewer arrays of H x L). With ``tiled`` the
    configurations whose buffers need feature-map tiling are costed band by band
    (:func:`tiled_layers` and ``core_model.core_cycles``, one configuration at a time: a
    layer's phases are the sums over its bands) instead of being infeasible.

    What depends on the DRAM layout alone (columns, weight rows, bus) is computed once per
    distinct layout, (U, L); the passes' DMA once per distinct (layout, layer, tiles per
    pass); both are kept from call to call per workload (:func:`_kept_columns`, bounded), so
    blocks of a sweep compute only the layouts and triples no earlier block had. Compute
    layers' tiling, prefetch choice and array cycles are (H, shapes): once per distinct layer
    shape; only the rest is (H, L): vector layers' lanes, the passes' and posted
    write-backs' waits, residency."""
    H, L = len(cfg), len(wl)
    tm = dram_timing()
    rd, wr = int(tm["read_burst_overhead"]), int(tm["write_burst_overhead"])
    geo = core_geometry(cfg)
    bus = geo["bus"]
    if np.any(bus & (bus - 1)):
        raise ValueError("core_batch: the bus widths must be powers of two (the core's)")
    lu, inv = _unique_layout(wl, cfg)
    feasible = _feasible(wl, cfg, geo, lu, inv)
    comp_l = ~wl.vector
    ci, vi = np.flatnonzero(comp_l), np.flatnonzero(wl.vector)
    Lc = ci.size
    cidx = np.full(L, Lc, dtype=np.int64)  # layer -> its compute column (Lc: a vector layer)
    cidx[ci] = np.arange(Lc)
    R = cfg.rows[:, None]
    C = cfg.cols[:, None]
    u_fetch, u_load, u_load2, u_vwb = _kept_layout_dma(wl, lu, rd, wr)  # (U, L)

    # compute layers, (H, Lc); their tiling, prefetch and array cycles once per distinct
    # shape (layers with the same tiles, weight tile bytes and reduction on every layout and
    # the same outputs per channel: ResNet-18's 21 are 12), ``col``: each layer's
    pq_c = wl.pq[ci]
    shape = np.concatenate([lu["ntiles"][:, ci], lu["tile_w"][:, ci], lu["t"][:, ci], pq_c[None]])
    seen: dict[bytes, int] = {}  # a few columns: compared as bytes (np.unique(axis=1) sorts)
    col = np.array([seen.setdefault(shape[:, j].tobytes(), len(seen)) for j in range(Lc)],
                   dtype=np.int64)  # fmt: skip
    cd = ci[np.unique(col, return_index=True)[1]]  # a layer of each shape, by its number
    pq_d = wl.pq[cd][None, :]
    ntiles_d = lu["ntiles"][:, cd][inv]
    t_d = lu["t"][:, cd][inv]
    rows_per_tile = np.maximum(lu["tile_w"][:, cd] // lu["w_row"], 1)[inv]
    tpp_d = np.maximum(_tpp(geo, cfg.cols, pq_d[0], ntiles_d, rows_per_tile), 1)
    npt_d = _cdiv(pq_d, R)  # pixel tiles of R outputs
    tile_d = _tile_cycles(R, C, t_d)
    # weight prefetch (op bit 12): passes of pf_n tiles in two slots (tiling.prefetch_passes)
    pf_n = _prefetch_n(cfg, geo, lu, inv, cd, pq_d[0], tpp_d, ntiles_d, rows_per_tile, npt_d,
                       tile_d)  # fmt: skip
    tpp_d = np.where(pf_n > 0, pf_n, tpp_d)
    npass_d = _cdiv(ntiles_d, tpp_d)
    tiles_d = npt_d * ntiles_d  # the layer's array tiles
    flush_c = flush_compute_cycles(R, C)  # type: ignore[arg-type]
    cmp_d = npass_d * (R + 1 + flush_c) + tiles_d * tile_d
    pass1_d = R + 1 + flush_c + npt_d * np.minimum(tpp_d, ntiles_d) * tile_d  # the first pass
    pf: npt.NDArray[np.bool_] = (pf_n > 0)[:, col]
    tpp, npass, pass1 = (x[:, col] for x in (tpp_d, npass_d, pass1_d))
    n_col = np.bincount(col, minlength=cd.size)  # layers of each shape: sums over the layers
    tpp_all = np.zeros((H, L), dtype=np.int64)
    tpp_all[:, ci] = tpp
    busy = feasible[:, None] & (npass > 0)
    # prefetch: the passes after the first load nothing (3 cycles); each pass's write-back
    # waits for what the next pass's loads take beyond the pass (every such pass is full)
    pass_load, wb_in, first, posted, pf_wait, pf_wait0 = _pass_dma(
        wl, lu, inv, busy, tpp, ci, rd, wr, pf, pass1
    )
    from autochip.builder.tiling import PREFETCHED_PASS

    pass_load = np.where(pf, first + (npass - 1) * PREFETCHED_PASS, pass_load) + pf_wait
    # cross-layer prefetch (op bit 14): the first pass loaded during the layer before
    from autochip.builder.tiling import cross_prefetch

    last_d = R + 1 + flush_c + npt_d * (ntiles_d - (npass_d - 1) * tpp_d) * tile_d  # last pass
    xin = cross_prefetch(ntiles_d, tpp_d, pf_n > 0, rows_per_tile, geo["w_depth"], first,
                         last_d, col)[0] & busy  # fmt: skip
    pass_load -= np.where(xin, first - PREFETCHED_PASS, 0)
    first = np.where(xin, PREFETCHED_PASS, first)
    # every pass's write-back but the last waits for its DMA; the last is posted
    wb_c = wb_in + POSTED_ISSUE

    # vector layers, (H, Lv): R lanes, R outputs at a time
    c_pq_v = (wl.c * wl.pq)[vi][None, :]
    vec_c = R + _cdiv(c_pq_v, R) * (wl.kr * wl.ks)[vi][None, :] + FLUSH_CYCLES

    # input loads: a resident input (residency.py) is one cycle, no command
    res_a, res_b, owait = _residency(wl, cfg, geo, lu, inv, tpp_all)
    two = wl.src2[None, :] >= 0
    in_load = np.where(res_a, RESIDENT_LOAD, u_load[inv]) + np.where(
        two, np.where(res_b, RESIDENT_LOAD, u_load2[inv]), 0
    )
    # the first layer's load watermark (op bit 16): its load phase S_IN and the first wait
    if L and not wl.vector[0]:
        more = Lc > 1
        n0x = np.minimum(np.maximum(tpp[:, 1], 1), ntiles_d[:, col[1]]) if more else None
        grp0, load0 = _watermark0(wl, cfg, geo, lu, inv, tpp[:, 0], pf[:, 0],
                                  int(ci[1]) if more else None, xin[:, 1] if more else None,
                                  n0x, feasible)  # fmt: skip
        in_load[:, 0] = np.where(grp0 > 0, load0, in_load[:, 0])
    # a layer after a compute layer waits for what is left of its posted write-back: in its
    # input load (S_IN; S_IN2 after a resident first input), or, with its inputs resident,
    # before its first write-back, after its first pass (core_model.resident_wait)
    pj = np.flatnonzero(comp_l[:-1]) + 1  # layers whose predecessor is a compute layer
    fetch_all = u_fetch[inv]
    first_x = np.concatenate([first, np.zeros((H, 1), dtype=np.int64)], axis=1)
    pass1_x = np.concatenate([pass1, np.zeros((H, 1), dtype=np.int64)], axis=1)
    vec_x = np.zeros((H, L), dtype=np.int64)
    vec_x[:, vi] = vec_c
    ra, rb, ow = res_a[:, pj], res_b[:, pj], owait[:, pj]
    at_wb = ra & ~ow & ~(two[:, pj] & ~rb)  # the wait moves to the first write-back
    spent = fetch_all[:, pj] + np.where(
        comp_l[pj],
        5 + first_x[:, cidx[pj]] + np.where(at_wb, RESIDENT_LOAD + pass1_x[:, cidx[pj]], 0),
        np.where(at_wb, 4 + in_load[:, pj] + vec_x[:, pj], np.where(ra & ~ow, 5, 4)),
    )
    wait_all = np.maximum(0, posted[:, cidx[pj - 1]] - 1 - spent)
    wait = np.where(at_wb, 0, wait_all)
    # a compute layer's first write-back waits for the posted write and its first pass's
    # prefetch at once (the prefetch's wait is in the load phase: core_model.core_cycles)
    pf_w0_x = np.concatenate([pf_wait0, np.zeros((H, 1), dtype=np.int64)], axis=1)
    wait_wb = np.maximum(0, wait_all - wait - np.where(comp_l[pj], pf_w0_x[:, cidx[pj]], 0))
    ub = lu["bus"][:, 0]  # the end descriptor's fetch, per layout
    end_fetch = READ_ISSUE + _dma(L * DESC_BYTES + 0 * ub, DESC_BYTES + 0 * ub, ub, rd)[inv]
    last_posted = posted[:, -1] if L and comp_l[-1] else np.zeros(H, dtype=np.int64)
    # (the end waits in S_DECODE: core_model.posted_wait's "end")
    end_cycles = end_fetch + 1 + np.maximum(0, last_posted - 1 - (3 + end_fetch))

    if per_layer:
        fetch = fetch_all
        load = in_load
        load[:, ci] += pass_load
        load[:, pj] += wait
        compute = np.empty((H, L), dtype=np.int64)
        compute[:, ci] = cmp_d[:, col]
        compute[:, vi] = vec_c
        wb = u_vwb[inv]
        wb[:, ci] = wb_c
        wb[:, pj] += wait_wb
        control = np.full((H, L), 2, dtype=np.int64)
        control[:, ci] += npass
    else:
        one = (H, 1)
        fetch = u_fetch.sum(axis=1)[inv].reshape(one)
        load = (in_load.sum(axis=1) + pass_load.sum(axis=1) + wait.sum(axis=1)).reshape(one)
        compute = (cmp_d @ n_col + vec_c.sum(axis=1)).reshape(one)
        wb = (u_vwb.sum(axis=1)[inv] + wb_c.sum(axis=1) + wait_wb.sum(axis=1)).reshape(one)
        control = (2 * L + npass.sum(axis=1)).reshape(one)

    res: dict[str, I64] = {}
    area: F64 | None = None
    static = np.zeros(H)
    e = np.zeros((H, L) if per_layer else (H, 1))
    if platform is not None:
        if platform.is_fpga:
            assert platform.device is not None
            res = core_resources_batch(cfg, platform.device.synth_target)
            static = np.full(H, platform.device.static_power_w)
        else:
            area = core_area_um2(cfg, platform)
            static = _leak_vec(platform, area)
        if energy:
            # counts per layer (integers): array beats, post-processing ops (R*C per tile and
            # 1 per vector output element), bytes written to the ifmap (each of R copies) and
            # weight buffers, output bytes, DRAM bytes; the model is linear in them
            two = np.where(wl.src2 >= 0, 2, 1)
            if_written = wl.in_len * two
            out_b = wl.c * wl.pq
            post_1 = np.where(comp_l, 0, out_b * wl.kr * wl.ks)
            u_w = lu["ntiles"] * lu["tile_w"]
            u_dram = DESC_BYTES + if_written[None, :] + lu["blob"] + out_b[None, :]
            # a resident input is read from the ifmap copies, not from DRAM
            res_in = wl.in_len[None, :] * (res_a.astype(np.int64) + res_b.astype(np.int64))
            cyc = fetch + load + compute + wb + control
            if per_layer:
                beats = np.zeros((H, L), dtype=np.int64)
                beats[:, ci] = (tiles_d * t_d)[:, col]
                post_rc = np.zeros((H, L), dtype=np.int64)
                post_rc[:, ci] = tiles_d[:, col]
                z = np.zeros((H, L))
                qty = {
                    "b": beats.astype(np.float64),
                    "post_rc": post_rc.astype(np.float64),
                    "post_1": post_1[None, :] + z,
                    "if_written": if_written[None, :] + z,
                    "w_written": u_w[inv].astype(np.float64),
                    "out_bytes": out_b[None, :] + z,
                    "dram_bytes": u_dram[inv] - res_in + z,
                }
            else:
                # sums of integers below 2^53: the same floats as summing per layer
                z = np.zeros((H, 1))
                qty = {
                    "b": ((tiles_d * t_d) @ n_col)[:, None].astype(np.float64),
                    "post_rc": (tiles_d @ n_col)[:, None].astype(np.float64),
                    "post_1": float(post_1.sum()) + z,
                    "if_written": float(if_written.sum()) + z,
                    "w_written": u_w.sum(axis=1)[inv][:, None].astype(np.float64),
                    "out_bytes": float(out_b.sum()) + z,
                    "dram_bytes": (u_dram.sum(axis=1)[inv] - res_in.sum(axis=1))[:, None].astype(
                        np.float64
                    ),
                }
            e = _energy(cfg, platform, qty)
            e = e + static[:, None] * cyc / (cfg.clock_mhz[:, None] * 1e6) * 1e12
    out = CoreResult(
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
    if tiled:
        _cost_tiled(wl, cfg, out, platform if energy else None, per_layer)
    return out


def _cost_tiled(wl: CoreWorkload, cfg: CoreConfigs, out: CoreResult, platform: Platform | None,
                per_layer: bool) -> None:  # fmt: skip
    """Cost the configurations of ``out`` that are infeasible untiled but run tiled, in place,
    all at once (:func:`_tiled_table`, :func:`_bands_cycles`; energy from the bands' counts;
    equal to :func:`_cost_tiled_each`, the band lists of :func:`tiled_layers` one by one)."""
    if wl.problems or wl.h is None:
        return
    fit = (cfg.w_bits >= wl.w_bits) & (cfg.a_bits >= wl.a_bits) & (cfg.adder >= int(wl.adder))
    cand = np.flatnonzero(~out.feasible & fit)
    for b in range(0, cand.size, TILED_BLOCK):  # a band table of a few hundred designs
        _cost_tiled_block(wl, cfg, out, platform, per_layer, cand[b : b + TILED_BLOCK])


TILED_BLOCK = 256  # designs per band table (ResNet-18: ~500 bands each)


def _cost_tiled_block(wl: CoreWorkload, cfg: CoreConfigs, out: CoreResult,
                      platform: Platform | None, per_layer: bool, cand: I64) -> None:  # fmt: skip
    """:func:`_cost_tiled` of the configurations ``cand``."""
    L = len(wl)
    sub = cfg.take(cand)
    f, acc = _tiled_table(wl, sub)
    hb, jb = f["cfg"], f["layer"]
    if not hb.size:
        return
    geo = core_geometry(sub)
    first = np.ones(hb.size, dtype=bool)
    first[1:] = hb[1:] != hb[:-1]
    phases, posted, _ = _bands_cycles(f, sub.rows[hb], sub.cols[hb], geo["bus"][hb],
                                      geo["p_tile"][hb], first)  # fmt: skip
    Hs = len(sub)
    flat = hb * L + jb
    ph2 = np.zeros((5, Hs * L), dtype=np.int64)
    for n in range(5):
        np.add.at(ph2[n], flat, phases[n])
    ph: I64 = ph2.reshape(5, Hs, L)
    last = np.ones(hb.size, dtype=bool)
    last[:-1] = first[1:]
    last_posted = np.zeros(Hs, dtype=np.int64)
    last_posted[hb[last]] = posted[last]
    end = _end_cycles(np.bincount(hb, minlength=Hs), geo["bus"], last_posted)
    rows_ok = np.flatnonzero(acc)
    idx = cand[rows_ok]
    for n, arr in enumerate((out.fetch, out.load, out.compute, out.writeback, out.control)):
        arr[idx] = ph[n][rows_ok] if per_layer else ph[n][rows_ok].sum(axis=1, keepdims=True)
    out.end_cycles[idx] = end[rows_ok]
    out.feasible[idx] = True
    if platform is None:
        return
    # the bands' counts for the energy model (_band_counts), summed per (configuration, layer)
    vec = f["vector"] > 0
    two = np.where(wl.src2[jb] >= 0, 2, 1)
    loaded = f["in_len"] * np.maximum(1, f["in_runs"]) * two
    out_b = np.where(f["band"] == 0, wl.c[jb] * wl.pq[jb], 0)
    tiles = f["npt"] * f["ntiles"]
    keep = f["keep"] > 0  # the previous band's weights: none loaded
    blob = np.where(keep, 0, f["ntiles"] * (f["tile_w"] + geo["p_tile"][hb]))
    counts = {
        "b": np.where(vec, 0, tiles * f["t"]),
        "post_rc": np.where(vec, 0, tiles),
        "post_1": np.where(vec, f["c_pq"] * f["kr"] * f["ks"], 0),
        "if_written": loaded,
        "w_written": np.where(vec | keep, 0, f["ntiles"] * f["tile_w"]),
        "out_bytes": out_b,
        "dram_bytes": DESC_BYTES + loaded + np.where(vec, f["c_pq"], blob + out_b),
    }
    qty: dict[str, F64] = {}
    for key, v in counts.items():
        acc_q = np.zeros(Hs * L)
        np.add.at(acc_q, flat, v.astype(np.float64))
        qty[key] = acc_q.reshape(Hs, L)[rows_ok]
    total = ph.sum(axis=0)[rows_ok]
    if not per_layer:
        qty = {key: v.sum(axis=1, keepdims=True) for key, v in qty.items()}
        total = total.sum(axis=1, keepdims=True)
    e = _energy(sub.take(rows_ok), platform, qty)
    clock = cfg.clock_mhz[idx][:, None]
    out.energy_pj[idx] = e + out.static_w[idx][:, None] * total / (clock * 1e6) * 1e12


def _cost_tiled_each(wl: CoreWorkload, cfg: CoreConfigs, out: CoreResult,
                     platform: Platform | None, per_layer: bool) -> None:  # fmt: skip
    """:func:`_cost_tiled` one configuration at a time (:func:`tiled_layers`,
    :func:`_band_cycles`, :func:`_band_counts`): the reference it is tested against."""
    L = len(wl)
    if wl.problems:
        return
    ok = (cfg.w_bits >= wl.w_bits) & (cfg.a_bits >= wl.a_bits) & (cfg.adder >= int(wl.adder))
    geo = core_geometry(cfg)
    for i in np.flatnonzero(~out.feasible & ok).tolist():
        bands = tiled_layers(wl, cfg, i)
        if bands is None:
            continue
        phases, end = _band_cycles(int(cfg.rows[i]), int(cfg.cols[i]), int(geo["bus"][i]),
                                   int(geo["p_tile"][i]), bands)  # fmt: skip
        ph = np.zeros((5, L), dtype=np.int64)
        layer_of = np.array([b.get("layer") for b in bands], dtype=np.int64)
        for n in range(5):
            np.add.at(ph[n], layer_of, phases[n])
        qty = {k: np.zeros((1, L)) for k in _QTY}
        for b in bands:
            j = b.get("layer")
            for k, v in _band_counts(wl, b, j).items():
                qty[k][0, j] += v
        for n, arr in enumerate((out.fetch, out.load, out.compute, out.writeback, out.control)):
            arr[i] = ph[n] if per_layer else ph[n].sum()
        out.end_cycles[i] = end
        out.feasible[i] = True
        if platform is not None:
            one = cfg.take(np.array([i]))
            total = ph.sum(axis=0)[None, :]
            if not per_layer:
                qty = {k: v.sum(axis=1, keepdims=True) for k, v in qty.items()}
                total = total.sum(axis=1, keepdims=True)
            e = _energy(one, platform, qty)
            e = e + out.static_w[i] * total / (float(cfg.clock_mhz[i]) * 1e6) * 1e12
            out.energy_pj[i] = e[0]


_QTY = ("b", "post_rc", "post_1", "if_written", "w_written", "out_bytes", "dram_bytes")


def _band_counts(wl: CoreWorkload, b: PlannedLayer, j: int) -> dict[str, float]:
    """A band's counts for the energy model (``_energy``): array beats, post-processing ops,
    bytes written to the ifmap (each run: halos reloaded) and weight buffers, DRAM bytes
    (descriptor, input runs, the band's weights and parameters, outputs); the layer's output
    bytes once (the bands partition them)."""
    g = b.get
    first = g("band") == 0
    out_b = float(wl.c[j] * wl.pq[j]) if first else 0.0
    two = 2 if int(wl.src2[j]) >= 0 else 1
    loaded = g("in_len") * max(1, g("in_runs")) * two
    if b.mode == "vector":
        return {
            "post_1": float(g("c_pq") * g("kr") * g("ks")),
            "if_written": float(loaded),
            "out_bytes": out_b,
            "dram_bytes": float(DESC_BYTES + loaded + g("c_pq")),
        }
    tiles = g("npt") * g("ntiles")
    blob = 0 if g("keep") else g("ntiles") * (g("tile_w") + g("p_tile"))
    return {"b": float(tiles * g("t")), "post_rc": float(tiles), "if_written": float(loaded),
            "w_written": 0.0 if g("keep") else float(g("ntiles") * g("tile_w")), "out_bytes": out_b,
            "dram_bytes": float(DESC_BYTES + loaded + blob) + out_b}  # fmt: skip


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
def _ram_batch(target: str, *cols: I64 | int) -> tuple[I64, I64]:
    """``core_model.ram_cells(target, depth, lanes, bits, row, used)`` element-wise, vectorised
    (the same mode choice, the same arithmetic: ``tests/test_core_batch.py`` checks equality)."""
    shape = np.broadcast_shapes(*(np.shape(c) for c in cols))
    depth, lanes, bits, row, used = (
        np.broadcast_to(np.asarray(c, dtype=np.int64), shape) for c in cols
    )
    row = np.where(row == 0, lanes, row)
    used = np.where(used == 0, row, used)
    rows = lanes // row
    drops = _BRAM_DROPS_LANES[target]
    modes = _BRAM_MODES[target]
    # the cheapest mode (cells x cost), then the fewest cells: on equal cells x cost the
    # dearer cell has fewer, so the minimum of (cells x cost) x nc + the cost's rank among
    # the nc costs, dearest first (ceilings shared by the modes of one depth / width)
    costs = sorted({cost for _, _, cost in modes}, reverse=True)
    nc = len(costs)
    deep_d = {d: _cdiv_k(depth, d) for d in {d for d, _, _ in modes}}
    groups_w = {}
    for w in {w for _, w, _ in modes}:
        groups = _cdiv_k(lanes, w)
        if drops:
            groups = np.where(w <= row, rows * _cdiv_k(used, w), groups)
        groups_w[w] = groups
    key = np.full(shape, np.iinfo(np.int64).max)
    for d, w, cost in modes:
        k = deep_d[d] * (groups_w[w] * (cost * nc))
        k += costs.index(cost)
        np.minimum(key, k, out=key)
    best_c = key // nc
    best_n = best_c // np.array(costs, dtype=np.int64)[key % nc]
    opts = _LUTRAM[target]
    pick = np.full(shape, -1)
    for i, o in enumerate(opts):  # the first LUT RAM cell deep enough
        pick = np.where((pick < 0) & (depth <= o[0]), i, pick)
    if target != "xilinx":  # ECP5: cells stack in depth
        pick = np.where(pick < 0, len(opts) - 1, pick)
    bram = best_n.copy()
    lut = np.zeros(shape, dtype=np.int64)
    at = np.flatnonzero(pick >= 0)  # LUT RAM candidates (7-series: one cell deep at most)
    if at.size:
        pk, dp, ru, bt, bc = (np.ravel(x)[at] for x in (pick, depth, rows * used, bits, best_c))
        for i, (cd, cw, ccost, per, sites) in enumerate(opts):
            deep = _cdiv_k(dp, cd)
            ok = (pk == i) & (deep * ru * ccost * bt / per < bc)
            bram.ravel()[at[ok]] = 0
            lut.ravel()[at[ok]] = (deep * ru * -(-bt // cw) * sites)[ok]
    return bram, lut


def core_brams_batch(cfg: CoreConfigs, target: str) -> dict[str, I64]:
    """``core_model.buffer_brams`` for every configuration: block RAMs per buffer and the LUTs
    of LUT RAM (``core_model.core_rams``' geometry)."""
    geo = core_geometry(cfg)
    r, c, b = cfg.rows, cfg.cols, geo["bus"]
    one = np.ones_like(r)
    recs = geo["p_tile"] // 16
    o_wb = geo["o_wb"]
    # (buffer, count, depth, lanes, bits, row, used) as in core_model.core_rams
    rams = (
        ("ifmap", one, geo["if_depth"] // b, b, 8 * one, b, b),
        ("ifmap", r - 1, geo["if_depth"] // b, b, cfg.a_bits, b, b),
        ("weight", one, geo["w_depth"] * geo["w_row"] // geo["w_word"], geo["w_word"],
         cfg.w_bits, geo["w_row"], c),
        ("ofmap", 2 * one, geo["o_depth"] // (2 * o_wb), o_wb, 8 * one, o_wb, o_wb),
    )  # fmt: skip
    out = {k: np.zeros(len(cfg), dtype=np.int64) for k in ("ifmap", "weight", "params", "ofmap")}
    out["lutram_lut"] = np.zeros(len(cfg), dtype=np.int64)
    for name, count, *shape in rams:
        bram, lut = _ram_batch(target, *shape)
        out[name] += count * bram
        out["lutram_lut"] += count * lut
    # the parameter RAMs (the records' bytes, the flip bit) once per distinct record count
    urecs, back = np.unique(recs, return_inverse=True)
    key = (target, urecs.tobytes())
    if key not in _PARAM_RAMS:  # kept: a sweep's blocks share their few record counts
        if len(_PARAM_RAMS) >= 256:
            _PARAM_RAMS.clear()
        (b8, l8), (b1, l1) = (_ram_batch(target, 16, 16 * urecs, bits, 16, used)
                              for bits, used in ((8, 9), (1, 1)))  # fmt: skip
        _PARAM_RAMS[key] = (b8 + b1, l8 + l1)
    bram, lut = _PARAM_RAMS[key]
    out["params"] += bram[back.reshape(-1)]
    out["lutram_lut"] += lut[back.reshape(-1)]
    return out


# the parameter RAMs' block RAMs and LUTs per distinct record count (core_brams_batch), per
# (target, distinct record counts)
_PARAM_RAMS: dict[tuple[str, bytes], tuple[I64, I64]] = {}


def core_resources_batch(cfg: CoreConfigs, target: str) -> dict[str, I64]:
    """:func:`autochip.predictor.core_model.core_resources` for every configuration: ``lut ff
    dsp bram`` (int64) and ``fmax_mhz`` (float64, NaN where the target has no Fmax model)."""
    model = _model_for(target)
    H = len(cfg)
    r, c = cfg.rows.astype(np.float64), cfg.cols.astype(np.float64)
    a, w = cfg.a_bits.astype(np.float64), cfg.w_bits.astype(np.float64) + 1
    moves = r * (c - 1) * (a + 1) + (r - 1) * c * w
    moves += (r * (r - 1) // 2) * (a + 1) + (c * (c - 1) // 2) * w
    x = {"one": np.ones(H), "rows": r, "cols": c, "pes": r * c,
         "bus": cfg.bus.astype(np.float64), "moves": moves}  # fmt: skip
    # a PE's resources per distinct (adder, a_bits, w_bits)
    uk, back = np.unique(cfg.adder * 10000 + cfg.a_bits * 100 + cfg.w_bits, return_inverse=True)
    pe = np.array([pe_resources(target, k // 100 % 100, k % 100, bool(k // 10000))
                   for k in uk.tolist()], dtype=np.int64)  # fmt: skip
    pe = pe.reshape(-1, len(FIT_RESOURCES))
    pes = cfg.rows * cfg.cols
    out: dict[str, Any] = {}
    for i, res in enumerate(FIT_RESOURCES):
        acc = np.zeros(H)
        for f, v in model["control"][res].items():
            acc = acc + float(v) * x[f]
        ctrl = np.maximum(0, np.round(acc)).astype(np.int64)
        added = ADDED_LOGIC.get(target, {}).get(res, 0)
        out[res] = pes * pe[back.reshape(-1), i] + ctrl + added
    mem = core_brams_batch(cfg, target)
    out["lut"] = out["lut"] + mem["lutram_lut"]
    out["bram"] = mem["ifmap"] + mem["weight"] + mem["params"] + mem["ofmap"]
    fm = model.get("fmax")
    if fm:
        out["fmax_mhz"] = np.round(float(fm["a"]) + float(fm["b"]) * np.log2(r * c), 1)
    else:
        out["fmax_mhz"] = np.full(H, np.nan)
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
        if not wl.vector[j] and wl.h is not None and wl.sh is not None and wl.ph is not None:
            # the input's geometry (what the load watermark's model reads)
            cg = int(wl.t[j]) // (f["kr"] * f["ks"])
            h = int(wl.h[j])
            wd = int(wl.in_len[j]) // (int(wl.groups[j]) * cg * h)
            f.update(cg=cg, h=h, w=wd, hw=h * wd, sh=int(wl.sh[j]), oy0=-int(wl.ph[j]))
        out.append(PlannedLayer(name, "vector" if wl.vector[j] else "mac", f))
    return tuple(out)


def why_infeasible(wl: CoreWorkload, cfg: CoreConfigs, i: int, tiled: bool = False) -> list[str]:
    """What keeps configuration ``i`` from running ``wl`` (empty when it is feasible); with
    ``tiled``, what keeps it from running with feature-map tiling (the buffer problems of the
    layers the band planner refuses only)."""
    refused: list[int] = []
    if tiled and tiled_layers(wl, cfg, i, refused) is not None:
        return []
    one = cfg.take(np.array([i]))
    out = list(wl.problems)
    geo = core_geometry(one)
    lu, inv = _unique_layout(wl, one)
    need = {k: v[inv] for k, v in _needs(wl, lu).items()}
    if_depth, w_depth = int(geo["if_depth"][0]), int(geo["w_depth"][0])
    o_depth, w_row = int(geo["o_depth"][0]), int(geo["w_row"][0])
    if int(one.w_bits[0]) < wl.w_bits or int(one.a_bits[0]) < wl.a_bits:
        out.append(f"the network needs w_bits >= {wl.w_bits} and a_bits >= {wl.a_bits}")
    if wl.adder and not one.adder[0]:
        out.append("the network has adder layers: expected pe.kind 'adder'")
    for j, name in enumerate(wl.names):
        n_if, n_w, n_o = (int(need[k][0, j]) for k in ("if", "w", "o"))
        if tiled and j not in refused:
            continue
        if tiled and (n_if > if_depth or n_o > o_depth):
            what = "one channel plane" if wl.vector[j] else "one output row of one group"
            out.append(
                f"layer '{name}': even in bands (feature-map tiling, {what} at a time) it does "
                f"not fit one ifmap copy ({if_depth} bytes = buffers.ifmap.size_kb / rows) or "
                f"the ofmap ({o_depth} bytes)"
            )
            n_if = n_o = 0
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


# -- feature-map tiling (autochip.builder.tiling) -------------------------------------------------
def tiled_layers(
    wl: CoreWorkload, cfg: CoreConfigs, i: int, refused: list[int] | None = None
) -> tuple[PlannedLayer, ...] | None:
    """The descriptors ``compile_model`` emits for configuration ``i`` with feature-map tiling:
    every layer split into the bands :mod:`autochip.builder.tiling` plans (row bands with
    strided input and output runs, group bands, vector channel bands), each a descriptor with
    the compiler's fields and DRAM addresses (``(bands + 1) * 256`` bytes of descriptors, the
    layer's parameter and weight blob once, then the tensors). ``None``: a layer the planner
    refuses (not even one output row of one group fits), or a workload without the layers'
    row geometry. For :func:`core_model.core_cycles`: the scalar authority, one configuration
    at a time. ``refused``: collects the layers the planner refuses (all of them)."""
    from autochip.builder.tiling import (
        band_rows,
        compute_tiling,
        pitch,
        prefetch_passes,
        vector_tiling,
        weights_outer,
    )

    if wl.h is None or wl.sh is None or wl.ph is None:
        return None
    one = cfg.take(np.array([i]))
    geo = {k: int(v[0]) for k, v in core_geometry(one).items()}
    lu, _ = _unique_layout(wl, one)
    lay = {k: v[0] for k, v in lu.items()}
    R, C, B = int(one.rows[0]), int(one.cols[0]), geo["bus"]
    if_depth, w_depth, o_depth = geo["if_depth"], geo["w_depth"], geo["o_depth"]
    w_row, p_tile = geo["w_row"], geo["p_tile"]
    bands: list[tuple[int, str, dict[str, int]]] = []  # (layer, mode, fields without start)
    for j in range(len(wl)):
        g = {k: int(v[j]) for k, v in lay.items() if v.shape[0] == len(wl)}
        c, p, q, kr, ks = (int(x[j]) for x in (wl.c, wl.p, wl.q, wl.kr, wl.ks))
        pq = p * q
        in_len = int(wl.in_len[j])
        name = wl.names[j]
        if wl.vector[j]:
            two = int(wl.src2[j]) >= 0
            vt = vector_tiling(c=c, hw=in_len // c, pq=pq, two_inputs=two, bus=B,
                               if_depth=if_depth, o_depth=o_depth, off_in=g["in_addr"] % B,
                               off_in2=g["in2_addr"] % B if two else 0,
                               off_out=g["out_addr"] % B)  # fmt: skip
            if vt is None:
                if refused is None:
                    return None
                refused.append(j)
                continue
            hw = in_len // c
            for gi in range(vt.group_bands):
                c0 = gi * vt.groups
                nc = min(c, c0 + vt.groups) - c0
                f = {"in_addr": c0 * hw, "in2_addr": c0 * hw if two else 0,
                     "out_addr": c0 * pq, "in_len": nc * hw, "c_pq": nc * pq,
                     "npt": -(-(nc * pq) // R), "pq": pq, "c": nc, "p": p, "q": q, "kr": kr,
                     "ks": ks}  # fmt: skip
                bands.append((j, "vector", f))
            continue
        t, kg, kt, ntiles = g["t"], g["kg"], g["kt"], g["ntiles"]
        groups = ntiles // kt
        cg = t // (kr * ks)
        h = int(wl.h[j])
        wd = in_len // (groups * cg * h)
        sh, ph = int(wl.sh[j]), int(wl.ph[j])
        tile_w = g["tile_w"]
        ct = compute_tiling(cg=cg, h=h, w=wd, groups=groups, kr=kr, sh=sh, p=p, q=q, cols=C,
                            bus=B, if_depth=if_depth, o_depth=o_depth,
                            off_in=g["in_addr"] % B)  # fmt: skip
        if ct is None or tile_w // w_row > w_depth:
            if refused is None:
                return None
            refused.append(j)
            continue
        rws = [(0, p, 0, h)] if ct.row_bands == 1 else [
            band_rows(ri, ct.rows, p, h, kr, sh, ph) for ri in range(ct.row_bands)]  # fmt: skip

        def o_pitch(
            b: tuple[int, ...], pq: int = pq, q: int = q, tr: bool = ct.row_bands > 1
        ) -> int:
            return pitch((b[1] - b[0]) * q, pq, B) if tr else pq

        tpp_w = min(PARAM_TILES, w_depth // (tile_w // w_row))
        tpp_max = min(tpp_w, *((o_depth - (B - 1)) // (C * o_pitch(b)) for b in rws))
        # (row band, first group, groups, first tile, tiles, keep the weights): the compiler's
        specs: list[tuple[int, int, int, int, int, bool]] = []
        if weights_outer(ct, groups=groups, passes=-(-kt // tpp_max), in_bytes=in_len,
                         w_bytes=ntiles * (tile_w + p_tile)):  # fmt: skip
            for t0 in range(0, kt, tpp_max):
                specs += [(ri, 0, 1, t0, min(tpp_max, kt - t0), ri > 0)
                          for ri in range(ct.row_bands)]  # fmt: skip
        else:
            for ri in range(ct.row_bands):
                for gi in range(ct.group_bands):
                    g0 = gi * ct.groups
                    ng = min(groups, g0 + ct.groups) - g0
                    specs.append((ri, g0, ng, 0, ng * kt, False))
        for ri, g0, ng, t0, nt, keep in specs:
            oy0, oy1, iy0, iy1 = rws[ri]
            pq_b, rows_in = (oy1 - oy0) * q, iy1 - iy0
            kg_b = min(kg, (t0 + nt) * C) - t0 * C if ng == 1 else kg
            kt_b = nt if ng == 1 else kt
            f = {"in_addr": g0 * cg * h * wd + iy0 * wd,
                 "out_addr": (g0 * kg + t0 * C) * pq + oy0 * q,
                 "w_addr": g["w_addr"] + (g0 * kt + t0) * tile_w,
                 "p_addr": g["p_addr"] + (g0 * kt + t0) * p_tile,
                 "in_len": ng * cg * h * wd, "t": t, "kg": kg_b, "kt": kt_b, "tile_w": tile_w,
                 "ntiles": ng * kt_b if ng > 1 else nt, "npt": -(-pq // R), "pq": pq, "c": c,
                 "p": p, "q": q, "kr": kr, "ks": ks, "c_pq": C * pq, "out_stride": pq,
                 "o_pitch": pq, "op": int(keep) << 7, "keep": int(keep)}  # fmt: skip
            if ct.row_bands > 1:  # one run per input channel and per output channel
                opitch = o_pitch(rws[ri])
                f.update({"in_len": rows_in * wd, "in_runs": ng * cg, "in_stride": h * wd,
                          "in_bstride": pitch(rows_in * wd, h * wd, B), "out_run": pq_b,
                          "o_pitch": opitch, "p": oy1 - oy0, "pq": pq_b,
                          "npt": -(-pq_b // R), "c_pq": C * opitch})  # fmt: skip
            f["tpp"] = min(tpp_w, (o_depth - (B - 1)) // (C * f["o_pitch"]), f["ntiles"])
            bands.append((j, "mac", f))
    if refused:
        return None
    per_layer = np.bincount([j for j, _, _ in bands], minlength=len(wl))
    if per_layer.max(initial=0) <= 1:  # no bands: weight prefetch (compiler.prefetch)
        for _, mode, f in bands:
            if mode == "vector":
                continue
            n = prefetch_passes(
                f["tpp"], f["ntiles"], f["tile_w"] // w_row, w_depth,
                load_tile=(f["tile_w"] + p_tile) // B, wb_tile=C * f["pq"] // B, rows=R,
                cols=C, npt=f["npt"], tile_cycles=max(f["t"], R, C),
            )  # fmt: skip
            if n:
                f.update(op=f["op"] | 1 << 12, tpp=n, p_slot=n, w_slot=n * f["tile_w"] // w_row)
    # the layout with one descriptor per band (compile_model's): the blobs move with the
    # descriptors' end; a tiled layer's output region is allocated once per band (the
    # compiler lays out every descriptor's output, the last allocation is the tensor's)
    align = max(ALIGN, B)
    start_l = -(-((len(wl) + 1) * DESC_BYTES) // align) * align
    start_b = -(-((len(bands) + 1) * DESC_BYTES) // align) * align
    delta = start_b - start_l
    blob_al = -(-lay["blob"] // align) * align
    base = start_b + int(blob_al.sum())
    t_off = _tensor_off(wl, align, np.concatenate([[1], per_layer,
                                                   np.ones(len(wl.tensor_bytes) - len(wl) - 1,
                                                           dtype=np.int64)]))  # fmt: skip
    out = []
    k = 0
    for n, (j, mode, f) in enumerate(bands):
        k = k + 1 if n and bands[n - 1][0] == j else 0
        f["in_addr"] += base + int(t_off[wl.src[j]])
        f["out_addr"] += base + int(t_off[j + 1])
        if int(wl.src2[j]) >= 0:
            f["in2_addr"] += base + int(t_off[wl.src2[j]])
        for a in ("w_addr", "p_addr"):
            if a in f:
                f[a] += delta
        name = f"{wl.names[j]}@{k}" if per_layer[j] > 1 else wl.names[j]
        f.update(layer=j, band=k, p_tile=p_tile)
        out.append(PlannedLayer(name, mode, f))
    if per_layer.max(initial=0) <= 1:  # no bands: cross-layer prefetch (compiler)
        from autochip.builder.compiler import apply_cross_prefetch

        apply_cross_prefetch([f for _, mode, f in bands if mode != "vector"], rows=R, cols=C,
                             bus=B, p_tile=p_tile, w_row=w_row, w_depth=w_depth)  # fmt: skip
    return tuple(out)


_BAND_FIELDS = (
    "keep",
    "in_addr",
    "in2_addr",
    "in_len",
    "in_runs",
    "in_stride",
    "out_addr",
    "out_run",
    "out_stride",
    "pq",
    "c_pq",
    "kr",
    "ks",
    "ntiles",
    "tpp",
    "tile_w",
    "w_addr",
    "p_addr",
    "npt",
    "t",
    "kt",
    "kg",
)  # fmt: skip (and "vector": 1 for vector bands)


def _band_cycles(rows: int, cols: int, bus: int, p_tile: int,
                 bands: Sequence[PlannedLayer]) -> tuple[I64, int]:  # fmt: skip
    """``core_model.core_cycles`` of a list of descriptors (the bands of :func:`tiled_layers`)
    with numpy: phases (5, N) (fetch, load, compute, writeback, control) and the end
    descriptor's cycles (:func:`_bands_cycles` on one configuration)."""
    N = len(bands)
    f = {k: np.array([b.get(k) for b in bands], dtype=np.int64) for k in _BAND_FIELDS}
    f["vector"] = np.array([b.mode == "vector" for b in bands], dtype=np.int64)
    f["pf"] = np.array([b.get("op") >> 12 & 1 for b in bands], dtype=np.int64)  # prefetch
    f["xin"] = np.array([b.get("op") >> 14 & 1 for b in bands], dtype=np.int64)
    one = np.ones(N, dtype=np.int64)
    first = np.zeros(N, dtype=bool)
    first[:1] = True
    phases, posted, _ = _bands_cycles(f, rows * one, cols * one, bus * one, p_tile * one, first)
    end = _end_cycles(np.array([N]), np.array([bus]), posted[-1:] if N else np.zeros(1, int))
    return phases, int(end[0])


def _end_cycles(n_desc: I64, bus: I64, last_posted: I64) -> I64:
    """The end descriptor's cycles: its fetch, 1, and the wait for the last posted write."""
    rd = int(dram_timing()["read_burst_overhead"])
    fetch = READ_ISSUE + _dma(n_desc * DESC_BYTES, np.full(n_desc.shape, DESC_BYTES), bus, rd)
    out: I64 = fetch + 1 + np.maximum(0, last_posted - 1 - (3 + fetch))  # posted_wait "end"
    return out


def _bands_cycles(f: dict[str, I64], R: I64, C: I64, bus: I64, p_tile: I64,
                  first: npt.NDArray[np.bool_]) -> tuple[I64, I64, I64]:  # fmt: skip
    """The cycles of a table of descriptors (one entry per band, the bands of one or more
    configurations in program order; ``first`` marks each configuration's first band), as
    ``core_model.core_cycles`` counts them: phases (5, N), each band's posted write-back and
    its descriptor index. A band's input rows are ``in_runs`` strided commands and its output
    rows one command per channel (all of the band's channels in order, over its passes):
    each a strided run in closed form (:func:`_dma_run`)."""
    tm = dram_timing()
    rd, wr = int(tm["read_burst_overhead"]), int(tm["write_burst_overhead"])
    N = R.size
    vec = f["vector"] > 0
    # descriptor index within its configuration
    start = np.flatnonzero(first)
    pos = np.arange(N) - np.repeat(start, np.diff(np.append(start, N)))
    # the controller's read commands: READ_ISSUE each (core_model.read_cycles)
    fetch = READ_ISSUE + _dma(pos * DESC_BYTES, np.full(N, DESC_BYTES), bus, rd)
    runs = np.maximum(1, f["in_runs"])
    load = runs * READ_ISSUE + _dma_run(f["in_addr"], f["in_len"], runs, bus, rd,
                                        np.maximum(f["in_stride"], 1))  # fmt: skip
    load += np.where(vec & (f["in2_addr"] != 0),
                     READ_ISSUE + _dma(f["in2_addr"], f["in_len"], bus, rd), 0)  # fmt: skip
    # vector bands
    vec_c = R + _cdiv(f["c_pq"], R) * f["kr"] * f["ks"] + FLUSH_CYCLES
    vec_wb = WRITE_ISSUE + _dma(f["out_addr"], f["c_pq"], bus, wr)
    # compute bands: passes of tpp weight tiles
    nt, tp = f["ntiles"], np.maximum(f["tpp"], 1)
    kt, kg = np.maximum(f["kt"], 1), f["kg"]
    npass = np.where(vec, 0, _cdiv(nt, tp))
    full = np.maximum(npass - 1, 0)
    s_last = full * tp
    n_first = np.minimum(tp, nt)
    first_ld = np.zeros(N, dtype=np.int64)
    w_ld = np.zeros(N, dtype=np.int64)
    keep = f["keep"] > 0  # the previous band's weights stay: empty weight / parameter loads
    for a0, st in ((f["w_addr"], np.where(keep, 0, f["tile_w"])),
                   (f["p_addr"], np.where(keep, 0, p_tile))):  # fmt: skip
        w_ld += np.where(vec, 0, READ_ISSUE * npass + _dma_run(a0, tp * st, full, bus, rd)
                         + _dma(a0 + s_last * st, (nt - s_last) * st, bus, rd))  # fmt: skip
        first_ld += np.where(vec, 0, READ_ISSUE + _dma(a0, n_first * st, bus, rd))
    flush_c = flush_compute_cycles(R, C)  # type: ignore[arg-type]
    # cross-layer prefetch (op bit 14, programs without bands): no first loads, 3 cycles
    from autochip.builder.tiling import PREFETCHED_PASS

    xin = (f["xin"] > 0) & ~vec if "xin" in f else np.zeros(N, dtype=bool)
    w_ld += np.where(xin, PREFETCHED_PASS - first_ld, 0)
    first_ld = np.where(xin, PREFETCHED_PASS, first_ld)
    # weight prefetch (programs without bands): the first pass's loads, 3 cycles a pass
    # more, the write-backs' waits for the next pass's loads
    pf = (f["pf"] > 0) if "pf" in f else np.zeros(N, dtype=bool)
    ip = np.flatnonzero(pf & ~vec)
    if ip.size:
        rn = (R + 1 + flush_c + f["npt"] * tp * np.maximum(f["t"], np.maximum(R, C)))[ip]
        pf_w, _ = _pf_waits_flat(tp[ip], nt[ip], rn, bus[ip], p_tile[ip], f["tile_w"][ip],
                                 f["w_addr"][ip], f["p_addr"][ip], rd)  # fmt: skip
        w_ld[ip] = first_ld[ip] + (npass[ip] - 1) * PREFETCHED_PASS + pf_w
    load += w_ld
    cmp_c = npass * (R + 1 + flush_c) + f["npt"] * nt * np.maximum(f["t"], np.maximum(R, C))
    # write-backs: every command but the last waits; the last is posted
    pq, stride = f["pq"], np.where(f["out_stride"] > 0, f["out_stride"], f["pq"])
    run = f["out_run"] > 0
    nch = (nt // kt) * kg  # a band's output channels, written in order
    # every write command WRITE_ISSUE more than its DMA (core_model.write_cycles)
    all_runs = WRITE_ISSUE * nch + _dma_run(f["out_addr"], f["out_run"], nch, bus, wr, stride)
    last_run = WRITE_ISSUE + _dma(f["out_addr"] + (nch - 1) * stride, f["out_run"], bus, wr)
    ch_l = _chan_at(s_last, kt, kg, C)
    last_pass = WRITE_ISSUE + _dma(f["out_addr"] + ch_l * stride,
                                   (_chan_at(nt, kt, kg, C) - ch_l) * pq, bus, wr)  # fmt: skip
    uniform = (kt == 1) | (kg == kt * C) | (tp % kt == 0) | (nt == kt)
    # uniform passes: back to back (out_stride = PQ without row bands)
    step = _chan_at(tp, kt, kg, C) - _chan_at(0 * tp, kt, kg, C)
    n_u = np.where(uniform, full, 0)
    passes = WRITE_ISSUE * n_u + _dma_run(f["out_addr"], step * pq, n_u, bus, wr)
    idx = np.flatnonzero(~uniform & ~run & ~vec)
    passes[idx] = 0
    p = 0
    while idx.size:  # uneven passes one by one (the last one is last_pass)
        idx = idx[full[idx] > p]
        s0 = p * tp[idx]
        e0 = np.minimum(s0 + tp[idx], nt[idx])
        c0 = _chan_at(s0, kt[idx], kg[idx], C[idx])
        a = f["out_addr"][idx] + c0 * stride[idx]
        n_ch = _chan_at(e0, kt[idx], kg[idx], C[idx]) - c0
        passes[idx] += WRITE_ISSUE + _dma(a, n_ch * pq[idx], bus[idx], wr)
        p += 1
    wb_in = np.where(run, all_runs - last_run, passes)
    posted = np.where(vec, 0, np.where(run, last_run, last_pass))
    control = np.where(vec, 2, 2 + npass)
    compute = np.where(vec, vec_c, cmp_c)
    wb = np.where(vec, vec_wb, wb_in + POSTED_ISSUE)
    # posted write-backs: a band after a compute band waits for what is left of it
    prev = np.zeros(N, dtype=np.int64)
    prev[1:] = posted[:-1]
    prev[first] = 0
    spent = np.where(vec, 4 + fetch, 5 + fetch + first_ld)
    load += np.maximum(0, prev - 1 - spent)
    return np.stack([fetch, load, compute, wb, control]), posted, pos


def _chan_at(s: I64, kt: I64, kg: I64, cols: I64 | int) -> I64:
    """The first output channel of weight tile ``s`` (``(s // kt) kg + (s % kt) C``)."""
    out: I64 = (s // kt) * kg + (s % kt) * cols
    return out


def _balanced_v(n: I64, most: I64) -> tuple[I64, I64]:
    """``tiling._balanced`` element-wise: ``ceil(n / bands)``-sized bands, their count."""
    most = np.maximum(most, 1)
    bands = _cdiv(n, most)
    size = _cdiv(n, bands)
    return _cdiv(n, size), size


def _pitch_v(n: I64, stride: I64 | int, bus: I64) -> I64:
    """``tiling.pitch`` element-wise (bus a power of two)."""
    out: I64 = n + ((stride - n) & (bus - 1))
    return out


def _bisect_most(cond: Any, lo: I64, hi: I64) -> I64:
    """The largest x in [lo, hi] with ``cond(x)`` (monotone: true up to some x), element-wise;
    ``lo`` where none."""
    lo, hi = lo.copy(), hi.copy()
    while True:
        act = lo < hi
        if not act.any():
            return lo
        mid = (lo + hi + 1) // 2
        ok = cond(mid)
        lo = np.where(act & ok, mid, lo)
        hi = np.where(act & ~ok, mid - 1, hi)


def _tiled_table(
    wl: CoreWorkload, cfg: CoreConfigs
) -> tuple[dict[str, I64], npt.NDArray[np.bool_]]:
    """:func:`tiled_layers` for every configuration of ``cfg`` at once: the band table (one
    entry per band, configurations in turn, each in program order: ``cfg``, ``layer``,
    ``band`` and the descriptor fields) and which configurations the planner accepts. The
    planner (``autochip.builder.tiling``) vectorised: the untiled checks, then the most rows
    (compute layers of one group) or channels (vector layers) that fit, by bisection; a
    compute layer of several groups that needs tiling calls the planner itself."""
    from autochip.builder.tiling import compute_tiling

    H, L = len(cfg), len(wl)
    geo = core_geometry(cfg)
    lu, inv = _unique_layout(wl, cfg)
    B, C = geo["bus"], cfg.cols
    if_d, w_d, o_d, w_row = geo["if_depth"], geo["w_depth"], geo["o_depth"], geo["w_row"]
    ok = np.ones(H, dtype=bool)
    keys = ("nr", "rows", "ngb", "gsz", "groups", "cg", "wd", "hw")
    par = {k: np.ones((H, L), dtype=np.int64) for k in keys}
    word = B - 1
    for j in range(L):
        c, p, q = int(wl.c[j]), int(wl.p[j]), int(wl.q[j])
        pq, in_len = p * q, int(wl.in_len[j])
        off_in = lu["in_addr"][inv, j] & word
        if wl.vector[j]:
            hw = in_len // c
            two = int(wl.src2[j]) >= 0
            off2 = lu["in2_addr"][inv, j] & word if two else 0 * B

            def need(ch: I64, o1: I64, o2: I64, hw: int = hw, two: bool = two) -> I64:
                n = o1 + ch * hw
                out: I64 = _cdiv(n, B) * B + o2 + ch * hw if two else n
                return out

            whole = (need(np.full(H, c), off_in, off2) <= if_d) & (
                (lu["out_addr"][inv, j] & word) + c * pq <= o_d
            )

            def fits_ch(ch: I64, need: Any = need, pq: int = pq) -> npt.NDArray[np.bool_]:
                out: npt.NDArray[np.bool_] = (need(ch, word, word) <= if_d) & (
                    word + ch * pq <= o_d
                )
                return out

            most = _bisect_most(fits_ch, np.zeros(H, dtype=np.int64), np.full(H, c))
            ok &= whole | (most > 0)
            ngb, gsz = _balanced_v(np.full(H, c), most)
            par["ngb"][:, j] = np.where(whole, 1, ngb)
            par["gsz"][:, j] = np.where(whole, c, gsz)
            par["hw"][:, j] = hw
            continue
        kr, ks = int(wl.kr[j]), int(wl.ks[j])
        t, kt, nt = lu["t"][inv, j], np.maximum(lu["kt"][inv, j], 1), lu["ntiles"][inv, j]
        groups = nt // kt
        cg = t // (kr * ks)
        h = int(wl.h[j]) if wl.h is not None else 1
        sh = int(wl.sh[j]) if wl.sh is not None else 1
        wd = in_len // (groups * cg * h)
        hw = h * wd
        ok &= lu["tile_w"][inv, j] // w_row <= w_d
        o_full = C * pq + word <= o_d
        whole = (off_in + groups * cg * hw <= if_d) & o_full

        def fits_rows(rows: I64, cg: I64 = cg, wd: I64 = wd, hw: I64 = hw, o_full: Any = o_full,
                      h: int = h, sh: int = sh, kr: int = kr, p: int = p, q: int = q
                      ) -> npt.NDArray[np.bool_]:  # fmt: skip
            rows_in = np.minimum(h, (rows - 1) * sh + kr)
            need = word + (cg - 1) * _pitch_v(rows_in * wd, hw, B) + rows_in * wd
            band = (need <= if_d) & (word + C * _pitch_v(rows * q, p * q, B) <= o_d)
            out: npt.NDArray[np.bool_] = np.where(rows >= p, o_full & (word + cg * hw <= if_d),
                                                  band)  # fmt: skip
            return out

        one_group = groups == 1
        lo = _bisect_most(fits_rows, np.ones(H, dtype=np.int64), np.full(H, p))
        refused = ~whole & one_group & ~fits_rows(np.ones(H, dtype=np.int64))
        nr, rows = _balanced_v(np.full(H, p), lo)
        nr, rows = np.where(whole, 1, nr), np.where(whole, p, rows)
        ngb, gsz = np.ones(H, dtype=np.int64), np.where(whole, groups, 1)
        for i in np.flatnonzero(~whole & ~one_group).tolist():  # several groups: the planner
            til = compute_tiling(cg=int(cg[i]), h=h, w=int(wd[i]), groups=int(groups[i]), kr=kr,
                                 sh=sh, p=p, q=q, cols=int(C[i]), bus=int(B[i]),
                                 if_depth=int(if_d[i]), o_depth=int(o_d[i]),
                                 off_in=int(off_in[i]))  # fmt: skip
            if til is None:
                refused[i] = True
                continue
            nr[i], rows[i], ngb[i], gsz[i] = til.row_bands, til.rows, til.group_bands, til.groups
        ok &= ~refused
        for k, v in (("nr", nr), ("rows", rows), ("ngb", ngb), ("gsz", gsz), ("groups", groups),
                     ("cg", cg), ("wd", wd), ("hw", hw)):  # fmt: skip
            par[k][:, j] = v
    return _band_table(wl, cfg, geo, lu, inv, par, ok), ok


def _band_table(wl: CoreWorkload, cfg: CoreConfigs, geo: dict[str, I64], lu: dict[str, I64],
                inv: I64, par: dict[str, I64], ok: npt.NDArray[np.bool_]
                ) -> dict[str, I64]:  # fmt: skip
    """The bands of the accepted configurations (``ok``) as :func:`tiled_layers` emits them,
    from each (configuration, layer)'s plan ``par`` (H, L): fields and DRAM addresses."""
    H, L = len(cfg), len(wl)
    B, R, C = geo["bus"], cfg.rows, cfg.cols
    w_d, o_d, w_row = geo["w_depth"], geo["o_depth"], geo["w_row"]
    # weights outermost (tiling.weights_outer): a plain convolution in row bands runs each pass
    # of weight tiles over all its row bands when that moves fewer bytes
    comp = ~wl.vector[None, :]
    kt2 = np.maximum(lu["kt"][inv], 1)
    tw2, nt2 = lu["tile_w"][inv], lu["ntiles"][inv]
    pq2 = (wl.p * wl.q)[None, :]
    tr2 = par["nr"] > 1
    pitch0 = np.where(tr2, _pitch_v(np.minimum(wl.p[None, :], par["rows"]) * wl.q[None, :], pq2,
                                    B[:, None]), pq2)  # fmt: skip
    tpp_w = np.minimum(PARAM_TILES, w_d[:, None] // np.maximum(tw2 // w_row[:, None], 1))
    tpp_max = np.maximum(np.minimum(tpp_w, (o_d - (B - 1))[:, None] // (C[:, None] * pitch0)), 1)
    passes = _cdiv(kt2, tpp_max)
    w_bytes = nt2 * (tw2 + geo["p_tile"][:, None])
    in_b = wl.in_len[None, :]
    wo = comp & (par["groups"] == 1) & tr2 & (passes * in_b + w_bytes < par["nr"] * w_bytes + in_b)
    nb = np.where(ok[:, None], np.where(wo, passes * par["nr"], par["nr"] * par["ngb"]), 0)
    rep = nb.ravel()
    hj = np.repeat(np.arange(H * L), rep)
    starts = np.cumsum(rep) - rep
    k = np.arange(hj.size) - starts[hj]
    h, j = hj // L, hj % L

    def at(x: I64) -> I64:  # a (H, L) array per band
        out: I64 = x.ravel()[hj]
        return out

    def lay(name: str) -> I64:
        out: I64 = lu[name][inv[h], j]
        return out

    vec = wl.vector[j]
    ngb_b = at(par["ngb"])
    wo_b = at(wo.astype(np.int64)) > 0
    nr_w = np.maximum(at(par["nr"]), 1)
    ri = np.where(wo_b, k % nr_w, k // ngb_b)
    gi = np.where(wo_b, 0, k % ngb_b)
    tmax = at(tpp_max)
    nr_b, rows_b, gsz_b = at(par["nr"]), at(par["rows"]), at(par["gsz"])
    Bb, Rb, Cb = B[h], R[h], C[h]
    p_, q_ = wl.p[j], wl.q[j]
    pq = p_ * q_
    hh = np.ones_like(j) if wl.h is None else wl.h[j]
    sh = np.ones_like(j) if wl.sh is None else wl.sh[j]
    ph = np.zeros_like(j) if wl.ph is None else wl.ph[j]
    kr, ks = wl.kr[j], wl.ks[j]
    wd, hw, cg, groups = at(par["wd"]), at(par["hw"]), at(par["cg"]), at(par["groups"])
    kg, kt, t, tile_w = lay("kg"), np.maximum(lay("kt"), 1), lay("t"), lay("tile_w")
    # compute bands: rows [oy0, oy1) reading input rows [iy0, iy1), groups [g0, g0 + ng)
    tr = nr_b > 1
    oy0 = np.where(tr, ri * rows_b, 0)
    oy1 = np.where(tr, np.minimum(p_, oy0 + rows_b), p_)
    iy0 = np.where(tr, np.maximum(0, oy0 * sh - ph), 0)
    iy1 = np.where(tr, np.minimum(hh, (oy1 - 1) * sh - ph + kr), hh)
    g0 = gi * gsz_b
    ng = np.where(wo_b, 1, np.minimum(np.where(vec, wl.c[j], groups), g0 + gsz_b) - g0)
    t0 = np.where(wo_b, (k // nr_w) * tmax, 0)
    nt = np.where(wo_b, np.minimum(tmax, kt - t0), ng * kt)
    kg_b = np.where(ng == 1, np.minimum(kg, (t0 + nt) * Cb) - t0 * Cb, kg)
    kt_b = np.where(ng == 1, nt, kt)
    ntiles_b = np.where(ng > 1, ng * kt_b, nt)
    pq_b = (oy1 - oy0) * q_
    opitch = np.where(tr, _pitch_v(pq_b, pq, Bb), pq)
    pq_f = np.where(tr, pq_b, pq)
    f: dict[str, I64] = {
        "cfg": h, "layer": j, "band": k, "vector": vec.astype(np.int64),
        "in_off": np.where(vec, g0 * hw, g0 * cg * hh * wd + iy0 * wd),
        "out_off": np.where(vec, g0 * pq, (g0 * kg + t0 * Cb) * pq + oy0 * q_),
        "keep": (wo_b & (ri > 0)).astype(np.int64),
        "in_len": np.where(vec, ng * hw, np.where(tr, (iy1 - iy0) * wd, ng * cg * hh * wd)),
        "in_runs": np.where(tr, ng * cg, 0), "in_stride": np.where(tr, hw, 0),
        "out_run": np.where(tr, pq_b, 0), "out_stride": np.where(vec, 0, pq),
        "pq": np.where(vec, pq, pq_f), "c_pq": np.where(vec, ng * pq, Cb * opitch),
        "kr": kr, "ks": ks, "t": t, "kg": kg_b, "kt": kt_b, "tile_w": tile_w,
        "ntiles": np.where(vec, 0, ntiles_b), "npt": np.where(vec, _cdiv(ng * pq, Rb),
                                                              _cdiv(pq_f, Rb)),
        "w_addr": np.where(vec, 0, lay("w_addr") + (g0 * kt + t0) * tile_w),
        "p_addr": np.where(vec, 0, lay("p_addr") + (g0 * kt + t0) * geo["p_tile"][h]),
    }  # fmt: skip
    f["tpp"] = np.where(vec, 0, np.minimum(
        np.minimum(PARAM_TILES, w_d[h] // np.maximum(tile_w // w_row[h], 1)),
        np.minimum((o_d[h] - (Bb - 1)) // (Cb * opitch), ntiles_b)))  # fmt: skip
    n_desc = nb.sum(axis=1)
    # weight prefetch (compiler.prefetch): only in a program without bands
    from autochip.builder.tiling import prefetch_passes_batch

    pf_b = np.where(vec | (n_desc[h] != L), 0, prefetch_passes_batch(
        np.maximum(f["tpp"], 1), ntiles_b, np.maximum(tile_w // w_row[h], 1), w_d[h],
        load_tile=(tile_w + geo["p_tile"][h]) // Bb, wb_tile=Cb * pq_f // Bb, rows=Rb,
        cols=Cb, npt=f["npt"], tile_cycles=np.maximum(t, np.maximum(Rb, Cb))))  # fmt: skip
    f["pf"] = pf_b
    f["tpp"] = np.where(pf_b > 0, pf_b, f["tpp"])
    # the layout: a descriptor per band, a tiled layer's output allocated once per band
    align = np.maximum(ALIGN, B)
    start_l = _cdiv((L + 1) * DESC_BYTES + 0 * align, align) * align
    start_b = _cdiv((n_desc + 1) * DESC_BYTES, align) * align
    delta = start_b - start_l
    blob_al = _cdiv(lu["blob"], lu["bus"] * 0 + np.maximum(ALIGN, lu["bus"])) * np.maximum(
        ALIGN, lu["bus"]
    )
    base = start_b + blob_al.sum(axis=1)[inv]
    allocs = np.ones((H, wl.tensor_bytes.shape[0]), dtype=np.int64)
    allocs[:, 1 : L + 1] = np.maximum(nb, 1)
    t_off = _tensor_offsets(wl, align, allocs)
    src2 = np.maximum(wl.src2[j], 0)
    f["in_addr"] = base[h] + t_off[h, wl.src[j]] + f["in_off"]
    f["in2_addr"] = np.where(wl.src2[j] >= 0, base[h] + t_off[h, src2] + f["in_off"], 0)
    f["out_addr"] = base[h] + t_off[h, j + 1] + f["out_off"]
    f["w_addr"] = np.where(vec, 0, f["w_addr"] + delta[h])
    f["p_addr"] = np.where(vec, 0, f["p_addr"] + delta[h])
    # cross-layer prefetch (op bit 14) of the programs without bands (compiler)
    f["xin"] = np.zeros(h.size, dtype=np.int64)
    e = np.flatnonzero(~vec & (n_desc[h] == L))  # their compute layers, one band each
    ci = np.flatnonzero(~wl.vector)
    if e.size and ci.size > 1:
        from autochip.builder.tiling import cross_prefetch

        hs, row = np.unique(h[e], return_inverse=True)
        cidx = np.zeros(L, dtype=np.int64)
        cidx[ci] = np.arange(ci.size)
        m = np.zeros((hs.size, ci.size), dtype=np.int64)
        m[row.reshape(-1), cidx[j[e]]] = e
        rd = int(dram_timing()["read_burst_overhead"])
        nt_m, tp_m = f["ntiles"][m], np.maximum(f["tpp"][m], 1)
        n0 = np.minimum(nt_m, tp_m)
        bb, hh = Bb[m], h[m]
        first = (
            2 * READ_ISSUE
            + _dma(f["w_addr"][m], n0 * f["tile_w"][m], bb, rd)
            + _dma(f["p_addr"][m], n0 * geo["p_tile"][hh], bb, rd)
        )
        rr, cc = Rb[m], Cb[m]
        n_last = nt_m - (_cdiv(nt_m, tp_m) - 1) * tp_m
        last = (rr + 1 + flush_compute_cycles(rr, cc)
                + f["npt"][m] * n_last * np.maximum(f["t"][m], np.maximum(rr, cc)))  # fmt: skip
        xin = cross_prefetch(nt_m, f["tpp"][m], f["pf"][m] > 0,
                             np.maximum(f["tile_w"][m] // w_row[hh], 1), w_d[hs][:, None], first,
                             last)[0]  # fmt: skip
        f["xin"][m[xin]] = 1
    return f


def _tensor_offsets(wl: CoreWorkload, align: I64, allocs: I64) -> I64:
    """:func:`_tensor_off` per configuration, (H, T): ``align`` (H,) and ``allocs`` (H, T)."""
    off0, outer, own = _outer_regions(wl)
    a = align[:, None]
    t_al = np.where(own[None, :], _cdiv(wl.tensor_bytes[None, :], a) * a, 0)
    start = np.cumsum(t_al * allocs, axis=1) - t_al
    out: I64 = start[:, outer] + (off0 - off0[outer])[None, :]
    return out

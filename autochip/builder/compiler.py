"""Compiler: an exported integer model -> the core's descriptor program, DRAM image and plan.

Every op of :class:`~autochip.reference.IntegerModel` becomes one descriptor (``program.py``):

* ``ComputeOp`` (conv2d / linear; mac, adder or xnor) -> a compute descriptor: an im2col GEMM
  with output pixels on array rows and output channels of one group on array columns. Integer
  MAC layers with fewer channels per group than columns (depthwise) merge groups with
  block-diagonal weights so that one tile fills the columns (:func:`merge_groups`). Binary
  (xnor) layers run on the MAC datapath with +-1 operands (exact: a*w is the xnor term) and -1
  padding; adder layers need an ``adder`` core. Weight tiles are split into passes that fit the
  weight, parameter and output buffers.
* ``MaxPoolOp`` -> vector max; ``SumPoolOp`` + its ``RescaleOp`` -> vector window-sum + rescale;
  a two-input ``RescaleOp`` (residual add) -> vector add; a one-input ``RescaleOp`` -> a 1x1 sum.
* ``FlattenOp`` costs nothing: tensors are NCHW bytes in DRAM, so the flat tensor aliases its
  input's region.
* ``SubsampleOp`` (``x[:, :, ::s, ::s]``, ResNet option-A shortcuts) -> a vector max over 1x1
  windows with stride s: the strided copy, bit-exact, one cycle per output element.
* ``PadOp`` on channels (the option-A zero channels) costs nothing either: the padded tensor
  gets its own region, zero in the DRAM image and never written, and the unpadded input is
  placed inside it at byte offset ``c_before * H * W``, so whatever produces the input writes it
  straight into the padded tensor. Spatial padding is refused (convolutions pad themselves).
* ``ConcatOp`` (channels) costs nothing the same way: each input is placed inside the
  concatenated tensor at its channel offset, so the producers write the concatenation.

DRAM layout (byte addresses, all int8 tensors NCHW): descriptors at 0 (the last one ends the
program), then per layer its parameter records (``core.p_tile`` bytes per weight tile) and
weight tiles (rows of ``core.w_row`` bytes, a tile padded to whole bus words), then one region
per tensor; every region starts on a bus word (``max(ALIGN, bus_bytes)``), so the tiles are
long bursts. A tensor that starts inside a bus word (one placed inside a channel-padded
tensor) is handled by its offset within the word (``base0``, ``in2_ofs``, ``wstep``).
What the core cannot run is refused with a :class:`CompileError` naming the op.

Feature-map residency (``residency.py``): in a program without bands, a layer's outputs are
also forwarded into the ifmap copies where a later layer reads them without a load; the
allocator's placements set ``in_ifofs`` / ``in2_ofs`` / ``base0`` / ``wstep``, ``fwd_ofs``,
``o_base`` and op bits 8-11.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autochip.builder.core import PARAM_TILES, CoreParams
from autochip.builder.program import (
    DESC_BYTES,
    OP_COMPUTE,
    OP_END,
    OP_VECTOR,
    PARAM_RECORD_BYTES,
    VMODE_ADD,
    VMODE_MAX,
    VMODE_SUM,
    encode_descriptor,
    op_word,
)
from autochip.builder.residency import Desc, Placement, allocate, ofmap_bases
from autochip.builder.tiling import (
    band_rows,
    compute_tiling,
    cross_prefetch,
    pitch,
    prefetch_passes,
    vector_tiling,
    weights_outer,
)
from autochip.errors import AutochipError
from autochip.reference import (
    ComputeOp,
    ConcatOp,
    FlattenOp,
    IntegerModel,
    MaxPoolOp,
    PadOp,
    RescaleOp,
    SubsampleOp,
    SumPoolOp,
    run,
)

__all__ = ["ALIGN", "CompileError", "CompiledLayer", "Program", "compile_model", "pe_operands"]

ALIGN = 16  # byte alignment of every DRAM region


class CompileError(AutochipError):
    """The core cannot run this model (the message names the op and the limit)."""


_BYTE = (-128, 127)  # every activation is stored as a byte; vector lanes read whole bytes


def pe_operands(model: IntegerModel) -> set[str]:
    """The tensors a PE reads as activations: the inputs of compute layers, directly or
    through the ops that pass values on unchanged (max pooling, flatten, pad, subsample,
    concat). They must fit the PEs' ``a_bits`` (a PE reads the low ``a_bits`` of each byte);
    any other tensor (the logits, a residual branch read only by the add) only a byte."""
    feeds: set[str] = set()
    for op in reversed(model.ops):
        if isinstance(op, ConcatOp):
            if op.output in feeds:
                feeds.update(op.inputs)
        elif isinstance(op, ComputeOp | MaxPoolOp | FlattenOp | PadOp | SubsampleOp) and (
            isinstance(op, ComputeOp) or op.output in feeds
        ):
            feeds.add(op.input)
    return feeds


@dataclass(frozen=True)
class CompiledLayer:
    """One descriptor: what it computes and the figures the cycle model needs."""

    name: str
    kind: str  # "conv", "linear", "maxpool", "avgpool", "add", "subsample"
    mode: str  # "mac", "adder", "binary" (compute) or "vector"
    output: str
    fields: dict[str, int] = field(repr=False)

    def get(self, key: str) -> int:
        return int(self.fields.get(key, 0))


@dataclass(frozen=True)
class Program:
    layers: tuple[CompiledLayer, ...]
    dram: bytes  # the initial DRAM image (program, parameters, weights; tensors zero)
    program_addr: int
    input_name: str
    input_addr: int
    tensors: dict[str, tuple[int, tuple[int, ...]]]  # name -> (address, shape)
    output: str

    def plan(self) -> dict[str, Any]:
        """The tiling plan and memory map as JSON-ready data."""
        return {
            "program_addr": self.program_addr,
            "dram_bytes": len(self.dram),
            "input": {"name": self.input_name, "addr": self.input_addr},
            "output": self.output,
            "tensors": {
                k: {"addr": a, "shape": list(s), "bytes": int(np.prod(s))}
                for k, (a, s) in self.tensors.items()
            },
            "layers": [
                {"name": lay.name, "kind": lay.kind, "mode": lay.mode, "output": lay.output,
                 "descriptor": dict(lay.fields)}
                for lay in self.layers
            ],
        }  # fmt: skip


def _kb(n: int) -> str:
    """``n`` bytes as a size_kb value, rounded up to 1/1024 KB (a whole byte)."""
    return f"{n // 1024}" if n % 1024 == 0 else f"{-(-n * 1000 // 1024) / 1000:.3f}"


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape[1:])


def _up(n: int, unit: int) -> int:
    return -(-n // unit) * unit


def _fits(values: np.ndarray, bits: int) -> bool:
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return bool(values.size == 0 or (values.min() >= lo and values.max() <= hi))


def _i32(x: int) -> bytes:
    return int(x).to_bytes(4, "little", signed=True)


class _Compiler:
    def __init__(self, model: IntegerModel, core: CoreParams) -> None:
        self.m = model
        self.core = core
        self.pe_in = pe_operands(model)
        x0 = np.zeros((1, *model.input_shape[1:]), dtype=np.int64)
        _, dumped = run(model, x0, dump=True)
        self.shapes = {k: tuple(int(d) for d in v.shape) for k, v in dumped.items()}
        self.alias: dict[str, str] = {}
        # tensor -> (the padded / concatenated tensor it is placed in, byte offset)
        self.inside: dict[str, tuple[str, int]] = {}
        self.pads: list[str] = []  # padded / concatenated tensors: own region, no descriptor
        self.layers: list[tuple[CompiledLayer, bytes]] = []  # layer, its param+weight blob
        self.problems: list[str] = []
        self.need: dict[str, int] = {}  # bytes each buffer needs (all banks) for the model
        # descriptor -> byte offsets of its band in its input, output, weight and parameter
        # regions, and the index of the descriptor that carries the layer's blob
        self.place: dict[str, tuple[int, int, int, int, int]] = {}

    def fail(self, op_name: str, what: str) -> None:
        self.problems.append(f"op '{op_name}': {what}")

    def act_bits(self, tensor: str) -> int:
        """Signed bits a tensor's values must fit: the PEs' activations where a PE reads it,
        else a byte (every activation is stored as one)."""
        return min(self.core.a_bits, 8) if tensor in self.pe_in else 8

    def check_range(self, op_name: str, out: str, lo: int, hi: int) -> None:
        """An output range must fit :meth:`act_bits` of the tensor it writes."""
        bits = self.act_bits(out)
        what = (f"{bits}-bit activations (a later layer's PEs read it)" if out in self.pe_in
                else "a byte (activations are stored as bytes)")  # fmt: skip
        if not -(2 ** (bits - 1)) <= lo <= hi < 2 ** (bits - 1):
            self.fail(op_name, f"output range [{lo}, {hi}] does not fit {what}")

    def buffer(self, op_name: str, buf: str, what: str, need: int) -> None:
        """Refuse ``need`` units of buffer ``buf`` if it holds less; keep the spec bytes needed.

        Units: bytes of one ifmap copy, weight rows (``core.w_row`` bytes), ofmap bytes. The
        spec bytes round up to the buffer's words (core.py: ifmap copies of whole bus words,
        weight words of ``w_word`` bytes, ofmap in two banks of ``o_wb``-byte words).
        """
        core = self.core
        have, unit, total, per = {
            "ifmap": (core.if_depth, "bytes", _up(need, core.bus_bytes) * core.rows,
                      "one ifmap copy (buffers.ifmap.size_kb / rows, whole bus words)"),
            "weight": (core.w_depth, f"rows of {core.w_row} bytes",
                       _up(need * core.w_row, core.w_word),
                       f"the weight buffer (buffers.weight.size_kb / {core.w_row})"),
            "ofmap": (core.o_depth, "bytes", _up(need, 2 * core.o_wb),
                      f"the ofmap buffer (buffers.ofmap.size_kb, whole {2 * core.o_wb}-byte "
                      "word pairs)"),
        }[buf]  # fmt: skip
        self.need[buf] = max(self.need.get(buf, 0), total)
        if need > have:
            self.fail(
                op_name,
                f"{what}: {need} {unit}, but {per} holds {have} {unit}; it needs "
                f"buffers.{buf}.size_kb >= {_kb(total)}",
            )

    def offset(self, name: str) -> int:
        """The tensor's DRAM address modulo the bus width (regions start on bus words; a
        tensor placed inside a padded / concatenated one is at its offset there)."""
        name = self.root(name)
        if name in self.inside:
            parent, off = self.inside[name]
            return (self.offset(parent) + off) % self.core.bus_bytes
        return 0

    def root(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    # -- compute ------------------------------------------------------------------------
    def compute(self, op: ComputeOp) -> None:
        core = self.core
        shp = self.shapes[op.input]
        w = np.asarray(op.weight, dtype=np.int64)
        if op.layer == "linear":
            cin, h, wd = int(np.prod(shp[1:])), 1, 1
            k, cg, kr, ks = w.shape[0], w.shape[1], 1, 1
            sh = sw = 1
            ph = pw = 0
            groups = 1
            w4 = w.reshape(k, cg, 1, 1)
        else:
            if len(shp) != 4:
                self.fail(op.name, f"expected a 4-D input, found shape {shp}")
                return
            cin, h, wd = shp[1], shp[2], shp[3]
            k, cg, kr, ks = w.shape
            (sh, sw), (ph, pw), groups = op.stride, op.padding, op.groups
            if tuple(op.dilation) != (1, 1):
                self.fail(op.name, f"the core runs dilation 1 only, found {op.dilation}")
                return
            w4 = w
            if op.kind == "mac":
                w4, groups = merge_groups(w, groups, core.cols, core.w_depth)
                cg = w4.shape[1]
        out_shape = self.shapes[op.output]
        p, q = (out_shape[2], out_shape[3]) if len(out_shape) == 4 else (1, 1)
        mode = {"mac": "mac", "adder": "adder", "xnor": "binary"}[op.kind]
        if op.kind == "adder" and not core.adder:
            self.fail(op.name, "an adder layer needs a core with pe.kind 'adder', found 'mac'")
        if not _fits(w, core.w_bits):
            self.fail(
                op.name,
                f"weights in [{int(w.min())}, {int(w.max())}] do not fit {core.w_bits}-bit "
                "signed PE operands",
            )
        if op.requant is not None:
            self.check_range(op.name, op.output, op.requant.lo, op.requant.hi)
        t = cg * kr * ks
        bus, w_row = core.bus_bytes, core.w_row
        kg = k // groups
        kt = -(-kg // core.cols)
        ntiles = groups * kt
        pq = p * q
        in_len = cin * h * wd
        tile_w = -(-t * w_row // bus) * bus  # DRAM bytes per weight tile: whole bus words
        til = compute_tiling(
            cg=cg, h=h, w=wd, groups=groups, kr=kr, sh=sh, p=p, q=q, cols=core.cols, bus=bus,
            if_depth=core.if_depth, o_depth=core.o_depth, off_in=self.offset(op.input),
        )  # fmt: skip
        if til is None:
            rows_in = min(h, kr)  # one output row's input rows, one run per channel
            one = bus - 1 + (cg - 1) * pitch(rows_in * wd, h * wd, bus) + rows_in * wd
            self.fail(
                op.name,
                f"its input feature map {_shape(shp)}: one output row of one group needs "
                f"{one} bytes of one ifmap copy (channels at a pitch congruent to H*W modulo "
                f"the bus, from any byte of a bus word), which holds "
                f"{core.if_depth} bytes (buffers.ifmap.size_kb / rows, whole bus words), or "
                f"one row of a weight tile's outputs ({core.cols} lanes x {q}) does not fit the "
                f"ofmap ({core.o_depth} bytes); "
                + ("a fully connected layer this large needs partial sums of the reduction, "
                   "which the core does not compute" if op.layer == "linear" else
                   "it needs column bands or partial sums of the reduction, which the compiler "
                   "does not make"),
            )  # fmt: skip
        self.buffer(
            op.name, "weight",
            f"one weight tile ({cg}x{kr}x{ks} weights per lane, whole bus words)",
            tile_w // w_row,
        )  # fmt: skip
        if self.problems or til is None:
            return
        # weight tiles: row j (w_row bytes) of tile (g, kt) holds W[g*kg + kt*C + c, j] in
        # lane c, lanes past C zero; a tile is tile_w bytes (zero rows at the end). Parameter
        # records: C per tile, then zeros up to core.p_tile bytes.
        blob_p = bytearray()
        blob_w = bytearray()
        bias = np.asarray(op.bias, dtype=np.int64)
        for g in range(groups):
            for tt in range(kt):
                tile = np.zeros((tile_w // w_row, w_row), dtype=np.int64)
                for c in range(core.cols):
                    kk = tt * core.cols + c
                    if kk >= kg:
                        blob_p += bytes(PARAM_RECORD_BYTES)
                        continue
                    ch = g * kg + kk
                    tile[:t, c] = w4[ch].reshape(-1)
                    if op.requant is not None:
                        mult, shift, flip = (int(op.requant.multiplier[ch]),
                                             int(op.requant.shift[ch]), 0)  # fmt: skip
                    else:
                        assert op.threshold is not None
                        mult, shift = int(op.threshold.threshold[ch]), 1
                        flip = int(op.threshold.flip[ch])
                    rec = _i32(int(bias[ch])) + _i32(mult) + bytes([shift, flip])
                    blob_p += rec + bytes(PARAM_RECORD_BYTES - len(rec))
                blob_p += bytes(core.p_tile - core.cols * PARAM_RECORD_BYTES)
                blob_w += (tile & 0xFF).astype(np.uint8).tobytes()
        a1, b1 = divmod(1, q)
        ar, br = divmod(core.rows, q)
        lo, hi = (op.requant.lo, op.requant.hi) if op.requant is not None else (-1, 1)
        fields = {
            "op": op_word(OP_COMPUTE, adder=op.kind == "adder", threshold=op.threshold is not None),
            "in_len": in_len, "h": h, "w": wd, "hw": h * wd, "cg_hw": cg * h * wd, "t": t,
            "kr": kr, "ks": ks, "pad": -1 if op.kind == "xnor" else 0, "pq": pq, "q": q,
            "a1_x": b1, "a1_ox": b1 * sw, "a1_oy": a1 * sh, "a1_base": a1 * sh * wd + b1 * sw,
            "ar_x": br, "ar_ox": br * sw, "ar_oy": ar * sh, "ar_base": ar * sh * wd + br * sw,
            "wrap_ox": q * sw, "sh": sh, "wrap_base": sh * wd - q * sw, "oy0": -ph, "ox0": -pw,
            "base0": -ph * wd - pw, "ntiles": ntiles, "kt": kt, "kg": kg, "tpp": 0, "lo": lo,
            "hi": hi, "c": k, "p": p, "sw": sw, "tile_w": tile_w,
            "npt": -(-pq // core.rows), "cg": cg, "c_pq": core.cols * pq,
            "last_pq": (kg - (kt - 1) * core.cols) * pq, "out_stride": pq, "o_pitch": pq,
        }  # fmt: skip
        owner = len(self.layers)
        rows = (
            [(0, p, 0, h)]
            if til.row_bands == 1
            else [band_rows(ri, til.rows, p, h, kr, sh, ph) for ri in range(til.row_bands)]
        )

        def o_pitch(band: tuple[int, ...]) -> int:
            return pitch((band[1] - band[0]) * q, pq, bus) if til.row_bands > 1 else pq

        # a pass of weight tiles: the parameter and weight buffers, and the band's outputs
        tpp_w = min(PARAM_TILES, core.w_depth // (tile_w // w_row))
        tpp_max = min(tpp_w, *((core.o_depth - (bus - 1)) // (core.cols * o_pitch(b))
                               for b in rows))  # fmt: skip
        # (row band, first group, groups, first tile of the group, tiles, keep the weights)
        specs: list[tuple[int, int, int, int, int, bool]] = []
        if weights_outer(
            til,
            groups=groups,
            passes=-(-kt // tpp_max),
            in_bytes=in_len,
            w_bytes=ntiles * (tile_w + core.p_tile),
        ):
            for t0 in range(0, kt, tpp_max):  # each pass's weights once, its row bands inside
                specs += [(ri, 0, 1, t0, min(tpp_max, kt - t0), ri > 0)
                          for ri in range(til.row_bands)]  # fmt: skip
        else:
            for ri in range(til.row_bands):
                for gi in range(til.group_bands):
                    g0 = gi * til.groups
                    ng = min(groups, g0 + til.groups) - g0
                    specs.append((ri, g0, ng, 0, ng * kt, False))
        for i_spec, (ri, g0, ng, t0, nt, keep) in enumerate(specs):
            oy0, oy1, iy0, iy1 = rows[ri]
            f = dict(fields)
            pq_b, rows_in, cin_b = (oy1 - oy0) * q, iy1 - iy0, ng * cg
            opitch = o_pitch(rows[ri])
            kg_b = min(kg, (t0 + nt) * core.cols) - t0 * core.cols if ng == 1 else kg
            kt_b = nt if ng == 1 else kt
            if til.row_bands > 1:  # one run per input channel and per output channel
                bstr = pitch(rows_in * wd, h * wd, bus)
                oy_loc = oy0 * sh - ph - iy0  # top of the band's first window, local rows
                f.update({
                    "in_len": rows_in * wd, "h": rows_in, "hw": bstr, "cg_hw": cg * bstr,
                    "in_runs": cin_b, "in_stride": h * wd, "in_bstride": bstr,
                    "oy0": oy_loc, "base0": oy_loc * wd - pw, "out_run": pq_b,
                    "o_pitch": opitch, "p": oy1 - oy0, "pq": pq_b,
                    "npt": -(-pq_b // core.rows), "c_pq": core.cols * opitch,
                })  # fmt: skip
            else:
                f["in_len"] = cin_b * h * wd
            f["kg"], f["kt"] = kg_b, kt_b
            f["last_pq"] = (kg_b - (kt_b - 1) * core.cols) * opitch
            f["ntiles"] = ng * kt_b if ng > 1 else nt
            f["tpp"] = min(
                tpp_w,
                # the pass's outputs start at any byte of a bus word (their DRAM offset)
                (core.o_depth - (bus - 1)) // (core.cols * opitch),
                f["ntiles"],
            )
            if keep:
                f["op"] |= 1 << 7  # program.op_word(keep=True): the previous band's weights
            elif not til.tiled:  # weight prefetch: two slots of n_pf tiles, if it pays
                n_pf = prefetch_passes(
                    f["tpp"], f["ntiles"], tile_w // w_row, core.w_depth,
                    load_tile=(tile_w + core.p_tile) // bus, wb_tile=core.cols * pq // bus,
                    rows=core.rows, cols=core.cols, npt=f["npt"],
                    tile_cycles=max(t, core.rows, core.cols),
                )  # fmt: skip
                if n_pf:  # applied in layout() when the program has no bands
                    f["pf_tiles"] = n_pf
            name = op.name if not til.tiled else f"{op.name}@{len(self.layers) - owner}"
            layer = CompiledLayer(name, op.layer, mode, op.output, f)
            blob = bytes(blob_p) + bytes(blob_w) if i_spec == 0 else b""  # the layer's region
            self.layers.append((layer, blob))
            self.inputs[name] = (op.input, None, len(blob_p))
            self.place[name] = (
                g0 * cg * h * wd + iy0 * wd,
                (g0 * kg + t0 * core.cols) * pq + oy0 * q,
                (g0 * kt + t0) * tile_w,
                (g0 * kt + t0) * core.p_tile,
                owner,
            )

    # -- vector ops ------------------------------------------------------------------------
    def vector(
        self,
        name: str,
        kind: str,
        src: str,
        out: str,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        mults: tuple[int, int],
        shift: int,
        lo: int,
        hi: int,
        src2: str | None = None,
    ) -> None:
        core = self.core
        shp = self.shapes[src]
        if len(shp) == 2:
            shp = (shp[0], shp[1], 1, 1)
        c, h, wd = shp[1], shp[2], shp[3]
        osh = self.shapes[out]
        p, q = (osh[2], osh[3]) if len(osh) == 4 else (1, 1)
        bus = core.bus_bytes
        til = vector_tiling(
            c=c, hw=h * wd, pq=p * q, two_inputs=src2 is not None, bus=bus,
            if_depth=core.if_depth, o_depth=core.o_depth, off_in=self.offset(src),
            off_in2=self.offset(src2) if src2 else 0, off_out=self.offset(out),
        )  # fmt: skip
        if til is None:
            what = "its two inputs' channel planes" if src2 else "its input's channel plane"
            self.fail(
                name,
                f"one channel of {what} ({_shape(shp)}: {h * wd} bytes each, from any byte of a "
                f"bus word) does not fit one ifmap copy ({core.if_depth} bytes = "
                f"buffers.ifmap.size_kb / rows), or one output plane ({p * q} bytes) the ofmap "
                f"({core.o_depth} bytes): vector layers are split by channels only",
            )
            return
        if kind not in ("maxpool", "subsample"):  # those pass values on (a byte clamp)
            self.check_range(name, out, lo, hi)
        if any(abs(m) >= 2**31 for m in mults) or not 1 <= shift <= 62:
            self.fail(name, f"rescale multipliers {mults} / shift {shift} exceed 32 bits / 1..62")
        (kr, ks), (sh, sw), (ph, pw) = kernel, stride, padding
        vmode = {"maxpool": VMODE_MAX, "subsample": VMODE_MAX, "avgpool": VMODE_SUM,
                 "add": VMODE_ADD}[kind]  # fmt: skip
        # R lanes compute R consecutive outputs (NCHW order); each group of R outputs the
        # lanes step by R = dc * P*Q + dp * Q + dq outputs: x by dq, y by dp, the channel by
        # dc, with the carries of x into y (wrap_ox, wrap_base) and of y into the channel
        # (v_oyw, v_cwrap); the last group has v_last valid lanes
        dq = core.rows % q
        dp = core.rows // q % p
        dc = core.rows // (p * q)
        for gi in range(til.group_bands):
            c0 = gi * til.groups
            nc = min(c, c0 + til.groups) - c0
            band = f"{name}@{gi}" if til.tiled else name
            self.vector_band(band, kind, vmode, src, src2, out, nc, h, wd, p, q, kr, ks, sh, sw,
                             ph, pw, dq, dp, dc, mults, shift, lo, hi)  # fmt: skip
            self.place[band] = (c0 * h * wd, c0 * p * q, 0, 0, len(self.layers) - 1)

    def vector_band(
        self, name: str, kind: str, vmode: int, src: str, src2: str | None, out: str, c: int,
        h: int, wd: int, p: int, q: int, kr: int, ks: int, sh: int, sw: int, ph: int, pw: int,
        dq: int, dp: int, dc: int, mults: tuple[int, int], shift: int, lo: int, hi: int,
    ) -> None:  # fmt: skip
        """One descriptor of a vector layer: ``c`` channels (a band of whole planes)."""
        core = self.core
        in_len = c * h * wd
        n_out = c * p * q
        groups = -(-n_out // core.rows)
        fields = {
            "op": op_word(OP_VECTOR, vmode=vmode, nobounds=kind == "add"),
            "in_len": in_len, "h": h, "w": wd, "hw": h * wd, "kr": kr, "ks": ks, "pq": p * q,
            "q": q, "sh": sh, "sw": sw, "oy0": -ph, "ox0": -pw, "base0": -ph * wd - pw,
            "ar_ox": dq * sw, "ar_oy": dp * sh, "ar_base": dq * sw + dp * sh * wd + dc * h * wd,
            "wrap_ox": q * sw, "wrap_base": sh * wd - q * sw, "v_oyw": p * sh,
            "v_cwrap": h * wd - p * sh * wd, "npt": groups,
            "v_last": n_out - (groups - 1) * core.rows,
            "lo": lo, "hi": hi, "mult0": mults[0], "mult1": mults[1], "shift": shift, "c": c,
            "p": p, "wstep": in_len if kind == "add" else wd, "c_pq": n_out,
        }  # fmt: skip
        self.layers.append((CompiledLayer(name, kind, "vector", out, fields), b""))
        self.inputs[name] = (src, src2, 0)

    # -- the walk ---------------------------------------------------------------------------
    def compile(self) -> Program:
        self.inputs: dict[str, tuple[str, str | None, int]] = {}
        ops = list(self.m.ops)
        consumers: dict[str, list[str]] = {}
        for op in ops:
            srcs = op.inputs if isinstance(op, RescaleOp | ConcatOp) else (op.input,)
            for s in srcs:
                consumers.setdefault(s, []).append(op.name)
        pending_sum: dict[str, SumPoolOp] = {}
        # placements first (aliases, padded and concatenated tensors): the planner needs every
        # tensor's offset within its bus word
        for op in ops:
            if isinstance(op, FlattenOp):
                self.alias[op.output] = op.input
            elif isinstance(op, PadOp):
                self.pad(op)
            elif isinstance(op, ConcatOp):
                self.concat(op)
        for op in ops:
            if isinstance(op, FlattenOp | PadOp | ConcatOp):
                continue
            if isinstance(op, ComputeOp):
                self.compute(op)
            elif isinstance(op, MaxPoolOp):  # a byte clamp: a no-op on stored values
                self.vector(op.name, "maxpool", op.input, op.output, op.kernel, op.stride,
                            op.padding, (0, 0), 1, *_BYTE)  # fmt: skip
            elif isinstance(op, SumPoolOp):
                users = consumers.get(op.output, [])
                if len(users) != 1:
                    self.fail(op.name, "a window sum must feed exactly one rescale")
                pending_sum[op.output] = op
            elif isinstance(op, RescaleOp):
                self.rescale(op, pending_sum)
            elif isinstance(op, SubsampleOp):
                self.subsample(op)
            else:  # pragma: no cover - IntegerModel has no other op types
                self.fail(getattr(op, "name", "?"), f"unsupported op {type(op).__name__}")
        if self.problems:
            raise CompileError("the core cannot run this model:\n  " + "\n  ".join(self.problems)
                               + self.summary())  # fmt: skip
        return self.layout()

    def summary(self) -> str:
        """The buffer sizes the whole model needs on this array, where the spec has less."""
        core = self.core
        have = {"ifmap": core.if_depth * core.rows, "weight": core.w_depth * core.w_row,
                "ofmap": core.o_depth}  # fmt: skip
        short = [
            f"buffers.{b}.size_kb >= {_kb(n)} (has {_kb(have[b])})"
            for b, n in self.need.items()
            if n > have[b]
        ]
        if not short:
            return ""
        return (
            f"\n  on this {core.rows}x{core.cols} array the model needs " + ", ".join(short)
            + " (feature maps are tiled in bands of rows and groups; a weight tile's reduction "
            "and one output row of a group stay on chip)"
        )  # fmt: skip

    def subsample(self, op: SubsampleOp) -> None:
        if len(self.shapes[op.input]) != 4:
            self.fail(op.name, f"expected a 4-D input, found shape {self.shapes[op.input]}")
            return
        self.vector(op.name, "subsample", op.input, op.output, (1, 1), op.stride, (0, 0),
                    (0, 0), 1, *_BYTE)  # fmt: skip

    def pad(self, op: PadOp) -> None:
        shp = self.shapes[op.input]
        c0, _, h0, h1, w0, w1 = op.pads
        if len(shp) != 4 or (h0, h1, w0, w1) != (0, 0, 0, 0):
            self.fail(
                op.name,
                f"the core zero-pads channels only (an address offset), found pads {op.pads} "
                f"on shape {shp}",
            )
            return
        src = self.root(op.input)
        if src in self.inside:
            self.fail(op.name, f"its input '{src}' is padded twice; the core pads a tensor once")
            return
        self.inside[src] = (op.output, c0 * shp[2] * shp[3])
        self.pads.append(op.output)

    def concat(self, op: ConcatOp) -> None:
        shapes = [self.shapes[i] for i in op.inputs]
        if any(len(s) != 4 or s[2:] != shapes[0][2:] for s in shapes):
            self.fail(op.name, f"expected 4-D inputs of one height and width, found {shapes}")
            return
        srcs = [self.root(i) for i in op.inputs]
        clash = [s for i, s in enumerate(srcs) if s in self.inside or s in srcs[:i]]
        if clash:
            self.fail(
                op.name,
                f"its input '{clash[0]}' is already placed inside another tensor (padded, "
                "concatenated or repeated); the core places a tensor once",
            )
            return
        off = 0
        for src, shp in zip(srcs, shapes, strict=True):
            self.inside[src] = (op.output, off)
            off += shp[1] * shp[2] * shp[3]
        self.pads.append(op.output)

    def rescale(self, op: RescaleOp, pending_sum: dict[str, SumPoolOp]) -> None:
        if len(op.inputs) == 2:
            a, b = op.inputs
            if self.shapes[self.root(a)] != self.shapes[self.root(b)]:
                self.fail(op.name, "the two inputs of an add must have one shape")
            self.vector(op.name, "add", a, op.output, (2, 1), (1, 1), (0, 0),
                        (op.multipliers[0], op.multipliers[1]), op.shift, op.lo, op.hi,
                        src2=b)  # fmt: skip
            return
        if len(op.inputs) != 1:
            self.fail(op.name, f"the core adds at most two tensors, found {len(op.inputs)}")
            return
        src = op.inputs[0]
        m = op.multipliers[0]
        if src in pending_sum:
            sp = pending_sum.pop(src)
            self.vector(op.name, "avgpool", sp.input, op.output, sp.kernel, sp.stride, (0, 0),
                        (m, m), op.shift, op.lo, op.hi)  # fmt: skip
        else:
            self.vector(op.name, "avgpool", src, op.output, (1, 1), (1, 1), (0, 0), (m, m),
                        op.shift, op.lo, op.hi)  # fmt: skip

    def prefetch(self, fs: list[dict[str, int]]) -> None:
        """Weight prefetch (op bit 12): a compute layer of several passes whose two slots fit
        gets ``pf_tiles`` tiles per pass (``tiling.prefetch_passes``), slot 1 at weight row
        ``w_slot`` and parameter word ``p_slot``. Not in a program with feature-map bands (as
        residency: the batch model's band path does not model it)."""
        banded = any("@" in lay.name for lay, _ in self.layers)
        for f in fs:
            n = f.pop("pf_tiles", 0)
            if n and not banded:
                f["op"] |= op_word(0, pf=True)
                f["tpp"], f["p_slot"] = n, n
                f["w_slot"] = n * f["tile_w"] // self.core.w_row

    def cross_prefetch(self, fs: list[dict[str, int]]) -> None:
        """Cross-layer weight prefetch (op bits 13-15, :func:`apply_cross_prefetch`); not in a
        program with feature-map bands (as :meth:`prefetch`)."""
        if any("@" in lay.name for lay, _ in self.layers):
            return
        core = self.core
        apply_cross_prefetch(
            [f for (lay, _), f in zip(self.layers, fs, strict=True) if lay.mode != "vector"],
            rows=core.rows, cols=core.cols, bus=core.bus_bytes, p_tile=core.p_tile,
            w_row=core.w_row, w_depth=core.w_depth,
        )  # fmt: skip

    def watermark(self, kind: str, f: dict[str, int]) -> None:
        """The load watermark (op bit 16, ``watermark.py``) of the program's first descriptor,
        a convolution of one group with the network input in DRAM; not in a program with
        feature-map bands (as :meth:`prefetch`): its row group ``in_grp``."""
        from autochip.builder.watermark import plan, prefetch_bound
        from autochip.predictor.core_model import (
            dram_timing,
            flush_compute_cycles,
            input_load,
            tile_cycles,
        )

        core = self.core
        banded = any("@" in lay.name for lay, _ in self.layers)
        one_group = f["cg"] * f["hw"] == f["in_len"]
        if kind != "conv" or f.get("in_runs", 0) or not one_group or f["op"] >> 9 & 1 or banded:
            return
        r, c, bus = core.rows, core.cols, core.bus_bytes
        rd = dram_timing()["read_burst_overhead"]
        period = tile_cycles(r, c, f["t"])
        n1 = min(max(f["tpp"], 1), f["ntiles"])
        pf_w = pf_p = 0
        if f["op"] >> 12 & 1 and f["ntiles"] > n1:  # the second pass, prefetched
            n2 = min(n1, f["ntiles"] - n1)
            pf_w, pf_p = n2 * f["tile_w"], n2 * core.p_tile
        elif f["op"] >> 13 & 1:  # the next compute layer's first pass
            pf_w, pf_p = f["x_w_len"], f["x_p_len"]
        layer = CompiledLayer("", kind, "compute", "", f)
        use, grp, _ = plan(
            rows=r, cols=c, bus=bus, in_addr=f["in_addr"], t=f["t"], pass_tiles=n1,
            npt=f["npt"], pass_run=r + 1 + flush_compute_cycles(r, c) + f["npt"] * n1 * period,
            pf_busy=prefetch_bound(pf_w, pf_p, bus, rd), plain_load=input_load(core, layer),
            cin=f["cg"], h=f["h"], wd=f["w"], q=f["q"], sh=f["sh"],
            ph=-f["oy0"], kr=f["kr"], over=rd,
        )  # fmt: skip
        if bool(use):
            f["op"] |= op_word(0, wm=True)
            f["in_grp"] = int(grp)
            f["in_need"] = f["kr"] * f["w"]

    def residency(
        self, fs: list[dict[str, int]], tensors: dict[str, tuple[int, tuple[int, ...]]]
    ) -> tuple[Placement, ...]:
        """Feature-map residency (``residency.py``): every descriptor's ifmap placement, and
        its op bits ``fwd res_a res_b owait``, ``fwd_ofs`` and ``o_base`` set in ``fs``."""
        core = self.core
        bus, rows = core.bus_bytes, core.rows
        # a program with feature-map bands keeps every load (the batch model's band path,
        # core_batch.tiled_layers, does not allocate residency)
        banded = any("@" in lay.name for lay, _ in self.layers)
        writers: dict[str, int] = {}
        for lay, _ in self.layers:
            writers[lay.output] = writers.get(lay.output, 0) + 1
        descs = []
        for (lay, _), f in zip(self.layers, fs, strict=True):
            src, src2, _ = self.inputs[lay.name]
            srcs = (self.root(src),) + ((self.root(src2),) if src2 else ())
            addrs = (f["in_addr"],) + ((f["in2_addr"],) if src2 else ())
            size = {t: int(np.prod(tensors[t][1])) for t in (*srcs, lay.output)}
            whole = tuple(
                f.get("in_runs", 0) <= 1 and a == tensors[t][0] and f["in_len"] == size[t]
                for t, a in zip(srcs, addrs, strict=True)
            )
            span = f["in_len"] + max(0, f.get("in_runs", 0) - 1) * f.get("in_bstride", 0)
            out_whole = (
                writers[lay.output] == 1 and lay.output not in self.inside
                and lay.output not in self.pads and f["out_addr"] == tensors[lay.output][0]
            )  # fmt: skip
            aligned = f["out_addr"] % rows == 0 and (
                lay.mode == "vector" or (f.get("out_run", 0) == 0 and f["o_pitch"] % rows == 0)
            )
            descs.append(Desc(
                srcs=srcs, whole=whole, offs=tuple(a % bus for a in addrs),
                loads=(f["in_addr"] % bus + span,) + ((f["in2_addr"] % bus + f["in_len"],)
                                                       if src2 else ()),
                out=lay.output, out_off=f["out_addr"] % bus, out_bytes=size[lay.output],
                fwd_ok=bus % rows == 0 and out_whole and aligned and not banded,
                in_place=lay.kind == "add",
            ))  # fmt: skip
        place = allocate(descs, core.if_depth, bus)
        res_a = [p.res[0] for p in place]
        bases, waits = ofmap_bases(
            [_ofmap_need(f, lay.mode, core) for (lay, _), f in zip(self.layers, fs, strict=True)],
            [lay.mode != "vector" for lay, _ in self.layers], res_a, core.o_depth,
            2 * core.o_wb, any(d.fwd_ok for d in descs),
        )  # fmt: skip
        for f, p, b, w in zip(fs, place, bases, waits, strict=True):
            f["op"] |= op_word(
                0, fwd=p.fwd >= 0, res_a=p.res[0], res_b=len(p.res) > 1 and p.res[1], owait=w
            )
            f["fwd_ofs"] = max(p.fwd, 0)
            f["o_base"] = b
        return place

    def layout(self) -> Program:
        bus = self.core.bus_bytes
        align = max(ALIGN, bus)

        def _align(n: int) -> int:
            return -(-n // align) * align

        n_desc = len(self.layers) + 1
        addr = _align(n_desc * DESC_BYTES)
        blobs: list[tuple[int, bytes]] = []
        blob_addr: list[int] = []
        for _, blob in self.layers:
            blob_addr.append(addr)
            if blob:
                blobs.append((addr, blob))
                addr = _align(addr + len(blob))
        tensors: dict[str, tuple[int, tuple[int, ...]]] = {}
        names = [self.m.input_name, *(lay.output for lay, _ in self.layers), *self.pads]
        for name in names:
            if name in self.inside:
                continue  # placed inside its padded tensor below
            shape = self.shapes[name]
            tensors[name] = (addr, shape)
            addr = _align(addr + int(np.prod(shape)))

        def place(name: str) -> int:
            if name not in tensors:
                parent, off = self.inside[name]
                tensors[name] = (place(parent) + off, self.shapes[name])
            return tensors[name][0]

        for name in names:
            place(name)
        image = bytearray(addr)
        final: list[CompiledLayer] = []
        fs: list[dict[str, int]] = []
        for lay, _ in self.layers:
            src, src2, _ = self.inputs[lay.name]
            in_off, out_off, _, _, _ = self.place[lay.name]
            f = dict(lay.fields)
            f["in_addr"] = tensors[self.root(src)][0] + in_off
            f["in2_addr"] = tensors[self.root(src2)][0] + in_off if src2 else 0
            f["out_addr"] = tensors[lay.output][0] + out_off
            if lay.mode != "vector":
                _, _, w_off, p_off, owner = self.place[lay.name]
                f["p_addr"] = blob_addr[owner] + p_off
                f["w_addr"] = blob_addr[owner] + self.inputs[lay.name][2] + w_off
            fs.append(f)
        self.prefetch(fs)
        self.cross_prefetch(fs)
        placed = self.residency(fs, tensors)
        for i, (lay, _) in enumerate(self.layers):
            src, src2, _ = self.inputs[lay.name]
            f = fs[i]
            at = placed[i].at
            # the DMA puts DRAM byte a at ifmap byte at + a - (the load's first address rounded
            # down to a bus word); a resident input is where its producer forwarded it, the same
            off1 = f["in_addr"] % bus
            f["base0"] = f.get("base0", 0) + at[0] + off1
            f["in_ifofs"] = at[0]
            span = f["in_len"] + max(0, f.get("in_runs", 0) - 1) * f.get("in_bstride", 0)
            need = at[0] + off1 + span
            if src2:
                f["in2_ofs"] = at[1]
                off2 = f["in2_addr"] % bus
                f["wstep"] = at[1] + off2 - at[0] - off1
                need = max(need, at[1] + off2 + f["in_len"])
            if i == 0 and lay.mode != "vector":
                self.watermark(lay.kind, f)
            if need > self.core.if_depth:  # the planner checked the offsets: not reached
                self.buffer(lay.name, "ifmap", f"its input{'s' if src2 else ''} from the bus "
                            "word of its DRAM address on", need)  # fmt: skip
            if lay.mode == "vector" and f["out_addr"] % bus + f["c_pq"] > self.core.o_depth:
                self.buffer(lay.name, "ofmap", "its output from the bus word of its DRAM "
                            "address on", f["out_addr"] % bus + f["c_pq"])  # fmt: skip
            desc = encode_descriptor(f)
            image[i * DESC_BYTES : (i + 1) * DESC_BYTES] = desc
            final.append(CompiledLayer(lay.name, lay.kind, lay.mode, lay.output, f))
        if self.problems:
            raise CompileError("the core cannot run this model:\n  " + "\n  ".join(self.problems)
                               + self.summary())  # fmt: skip
        end = encode_descriptor({"op": op_word(OP_END)})
        image[len(final) * DESC_BYTES : (len(final) + 1) * DESC_BYTES] = end
        for a, blob in blobs:
            image[a : a + len(blob)] = blob
        out = self.root(self.m.output)
        return Program(
            layers=tuple(final),
            dram=bytes(image),
            program_addr=0,
            input_name=self.m.input_name,
            input_addr=tensors[self.m.input_name][0],
            tensors={k: v for k, v in tensors.items()},
            output=out,
        )


def apply_cross_prefetch(
    cf: list[dict[str, int]],
    *,
    rows: int,
    cols: int,
    bus: int,
    p_tile: int,
    w_row: int,
    w_depth: int,
) -> None:
    """Cross-layer weight prefetch (op bits 13-15, ``tiling.cross_prefetch``) on the fields of
    a program's compute descriptors ``cf`` in order (their addresses and passes set): a
    layer's first pass loads during the last pass of the compute layer before it where that
    hides it and the slots fit; the earlier descriptor gets the load (``program.X_FIELDS``),
    the later one bits 14 (prefetched) and 15 (start slot) and its slot bases."""
    from autochip.predictor.core_model import (
        READ_ISSUE,
        dma_cycles,
        flush_compute_cycles,
        tile_cycles,
    )

    if len(cf) < 2:
        return
    nt = [f["ntiles"] for f in cf]
    tp = [max(f["tpp"], 1) for f in cf]
    n0 = [min(a, b) for a, b in zip(tp, nt, strict=True)]
    first = [2 * READ_ISSUE + dma_cycles(f["w_addr"], n * f["tile_w"], False, bus)
             + dma_cycles(f["p_addr"], n * p_tile, False, bus)
             for f, n in zip(cf, n0, strict=True)]  # fmt: skip
    flush = flush_compute_cycles(rows, cols)
    last = [rows + 1 + f["npt"] * (a - (-(-a // b) - 1) * b) * tile_cycles(rows, cols, f["t"])
            + flush for f, a, b in zip(cf, nt, tp, strict=True)]  # fmt: skip
    xin, s0, w_slot, p_slot = cross_prefetch(
        [nt], [tp], [bool(f["op"] >> 12 & 1) for f in cf], [f["tile_w"] // w_row for f in cf],
        w_depth, [first], [last],
    )  # fmt: skip
    for k, f in enumerate(cf):
        if not xin[0, k]:
            continue
        up = bool(s0[0, k])
        f["op"] |= op_word(0, xin=True, s0=up)
        f["w_slot"], f["p_slot"] = int(w_slot[0, k]), int(p_slot[0, k])
        cf[k - 1]["op"] |= op_word(0, xpf=True)
        cf[k - 1].update(
            x_w_addr=f["w_addr"], x_w_len=n0[k] * f["tile_w"], x_p_addr=f["p_addr"],
            x_p_len=n0[k] * p_tile, x_w_row=f["w_slot"] if up else 0,
            x_p_word=f["p_slot"] if up else 0,
        )  # fmt: skip


def _ofmap_need(f: dict[str, int], mode: str, core: CoreParams) -> int:
    """Ofmap bytes a descriptor writes from ofmap byte 0 on (before its ``o_base``): a vector
    layer's outputs from their DRAM offset within a bus word; a compute layer of one pass its
    channels from theirs, of several passes the bound the passes were planned with."""
    bus = core.bus_bytes
    if mode == "vector":
        return f["out_addr"] % bus + f["c_pq"]
    ntiles, tpp, kt = f["ntiles"], f["tpp"], f["kt"]
    if tpp < ntiles:
        return bus - 1 + tpp * f["c_pq"]
    # one pass: core_main.v's obase, c_pq per tile but a group's last (last_pq)
    groups = ntiles // kt
    return f["out_addr"] % bus + (ntiles - groups) * f["c_pq"] + groups * f["last_pq"]


def merge_groups(w: np.ndarray, groups: int, cols: int, w_depth: int) -> tuple[np.ndarray, int]:
    """Map the output channels of ``m`` consecutive groups onto one tile's columns.

    A grouped (depthwise: one output channel per group) convolution with fewer output channels
    per group than array columns would idle the other columns, since the channels of different
    groups read different inputs. Merging ``m`` groups into one with block-diagonal weights (the
    weights of group ``i`` on input channels ``i * Cg ...``, zeros elsewhere) fills ``m * Kg``
    columns from one reduction of ``m * Cg * KR * KS`` beats. The accumulators are unchanged for
    integer MAC layers (the zeros add nothing), so the outputs stay bit-exact; a tile costs
    ``(m - 1) * Cg * KR * KS`` more beats but replaces ``m`` tiles and their post-processing.
    ``m`` is the largest divisor of ``groups`` with ``m * Kg <= cols`` whose reduction fits a
    weight bank. Returns the new weights ``[K, m * Cg, KR, KS]`` and the new group count.
    """
    k, cg, kr, ks = w.shape
    kg = k // groups
    m = max(
        d
        for d in range(1, groups + 1)
        if groups % d == 0 and d * kg <= max(cols, kg) and (d == 1 or d * cg * kr * ks <= w_depth)
    )
    if m == 1:
        return w, groups
    out = np.zeros((k, m * cg, kr, ks), dtype=w.dtype)
    for ch in range(k):
        i = (ch // kg) % m  # position of the channel's group inside the merged group
        out[ch, i * cg : (i + 1) * cg] = w[ch]
    return out, groups // m


def compile_model(model: IntegerModel, core: CoreParams) -> Program:
    """Compile ``model`` for ``core``; deterministic; :class:`CompileError` lists every refusal."""
    if model.input_shape[0] != 1 and len(model.input_shape) < 2:
        raise CompileError(f"expected a batched input shape, found {model.input_shape}")
    comp = _Compiler(model, core)
    bits = comp.act_bits(model.input_name)
    if not -(2 ** (bits - 1)) <= model.input_lo <= model.input_hi < 2 ** (bits - 1):
        raise CompileError(
            f"the model input range [{model.input_lo}, {model.input_hi}] does not fit "
            f"{bits}-bit activations"
        )
    return comp.compile()

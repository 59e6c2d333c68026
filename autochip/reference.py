"""The integer reference executor: the one definition of autochip's integer semantics.

Pure numpy, integer semantics only (int64 tensors; no rounding after the input quantisation: the
sums of products run as float32/float64 matrix products only where every intermediate is an
integer the format represents exactly, see :func:`_dot`).
The compression export (:mod:`autochip.compress.export`) writes an :class:`IntegerModel`; the RTL
testbenches compare the generated hardware against :func:`run` with ``dump=True``.

Semantics (DESIGN.md, "Integer semantics"):

* Tensors are integers with zero-point 0. The model input is quantised once:
  ``x_int = clamp(floor(x / input_scale + 1/2), input_lo, input_hi)`` in float32.
* ``mac`` layer: ``acc = sum a*w + bias``. ``adder`` layer (a and w share one scale):
  ``acc = -sum |a - w| + bias``. ``xnor`` layer: a and w are ±1 (bit 1 encodes +1, bit = v > 0);
  ``acc = n - 2 * popcount(a_bits xor w_bits)`` with ``n`` the window size; zero padding of an
  xnor layer pads with -1 (bit 0); mac/adder layers pad with 0.
* Accumulators are signed 32-bit; a value outside the range is an error (widths never wrap).
* Requantisation per output channel k: ``out = clamp((acc * M_k + 2^(s_k - 1)) >> s_k, lo, hi)``,
  arithmetic shift (round half up), ``s_k >= 1``; a fused ReLU sets ``lo = 0``.
* Binary output per channel k: ``bit = (acc >= T_k) xor flip_k``, stored as ±1; batch-norm and
  sign are folded into ``T_k`` / ``flip_k``.
* Max pooling: the maximum of the window; padding never wins (pads with the smallest integer).
* Average pooling is a window **sum** (:class:`SumPoolOp`) followed by a :class:`RescaleOp` whose
  multiplier folds the ``1/n``: ``out = clamp((sum * M + 2^(s-1)) >> s, lo, hi)``, i.e. the mean
  rounded half up, rescaled to the output step.
* Residual add: :class:`RescaleOp` with two inputs, ``out = clamp((a * M_a + b * M_b +
  2^(s-1)) >> s, lo, hi)``: both operands aligned to the output step in one rounding.
* Flatten: row-major reshape to ``(N, -1)``; strided subsampling ``x[:, :, ::s, ::s]`` and zero
  padding (ResNet option-A shortcuts) are layout operations on integer tensors, and so is
  channel concatenation (:class:`ConcatOp`, SqueezeNet): its inputs share one step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from autochip._safeio import atomic_path
from autochip.errors import CompressionError, problem_text

__all__ = [
    "ACC_MAX",
    "ACC_MIN",
    "ComputeOp",
    "ConcatOp",
    "FlattenOp",
    "IntegerModel",
    "MaxPoolOp",
    "Op",
    "PadOp",
    "Requant",
    "RescaleOp",
    "SubsampleOp",
    "SumPoolOp",
    "Threshold",
    "load_integer_model",
    "quantize_input",
    "requantize",
    "run",
    "save_integer_model",
]

IntArray = NDArray[np.int64]
ACC_MIN, ACC_MAX = -(2**31), 2**31 - 1
_INT_MIN = np.iinfo(np.int64).min // 4


@dataclass(frozen=True)
class Requant:
    """Per-output-channel requantisation ``clamp((acc * M + 2^(s-1)) >> s, lo, hi)``."""

    multiplier: IntArray
    shift: IntArray
    lo: int
    hi: int


@dataclass(frozen=True)
class Threshold:
    """Per-output-channel binarisation ``bit = (acc >= threshold) xor flip`` (as ±1)."""

    threshold: IntArray
    flip: IntArray  # 0 / 1


@dataclass(frozen=True)
class ComputeOp:
    """A conv2d or linear layer of kind ``mac``, ``adder`` or ``xnor`` with its epilogue.

    ``weight`` is [K, C/groups, R, S] (conv) or [K, C] (linear), integers (±1 for xnor).
    Exactly one of ``requant`` / ``threshold`` is set.
    """

    name: str
    input: str
    output: str
    kind: str
    layer: str
    weight: IntArray
    bias: IntArray
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    requant: Requant | None = None
    threshold: Threshold | None = None


@dataclass(frozen=True)
class MaxPoolOp:
    """Max pooling; ``ceil_mode`` (PyTorch's) adds the windows that run past the bottom/right
    edge (a window must start inside the padded input): their outside elements never win."""

    name: str
    input: str
    output: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    ceil_mode: bool = False


@dataclass(frozen=True)
class SumPoolOp:
    """Window sum (the numerator of an average pooling), no padding."""

    name: str
    input: str
    output: str
    kernel: tuple[int, int]
    stride: tuple[int, int]


@dataclass(frozen=True)
class RescaleOp:
    """``clamp((sum_i x_i * M_i + 2^(s-1)) >> s, lo, hi)`` over same-shaped inputs."""

    name: str
    inputs: tuple[str, ...]
    output: str
    multipliers: tuple[int, ...]
    shift: int
    lo: int
    hi: int


@dataclass(frozen=True)
class SubsampleOp:
    """Strided subsampling ``x[:, :, ::s_h, ::s_w]`` (ResNet option-A shortcuts)."""

    name: str
    input: str
    output: str
    stride: tuple[int, int]


@dataclass(frozen=True)
class PadOp:
    """Zero padding ``(c_before, c_after, h_before, h_after, w_before, w_after)``."""

    name: str
    input: str
    output: str
    pads: tuple[int, ...]


@dataclass(frozen=True)
class FlattenOp:
    name: str
    input: str
    output: str


@dataclass(frozen=True)
class ConcatOp:
    """Concatenation of same-step tensors along the channels (axis 1), in ``inputs`` order."""

    name: str
    inputs: tuple[str, ...]
    output: str


Op = ComputeOp | MaxPoolOp | SumPoolOp | RescaleOp | SubsampleOp | PadOp | FlattenOp | ConcatOp
_OP_TYPES: dict[str, type] = {
    t.__name__: t
    for t in (ComputeOp, MaxPoolOp, SumPoolOp, RescaleOp, SubsampleOp, PadOp, FlattenOp, ConcatOp)
}


@dataclass(frozen=True)
class IntegerModel:
    """An exported integer network: input quantisation, ops in execution order, output step."""

    input_name: str
    input_shape: tuple[int, ...]
    input_scale: float
    input_lo: int
    input_hi: int
    ops: tuple[Op, ...]
    output: str
    output_scale: float


# -- the input boundary ---------------------------------------------------------------------------
def quantize_input(model: IntegerModel, x: NDArray[Any]) -> IntArray:
    """``clamp(floor(x / scale + 1/2), lo, hi)`` computed in float32 (as the fake-quant model)."""
    xf = np.asarray(x, dtype=np.float32)
    r = np.floor(xf / np.float32(model.input_scale) + np.float32(0.5))
    out: IntArray = np.clip(r, model.input_lo, model.input_hi).astype(np.int64)
    return out


# -- integer primitives ---------------------------------------------------------------------------
def requantize(acc: IntArray, multiplier: IntArray, shift: IntArray, lo: int, hi: int) -> IntArray:
    """``clamp((acc * M + 2^(s-1)) >> s, lo, hi)`` with M, s broadcast along axis 1."""
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    m = np.asarray(multiplier, dtype=np.int64).reshape(shape)
    s = np.asarray(shift, dtype=np.int64).reshape(shape)
    out = (acc * m + (np.int64(1) << (s - 1))) >> s
    res: IntArray = np.clip(out, lo, hi)
    return res


def _windows(
    x: IntArray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
) -> IntArray:
    """[N, C, H, W] (already padded) -> [N, C, P, Q, R, S] view of the windows."""
    kh, kw = kernel
    dh, dw = dilation
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    v: IntArray = np.lib.stride_tricks.sliding_window_view(  # type: ignore[call-overload]
        x, (eh, ew), axis=(2, 3)
    )
    return v[:, :, :: stride[0], :: stride[1], ::dh, ::dw]


def _pad(x: IntArray, padding: tuple[int, int], value: int) -> IntArray:
    ph, pw = padding
    if not (ph or pw):
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _accumulate(op: ComputeOp, x: IntArray) -> IntArray:
    w = np.asarray(op.weight, dtype=np.int64)
    if op.kind == "xnor" and not np.all(np.abs(x) == 1):
        raise CompressionError(f"op '{op.name}': xnor layer input must be ±1")
    if op.layer == "linear":  # a 1x1 convolution over a 1x1 image
        cols = x.reshape(x.shape[0], 1, -1, 1, 1, 1, 1)
        wk = w.reshape(w.shape[0], -1, 1, 1)
        groups = 1
    else:
        pad_value = -1 if op.kind == "xnor" else 0
        xp = _pad(x, op.padding, pad_value)
        ksize = (w.shape[2], w.shape[3])
        win = _windows(xp, ksize, op.stride, op.dilation)  # N, C, P, Q, R, S
        n, c, p, q = win.shape[:4]
        groups = op.groups
        cols = win.reshape(n, groups, c // groups, p, q, ksize[0], ksize[1])
        wk = w
    kout = wk.shape[0]
    kg = kout // groups
    wg = wk.reshape(groups, kg, *wk.shape[1:])  # G, Kg, Cg, R, S
    n, p, q = cols.shape[0], cols.shape[3], cols.shape[4]
    acc: IntArray = np.empty((n, groups, kg, p, q), dtype=np.int64)
    amax = 1  # bounds |x| for _dot (xnor: ±1, checked above, and its -1 padding)
    if op.kind == "xnor":
        # a and w are ±1 (bit 1 encodes +1, padding -1): n - 2 * popcount(a xor w) = sum a * w
        wg = np.where(wg > 0, 1, -1).astype(np.int64)
    elif op.kind == "mac" and x.size:
        amax = max(-int(x.min()), int(x.max()), 1)
    for g in range(groups):
        xg = cols[:, g]  # N, Cg, P, Q, R, S
        if op.kind in ("mac", "xnor"):
            acc[:, g] = _dot(xg, wg[g], amax)
            continue
        for k in range(kg):
            wkk = wg[g, k][None, :, None, None, :, :]
            acc[:, g, k] = -np.abs(xg - wkk).sum(axis=(1, 4, 5))
    acc = acc.reshape(n, kout, p, q) + np.asarray(op.bias, dtype=np.int64).reshape(1, -1, 1, 1)
    if op.layer == "linear":
        acc = acc.reshape(n, kout)
    if acc.size and (acc.min() < ACC_MIN or acc.max() > ACC_MAX):
        raise CompressionError(
            f"op '{op.name}': accumulator left the signed 32-bit range "
            f"[{int(acc.min())}, {int(acc.max())}]"
        )
    return acc


_F32_EXACT, _F64_EXACT = 2**24, 2**53  # float32 / float64 hold every integer up to these
_DOT_CHUNK = 1 << 22  # window elements per block (16-32 MB)


def _dot(xg: IntArray, w: IntArray, amax: int) -> IntArray:
    """``sum_{c,r,s} x[n, c, p+r, q+s] * w[k, c, r, s]`` over the window view ``xg`` [N, C, P,
    Q, R, S] and ``w`` [K, C, R, S], exactly, as [N, K, P, Q]; ``amax`` bounds ``|x|``.

    The products are summed by a floating-point matrix product (BLAS), in blocks of images:
    exact, because every product and every partial sum is an integer of magnitude at most
    ``B = max|x| * max|w| * C*R*S``, and float32 (when ``B < 2^24``) or float64 (``B < 2^53``)
    represents every such integer, so each addition and multiplication (fused or not, in any
    order) is exact. A larger bound falls back to int64 ``einsum``.
    """
    n, c, p, q, r, s = xg.shape
    k = w.shape[0]
    depth = c * r * s
    if n == 0 or k == 0 or depth == 0:
        return np.zeros((n, k, p, q), dtype=np.int64)
    bound = amax * int(np.abs(w).max()) * depth
    if bound >= _F64_EXACT:
        out: IntArray = np.einsum("ncpqrs,kcrs->nkpq", xg, w, optimize=True)
        return out
    ft: type[np.floating[Any]] = np.float32 if bound < _F32_EXACT else np.float64
    wf: NDArray[np.floating[Any]] = w.reshape(k, depth).T.astype(ft)  # CRS, K
    res: IntArray = np.empty((n, k, p, q), dtype=np.int64)
    step = max(1, _DOT_CHUNK // (depth * p * q))
    for i in range(0, n, step):
        blk = xg[i : i + step]
        m = blk.shape[0]
        a: NDArray[np.floating[Any]] = (
            blk.transpose(0, 2, 3, 1, 4, 5).astype(ft, order="C").reshape(m * p * q, depth)
        )
        res[i : i + m] = np.matmul(a, wf).reshape(m, p, q, k).transpose(0, 3, 1, 2)
    return res


def _compute(op: ComputeOp, x: IntArray) -> tuple[IntArray, IntArray]:
    acc = _accumulate(op, x)
    if op.requant is not None:
        r = op.requant
        return acc, requantize(acc, r.multiplier, r.shift, r.lo, r.hi)
    assert op.threshold is not None
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    t = np.asarray(op.threshold.threshold, dtype=np.int64).reshape(shape)
    f = np.asarray(op.threshold.flip, dtype=bool).reshape(shape)
    bit = (acc >= t) ^ f
    return acc, np.where(bit, 1, -1).astype(np.int64)


def _ceil_extra(size: int, k: int, s: int, p: int) -> int:
    """Rows (or columns) ``ceil_mode`` adds past the padded input's end."""
    out = -(-(size + 2 * p - k) // s) + 1
    if (out - 1) * s >= size + p:  # the last window would start in the padding
        out -= 1
    return max(0, (out - 1) * s + k - (size + 2 * p))


def _maxpool(op: MaxPoolOp, x: IntArray) -> IntArray:
    xp = _pad(x, op.padding, _INT_MIN)
    if op.ceil_mode:
        eh = _ceil_extra(x.shape[2], op.kernel[0], op.stride[0], op.padding[0])
        ew = _ceil_extra(x.shape[3], op.kernel[1], op.stride[1], op.padding[1])
        xp = np.pad(xp, ((0, 0), (0, 0), (0, eh), (0, ew)), constant_values=_INT_MIN)
    win = _windows(xp, op.kernel, op.stride, (1, 1))
    out: IntArray = win.max(axis=(4, 5))
    return out


def _sumpool(op: SumPoolOp, x: IntArray) -> IntArray:
    win = _windows(x, op.kernel, op.stride, (1, 1))
    out: IntArray = win.sum(axis=(4, 5), dtype=np.int64)
    return out


def _rescale(op: RescaleOp, xs: list[IntArray]) -> IntArray:
    total = np.zeros_like(xs[0])
    for x, m in zip(xs, op.multipliers, strict=True):
        total = total + x * np.int64(m)
    out = (total + (np.int64(1) << np.int64(op.shift - 1))) >> np.int64(op.shift)
    return np.clip(out, op.lo, op.hi)


def run(
    model: IntegerModel, x_int: NDArray[Any], dump: bool = False
) -> tuple[IntArray, dict[str, IntArray]]:
    """Run the integer model on an already quantised input (see :func:`quantize_input`).

    Returns the output tensor and, with ``dump=True``, every intermediate tensor by name
    (the input, each op's output, and ``<op>.acc`` for compute ops); otherwise an empty dict.
    """
    x = np.asarray(x_int)
    if not np.issubdtype(x.dtype, np.integer):
        raise CompressionError(
            f"run: expected an integer input tensor (use quantize_input), found dtype {x.dtype}"
        )
    if tuple(x.shape[1:]) != tuple(model.input_shape[1:]):
        raise CompressionError(
            f"run: expected input shape (N, {', '.join(map(str, model.input_shape[1:]))}), "
            f"found {tuple(x.shape)}"
        )
    env: dict[str, IntArray] = {model.input_name: x.astype(np.int64)}
    dumped: dict[str, IntArray] = {}
    if dump:
        dumped[model.input_name] = env[model.input_name]
    for op in model.ops:
        if isinstance(op, ComputeOp):
            acc, out = _compute(op, env[op.input])
            if dump:
                dumped[f"{op.name}.acc"] = acc
        elif isinstance(op, MaxPoolOp):
            out = _maxpool(op, env[op.input])
        elif isinstance(op, SumPoolOp):
            out = _sumpool(op, env[op.input])
        elif isinstance(op, RescaleOp):
            out = _rescale(op, [env[i] for i in op.inputs])
        elif isinstance(op, SubsampleOp):
            out = env[op.input][:, :, :: op.stride[0], :: op.stride[1]]
        elif isinstance(op, PadOp):
            c0, c1, h0, h1, w0, w1 = op.pads
            out = np.pad(env[op.input], ((0, 0), (c0, c1), (h0, h1), (w0, w1)))
        elif isinstance(op, ConcatOp):
            out = np.concatenate([env[i] for i in op.inputs], axis=1)
        else:
            src = env[op.input]
            out = src.reshape(src.shape[0], -1)
        env[op.output] = out
        if dump:
            dumped[op.output] = out
    return env[model.output], dumped


# -- serialisation --------------------------------------------------------------------------------
def _flatten(prefix: str, obj: Any, arrays: dict[str, NDArray[Any]]) -> Any:
    if isinstance(obj, np.ndarray):
        arrays[prefix] = obj
        return {"__array__": prefix}
    if is_dataclass(obj) and not isinstance(obj, type):
        return {
            "__type__": type(obj).__name__,
            **{
                f.name: _flatten(f"{prefix}.{f.name}", getattr(obj, f.name), arrays)
                for f in fields(obj)
            },
        }
    if isinstance(obj, tuple | list):
        return [_flatten(f"{prefix}.{i}", v, arrays) for i, v in enumerate(obj)]
    return obj


_TUPLE_FIELDS = {
    "stride",
    "padding",
    "dilation",
    "kernel",
    "inputs",
    "multipliers",
    "input_shape",
    "ops",
    "pads",
}


class _HeaderError(ValueError):
    pass


def _unflatten(obj: Any, arrays: Any, where: str = "header") -> Any:
    """Rebuild the dataclasses of a header; anything unexpected is a :class:`_HeaderError`."""
    if isinstance(obj, dict) and "__array__" in obj:
        key = obj["__array__"]
        if len(obj) != 1 or not isinstance(key, str) or key not in arrays:
            raise _HeaderError(f"{where}: expected a stored array name, found {key!r}"[:200])
        return np.asarray(arrays[key])
    if isinstance(obj, dict) and "__type__" in obj:
        types = {**_OP_TYPES, "Requant": Requant, "Threshold": Threshold}
        types["IntegerModel"] = IntegerModel
        name = obj["__type__"]
        if not isinstance(name, str) or name not in types:
            raise _HeaderError(f"{where}: expected one of {sorted(types)}, found {name!r}"[:200])
        cls = types[name]
        names = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in obj if k != "__type__" and k not in names)
        if unknown:
            raise _HeaderError(f"{where}: {name} has no field(s) {unknown}"[:200])
        kwargs = {}
        for k, v in obj.items():
            if k == "__type__":
                continue
            val = _unflatten(v, arrays, f"{where}.{k}")
            if k in _TUPLE_FIELDS:
                if not isinstance(val, list):
                    raise _HeaderError(f"{where}.{k}: expected a list, found {val!r}"[:200])
                val = tuple(val)
            kwargs[k] = val
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise _HeaderError(f"{where}: {name}: {exc}") from None
    if isinstance(obj, dict):
        raise _HeaderError(
            f"{where}: expected an array, a typed object or a value, found {obj!r}"[:200]
        )
    if isinstance(obj, list):
        return [_unflatten(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    return obj


def _no_constant(name: str) -> Any:
    raise _HeaderError(f"header: expected finite numbers, found {name}")


def save_integer_model(model: IntegerModel, path: str | Path) -> None:
    """Write ``model`` to an ``.npz``: arrays by name plus a JSON header (no pickles), atomically
    (a temporary file renamed into place: never half-written)."""
    arrays: dict[str, NDArray[Any]] = {}
    header = _flatten("m", model, arrays)
    meta = np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8)
    target = Path(path) if str(path).endswith(".npz") else Path(f"{path}.npz")
    with atomic_path(target) as tmp:
        np.savez(tmp, __header__=meta, **arrays)  # type: ignore[arg-type]


def load_integer_model(path: str | Path) -> IntegerModel:
    """Read an ``.npz`` written by :func:`save_integer_model`, validated before use.

    The archive is checked first (no pickles, bounded array sizes that match the stored bytes:
    :func:`autochip._npz.check_archive`), then loaded with ``allow_pickle=False``, then the
    model is checked as a whole (names, shapes, strides, ranges: :func:`autochip._npz.check_model`).
    """
    from autochip._npz import MAX_HEADER_BYTES, check_archive, check_model

    p = Path(path)
    if not p.is_file():
        raise CompressionError(f"expected an integer model .npz file, found no file at '{p}'")
    problems = check_archive(p)
    if problems:
        raise CompressionError(f"'{p}' is not an autochip integer model: {problems[0]}")
    try:
        with np.load(p, allow_pickle=False) as data:
            if "__header__" not in data.files:
                raise _HeaderError("expected a __header__ array, found none")
            raw = data["__header__"]
            if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > MAX_HEADER_BYTES:
                raise _HeaderError(
                    f"__header__: expected at most {MAX_HEADER_BYTES} bytes of JSON "
                    f"(MAX_HEADER_BYTES), found dtype {raw.dtype} shape {raw.shape}"
                )
            header = json.loads(bytes(raw).decode(), parse_constant=_no_constant)
            arrays = {k: data[k] for k in data.files}
        model = _unflatten(header, arrays)
    except (OSError, ValueError, KeyError, RecursionError, EOFError) as exc:
        text = str(exc).strip().splitlines()
        raise CompressionError(
            f"'{p}' is not an autochip integer model: {text[0][:300] if text else exc}"
        ) from None
    if not isinstance(model, IntegerModel):
        raise CompressionError(f"'{p}' is not an autochip integer model")
    problems = check_model(model)
    if problems:
        raise CompressionError(problem_text(f"'{p}'", problems, "integer model:"))
    return model

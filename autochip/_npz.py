"""Checks of an integer-model ``.npz`` before anything is allocated or generated from it.

:func:`check_archive` reads only the zip directory and each array's ``.npy`` header: object
dtypes (pickles) are refused, every array's size is bounded and must match the bytes stored (a
tampered header cannot make numpy allocate gigabytes). :func:`check_model` then walks the
decoded :class:`~autochip.reference.IntegerModel` and propagates shapes through its ops:
names, kinds, shapes, strides, paddings, groups and value ranges are checked against the limits
below, and every problem is reported (up to :data:`MAX_PROBLEMS`) in one error.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from autochip._safeio import name_problem

__all__ = [
    "MAX_ARRAYS",
    "MAX_ARRAY_ELEMS",
    "MAX_HEADER_BYTES",
    "MAX_MACS",
    "MAX_NPZ_BYTES",
    "MAX_OPS",
    "MAX_PAD",
    "MAX_TENSOR_ELEMS",
    "MAX_WINDOW",
    "check_archive",
    "check_model",
    "npy_problem",
]

MAX_NPZ_BYTES = 1 << 30  # the whole file
MAX_ARRAYS = 10_000
MAX_ARRAY_ELEMS = 1 << 26  # elements of one stored array
MAX_HEADER_BYTES = 1 << 24  # the JSON header
MAX_OPS = 4096
MAX_TENSOR_ELEMS = 1 << 24  # elements of one tensor of one image (C x H x W)
MAX_WINDOW = 256  # kernel, stride, dilation, padding
MAX_PAD = 4096  # zero padding of a PadOp (channels included)
MAX_MACS = 1 << 34  # multiply-accumulates of one image through the whole model
MAX_PROBLEMS = 20
_I32 = (-(2**31), 2**31 - 1)


def check_archive(path: Path) -> list[str]:
    """Problems of the archive itself (empty: its arrays can be loaded safely)."""
    size = path.stat().st_size
    if size > MAX_NPZ_BYTES:
        return [f"expected at most {MAX_NPZ_BYTES} bytes (MAX_NPZ_BYTES), found {size}"]
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if len(infos) > MAX_ARRAYS:
                return [f"expected at most {MAX_ARRAYS} arrays (MAX_ARRAYS), found {len(infos)}"]
            problems: list[str] = []
            for info in infos:
                with z.open(info) as f:
                    why = _member_problem(info, f)
                if why:
                    problems.append(f"array '{info.filename}': {why}")
            return problems
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as exc:
        return [f"expected an .npz (zip) archive, found: {exc}"]


def _member_problem(info: zipfile.ZipInfo, f: Any, kinds: str = "biu") -> str | None:
    if not info.filename.endswith(".npy"):
        return "expected a .npy member"
    try:
        version = np.lib.format.read_magic(f)  # type: ignore[no-untyped-call]
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)  # type: ignore[no-untyped-call]
        elif version == (2, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)  # type: ignore[no-untyped-call]
        else:
            return f"expected .npy format 1.0 or 2.0, found {version}"
    except (ValueError, SyntaxError, TypeError, EOFError, OSError) as exc:
        return f"unreadable .npy header ({exc})"
    if dtype.hasobject or dtype.kind not in kinds:
        wanted = "a numeric" if "f" in kinds else "an integer or boolean"
        return f"expected {wanted} array, found dtype {dtype}"
    count = math.prod(shape)
    if count > MAX_ARRAY_ELEMS:
        return f"expected at most {MAX_ARRAY_ELEMS} elements (MAX_ARRAY_ELEMS), found {count}"
    stored = info.file_size - f.tell()
    if stored != count * dtype.itemsize:
        return f"its header announces {count * dtype.itemsize} bytes, the file holds {stored}"
    return None


def npy_problem(path: Path) -> str | None:
    """Why a standalone ``.npy`` file may not be loaded (its header checked first), or None."""
    size = path.stat().st_size
    if size > MAX_NPZ_BYTES:
        return f"expected at most {MAX_NPZ_BYTES} bytes (MAX_NPZ_BYTES), found {size}"
    info = zipfile.ZipInfo(path.name + ".npy")
    info.file_size = size
    with path.open("rb") as f:
        return _member_problem(info, f, kinds="biuf")


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.macs = 0

    def err(self, where: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{where}: {message}")

    def name(self, value: Any, where: str) -> bool:
        why = name_problem(value)
        if why:
            self.err(where, why)
        return why is None

    def int_in(self, value: Any, lo: int, hi: int, where: str, limit: str = "") -> bool:
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            self.err(where, f"expected an integer, found {type(value).__name__}")
            return False
        if not lo <= int(value) <= hi:
            named = f" ({limit})" if limit else ""
            self.err(where, f"expected an integer in [{lo}, {hi}]{named}, found {int(value)}")
            return False
        return True

    def ints(self, values: Any, n: int, lo: int, hi: int, where: str, limit: str = "") -> bool:
        if not isinstance(values, tuple) or len(values) != n:
            self.err(where, f"expected {n} integers, found {values!r}"[:200])
            return False
        return all(self.int_in(v, lo, hi, f"{where}[{i}]", limit) for i, v in enumerate(values))

    def array(
        self, a: Any, shape: tuple[int, ...] | None, lo: int, hi: int, where: str
    ) -> np.ndarray | None:
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "biu":
            self.err(where, f"expected an integer array, found {type(a).__name__}")
            return None
        if shape is not None and a.shape != shape:
            self.err(where, f"expected shape {shape}, found {a.shape}")
            return None
        if a.size and (int(a.min()) < lo or int(a.max()) > hi):
            self.err(where, f"expected values in [{lo}, {hi}], found [{a.min()}, {a.max()}]")
            return None
        return a

    def positive(self, value: Any, where: str) -> None:
        if not isinstance(value, float | int) or isinstance(value, bool):
            self.err(where, f"expected a number, found {type(value).__name__}")
        elif not (math.isfinite(value) and value > 0):
            self.err(where, f"expected a finite number > 0, found {value!r}")


def _elems(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def check_model(model: Any) -> list[str]:
    """Problems of a decoded integer model (empty: it can be run, compiled and built)."""
    from autochip import reference as r

    c = _Checker()
    if not c.name(model.input_name, "input_name") or not c.name(model.output, "output"):
        return c.problems
    shape = model.input_shape
    if (
        not isinstance(shape, tuple)
        or not 2 <= len(shape) <= 4
        or not all(isinstance(d, int) and 1 <= d <= MAX_TENSOR_ELEMS for d in shape)
    ):
        return [f"input_shape: expected (N, C[, H, W]) of positive integers, found {shape!r}"]
    if _elems(shape[1:]) > MAX_TENSOR_ELEMS:
        c.err("input_shape", f"expected at most {MAX_TENSOR_ELEMS} elements per image "
              f"(MAX_TENSOR_ELEMS), found {_elems(shape[1:])}")  # fmt: skip
    c.positive(model.input_scale, "input_scale")
    c.positive(model.output_scale, "output_scale")
    lo_ok = c.int_in(model.input_lo, *_I32, "input_lo")
    if lo_ok and c.int_in(model.input_hi, *_I32, "input_hi") and model.input_lo > model.input_hi:
        c.err("input_lo", f"expected <= input_hi, found {model.input_lo} > {model.input_hi}")
    if not isinstance(model.ops, tuple) or not 1 <= len(model.ops) <= MAX_OPS:
        n = len(model.ops) if isinstance(model.ops, tuple) else model.ops
        return [*c.problems, f"ops: expected 1 to {MAX_OPS} ops (MAX_OPS), found {n}"]
    shapes: dict[str, tuple[int, ...]] = {model.input_name: tuple(shape[1:])}
    for i, op in enumerate(model.ops):
        where = f"ops[{i}]"
        if not isinstance(op, r.ComputeOp | r.MaxPoolOp | r.SumPoolOp | r.RescaleOp |
                          r.SubsampleOp | r.PadOp | r.FlattenOp | r.ConcatOp):  # fmt: skip
            c.err(where, f"expected an op, found {type(op).__name__}")
            return c.problems
        if not c.name(op.name, f"{where}.name") or not c.name(op.output, f"{where}.output"):
            return c.problems
        where = f"op '{op.name}'"
        srcs = op.inputs if isinstance(op, r.RescaleOp | r.ConcatOp) else (op.input,)
        if not isinstance(srcs, tuple) or not srcs:
            c.err(where, "expected at least one input")
            return c.problems
        ins = []
        for s in srcs:
            if not isinstance(s, str) or s not in shapes:
                c.err(where, f"input {s!r} is not the model input or an earlier op's output")
                return c.problems
            ins.append(shapes[s])
        if op.output in shapes:
            c.err(where, f"output '{op.output}' is written twice")
            return c.problems
        out = _op_shape(c, r, op, ins, where)
        if out is None:
            return c.problems
        if _elems(out) > MAX_TENSOR_ELEMS or any(d < 1 for d in out):
            c.err(where, f"expected an output of 1 to {MAX_TENSOR_ELEMS} elements "
                  f"(MAX_TENSOR_ELEMS), found shape {out}")  # fmt: skip
            return c.problems
        shapes[op.output] = out
    if model.output not in shapes:
        c.err("output", f"expected the name of an op's output, found {model.output!r}")
    if c.macs > MAX_MACS:
        c.err("ops", f"expected at most {MAX_MACS} MACs per image (MAX_MACS), found {c.macs}")
    return c.problems


def _window_out(c: _Checker, size: int, k: int, s: int, p: int, d: int, where: str) -> int | None:
    span = d * (k - 1) + 1
    if size + 2 * p < span:
        c.err(where, f"the window ({span}) is larger than the padded input ({size + 2 * p})")
        return None
    return (size + 2 * p - span) // s + 1


def _op_shape(
    c: _Checker, r: Any, op: Any, ins: list[tuple[int, ...]], where: str
) -> tuple[int, ...] | None:
    x = ins[0]
    w = MAX_WINDOW
    if isinstance(op, r.FlattenOp):
        return (_elems(x),)
    if isinstance(op, r.RescaleOp):
        ok = c.ints(op.multipliers, len(ins), *_I32, f"{where}.multipliers")
        ok &= c.int_in(op.shift, 1, 62, f"{where}.shift")
        ok &= c.int_in(op.lo, *_I32, f"{where}.lo") and c.int_in(
            op.hi, op.lo, _I32[1], f"{where}.hi"
        )
        if any(s != x for s in ins):
            c.err(where, f"expected inputs of one shape, found {ins}")
            return None
        return x if ok else None
    if isinstance(op, r.ConcatOp):  # channels (axis 1) of C x H x W tensors of one H x W
        if any(len(s) != 3 or s[1:] != x[1:] for s in ins):
            c.err(where, f"expected C x H x W inputs of one height and width, found {ins}")
            return None
        return (sum(s[0] for s in ins), x[1], x[2])
    if len(x) != 3 and not (isinstance(op, r.ComputeOp) and op.layer == "linear"):
        c.err(where, f"expected a C x H x W input, found shape {x}")
        return None
    if isinstance(op, r.SubsampleOp):
        if not c.ints(op.stride, 2, 1, w, f"{where}.stride", "MAX_WINDOW"):
            return None
        return (x[0], -(-x[1] // op.stride[0]), -(-x[2] // op.stride[1]))
    if isinstance(op, r.PadOp):
        if not c.ints(op.pads, 6, 0, MAX_PAD, f"{where}.pads", "MAX_PAD"):
            return None
        p = op.pads
        return (x[0] + p[0] + p[1], x[1] + p[2] + p[3], x[2] + p[4] + p[5])
    if isinstance(op, r.MaxPoolOp | r.SumPoolOp):
        ok = c.ints(op.kernel, 2, 1, w, f"{where}.kernel", "MAX_WINDOW")
        ok &= c.ints(op.stride, 2, 1, w, f"{where}.stride", "MAX_WINDOW")
        pad = op.padding if isinstance(op, r.MaxPoolOp) else (0, 0)
        ok &= c.ints(pad, 2, 0, w, f"{where}.padding", "MAX_WINDOW")
        if not ok:
            return None
        ceil = isinstance(op, r.MaxPoolOp) and bool(op.ceil_mode)
        eh = r._ceil_extra(x[1], op.kernel[0], op.stride[0], pad[0]) if ceil else 0
        ew = r._ceil_extra(x[2], op.kernel[1], op.stride[1], pad[1]) if ceil else 0
        # ceil_mode: the reference pads eh / ew more rows / columns at the bottom / right
        ph = _window_out(c, x[1] + eh, op.kernel[0], op.stride[0], pad[0], 1, where)
        pw = _window_out(c, x[2] + ew, op.kernel[1], op.stride[1], pad[1], 1, where)
        return None if ph is None or pw is None else (x[0], ph, pw)
    return _compute_shape(c, op, x, where)


def _compute_shape(c: _Checker, op: Any, x: tuple[int, ...], where: str) -> tuple[int, ...] | None:
    if op.kind not in ("mac", "adder", "xnor") or op.layer not in ("conv", "linear"):
        c.err(where, f"expected kind mac/adder/xnor and layer conv/linear, found "
              f"{op.kind!r}/{op.layer!r}")  # fmt: skip
        return None
    lim = (-1, 1) if op.kind == "xnor" else (-(2**15), 2**15 - 1)
    weight = c.array(op.weight, None, *lim, f"{where}.weight")
    if weight is None:
        return None
    if op.layer == "linear":
        if weight.ndim != 2 or weight.shape[1] != _elems(x):
            c.err(
                where, f"expected a weight [K, {_elems(x)}] for a {x} input, found {weight.shape}"
            )
            return None
        k = weight.shape[0]
        out: tuple[int, ...] = (k,)
        c.macs += weight.size
    else:
        ok = c.ints(op.stride, 2, 1, MAX_WINDOW, f"{where}.stride", "MAX_WINDOW")
        ok &= c.ints(op.padding, 2, 0, MAX_WINDOW, f"{where}.padding", "MAX_WINDOW")
        ok &= c.ints(op.dilation, 2, 1, MAX_WINDOW, f"{where}.dilation", "MAX_WINDOW")
        ok &= c.int_in(op.groups, 1, x[0], f"{where}.groups")
        if not ok:
            return None
        if weight.ndim != 4 or x[0] % op.groups or weight.shape[0] % op.groups:
            c.err(where, f"expected a weight [K, C/groups, R, S] with C={x[0]} and K divisible "
                  f"by groups={op.groups}, found {weight.shape}")  # fmt: skip
            return None
        if weight.shape[1] != x[0] // op.groups or max(weight.shape[2:]) > MAX_WINDOW:
            c.err(where, f"expected a weight [K, {x[0] // op.groups}, R <= {MAX_WINDOW}, "
                  f"S <= {MAX_WINDOW}], found {weight.shape}")  # fmt: skip
            return None
        k = weight.shape[0]
        ph = _window_out(c, x[1], weight.shape[2], op.stride[0], op.padding[0],
                         op.dilation[0], where)  # fmt: skip
        pw = _window_out(c, x[2], weight.shape[3], op.stride[1], op.padding[1],
                         op.dilation[1], where)  # fmt: skip
        if ph is None or pw is None:
            return None
        out = (k, ph, pw)
        c.macs += weight.size * ph * pw
    if c.array(op.bias, (k,), *_I32, f"{where}.bias") is None:
        return None
    if (op.requant is None) == (op.threshold is None):
        c.err(where, "expected exactly one of requant and threshold")
        return None
    from autochip import reference as r

    if op.requant is not None and not isinstance(op.requant, r.Requant):
        c.err(where, f"requant: expected a Requant, found {type(op.requant).__name__}")
        return None
    if op.threshold is not None and not isinstance(op.threshold, r.Threshold):
        c.err(where, f"threshold: expected a Threshold, found {type(op.threshold).__name__}")
        return None
    if op.requant is not None:
        q = op.requant
        ok = c.array(q.multiplier, (k,), *_I32, f"{where}.requant.multiplier") is not None
        ok &= c.array(q.shift, (k,), 1, 62, f"{where}.requant.shift") is not None
        ok &= c.int_in(q.lo, *_I32, f"{where}.requant.lo")
        ok &= ok and c.int_in(q.hi, int(q.lo), _I32[1], f"{where}.requant.hi")
    else:
        t = op.threshold
        assert t is not None  # exactly one of the two is set (checked above)
        ok = c.array(t.threshold, (k,), *_I32, f"{where}.threshold.threshold") is not None
        ok &= c.array(t.flip, (k,), 0, 1, f"{where}.threshold.flip") is not None
    return out if ok else None

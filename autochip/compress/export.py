"""Export a converted (compressed) model to an :class:`~autochip.reference.IntegerModel`.

The walk follows the fx graph that :func:`~autochip.compress.convert.convert` produced. Between
two quantisers the float value of a compute layer is a per-channel affine map of its integer
accumulator, ``y_k = A_k * acc + B_k`` (``A_k`` = input step x weight step [x batch-norm scale],
``B_k`` = bias [batch-norm shift]); ReLU, max pooling and flatten commute with the (monotone)
quantiser and are applied after it. At the next quantiser the affine map becomes

* an integer requantisation: ``bias_k = round(B_k / A_k)``, ``M_k / 2^s_k = A_k / step_out``
  (``M_k`` has :data:`MULT_BITS` bits of precision), or
* a binary threshold: ``bit = A_k * acc + B_k > 0``, i.e. ``acc >= T_k`` (``A_k > 0``) or
  ``not (acc >= T_k)`` (``A_k < 0``).
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from autochip.compress.adder import (
    AdderConv2d,
    AdderLinear,
    shared_input_quant,
    shared_integer_weight,
)
from autochip.compress.binary import BinaryAct, BinaryConv2d, BinaryLinear, channel_scale
from autochip.compress.convert import is_add, is_avgpool, is_cat, is_relu, relu_cap
from autochip.compress.quant import QuantAct, QuantConv2d, QuantLinear
from autochip.errors import CompressionError
from autochip.reference import (
    ACC_MAX,
    ACC_MIN,
    ComputeOp,
    ConcatOp,
    FlattenOp,
    IntegerModel,
    MaxPoolOp,
    Op,
    PadOp,
    Requant,
    RescaleOp,
    SubsampleOp,
    SumPoolOp,
    Threshold,
)

__all__ = ["MULT_BITS", "export_integer", "fixed_point"]

_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
MULT_BITS = 24  # signed multiplier width of the requantisation: |M| < 2^(MULT_BITS-1)
MAX_SHIFT = 62

_COMPUTE = (QuantConv2d, QuantLinear, BinaryConv2d, BinaryLinear, AdderConv2d, AdderLinear)


BIAS_LIMIT = 2**30  # a too large folded bias is brought within half the accumulator


class BiasRangeError(CompressionError):
    """A layer's folded bias does not fit the accumulator at its input's activation step;
    ``quant`` is the activation quantiser that sets that step (None: not a quantiser), and
    multiplying its step by ``factor`` brings the largest bias to :data:`BIAS_LIMIT`."""

    def __init__(self, message: str, quant: Any, factor: float, layer: str) -> None:
        super().__init__(message)
        self.quant = quant
        self.factor = factor
        self.layer = layer


@dataclass
class _Int:
    """A materialised integer tensor with its step."""

    name: str
    scale: float
    binary: bool = False
    quant: Any = None  # the activation quantiser whose step ``scale`` is (None: not one)


@dataclass
class _Raw:
    """The float model input (before the input quantiser), with layout ops applied."""

    post: list[tuple[str, Any]] = field(default_factory=list)


@dataclass
class _Pending:
    """A compute op whose epilogue is decided by the next quantiser: ``y = A * acc + B``."""

    op: dict[str, Any]
    a: np.ndarray
    b: np.ndarray
    relu: bool = False
    src: _Int | None = None  # the integer input
    post: list[tuple[str, Any]] = field(default_factory=list)
    cap: float | None = None  # a capped ReLU (ReLU6): the upper bound in float


@dataclass
class _Sum:
    """``y = sum_i w_i * step_i * x_i`` over integer tensors (add, average pooling)."""

    sources: list[tuple[_Int, float]]
    relu: bool = False
    post: list[tuple[str, Any]] = field(default_factory=list)
    cap: float | None = None


@dataclass
class _Cat:
    """A channel concatenation of tensors that the next quantiser brings to one step."""

    parts: list[Any]
    post: list[tuple[str, Any]] = field(default_factory=list)


def fixed_point(ratios: np.ndarray) -> tuple[np.ndarray, int]:
    """Integers ``M`` and one shift ``s >= 1`` with ``M / 2^s ~= ratios``.

    ``max |M|`` lies in ``[2^(MULT_BITS-2), 2^(MULT_BITS-1))`` unless the shift hits its bounds.
    """
    top = float(np.max(np.abs(ratios)))
    if top == 0.0 or not math.isfinite(top):
        raise CompressionError(f"requantisation ratio must be finite and non-zero, found {top}")
    e = math.floor(math.log2(top))
    s = min(MAX_SHIFT, max(1, MULT_BITS - 2 - e))
    m = np.floor(ratios * 2.0**s + 0.5).astype(np.int64)
    if np.max(np.abs(m)) >= 2**31:
        raise CompressionError(f"requantisation multiplier {top} is too large for 32 bits")
    return m, s


def _tuple2(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class _Exporter:
    def __init__(self, gm: fx.GraphModule, example: torch.Tensor) -> None:
        self.gm = gm
        self.example = example
        self.ops: list[Op] = []
        self.env: dict[str, Any] = {}
        self.names: set[str] = set()
        self.input_q: QuantAct | None = None
        self.input_name = "input"
        self.result: IntegerModel | None = None

    # -- helpers ----------------------------------------------------------------------------
    def fail(self, node: fx.Node, what: str) -> CompressionError:
        target = (
            node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
        )
        lib = (str(Path(torch.__file__).parent), str(Path(__file__).parents[1]))
        frames = [f for f in _FRAME.findall(node.stack_trace or "") if not f[0].startswith(lib)]
        where = f" at {Path(frames[-1][0]).name}:{frames[-1][1]}" if frames else ""
        return CompressionError(f"export: node '{node.name}' ({node.op} {target}){where}: {what}")

    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            i += 1
            name = f"{base}+{i}"
        self.names.add(name)
        return name

    def module(self, node: fx.Node) -> nn.Module | None:
        if node.op != "call_module":
            return None
        m: nn.Module = self.gm.get_submodule(str(node.target))
        return m

    def shape(self, node: fx.Node) -> tuple[int, ...]:
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape) if meta is not None else ()

    def emit_post(self, src: str, post: list[tuple[str, Any]], base: str) -> str:
        for kind, params in post:
            out = self.fresh(f"{base}.{kind}")
            if kind == "maxpool":
                self.ops.append(MaxPoolOp(out, src, out, *params))
            elif kind == "subsample":
                self.ops.append(SubsampleOp(out, src, out, params))
            elif kind == "pad":
                self.ops.append(PadOp(out, src, out, params))
            else:
                self.ops.append(FlattenOp(out, src, out))
            src = out
        return src

    # -- the walk ---------------------------------------------------------------------------
    def run(self) -> IntegerModel:
        was_training = self.gm.training
        self.gm.eval()
        try:
            with torch.no_grad():
                ShapeProp(self.gm).propagate(self.example)
            for node in self.gm.graph.nodes:
                self.visit(node)
        finally:
            self.gm.train(was_training)
        if self.result is None:
            raise CompressionError("export: the model has no output")
        return self.result

    def visit(self, node: fx.Node) -> None:
        if node.op == "placeholder":
            if self.env:
                raise self.fail(node, "expected a model with one input")
            self.env[node.name] = _Raw()
            return
        if node.op == "output":
            src0 = node.args[0]
            d = self.env[src0.name] if isinstance(src0, fx.Node) else None
            if not isinstance(d, _Int) or self.input_q is None:
                raise self.fail(node, "the model output must come from an activation quantiser")
            q = self.input_q
            self.result = IntegerModel(
                input_name=self.input_name,
                input_shape=tuple(self.example.shape),
                input_scale=float(q.scale.detach().float()),
                input_lo=q.qn,
                input_hi=q.qp,
                ops=tuple(self.ops),
                output=d.name,
                output_scale=d.scale,
            )
            return
        if node.op == "get_attr":
            raise self.fail(node, "parameters used outside a layer are not supported")
        m = self.module(node)
        srcs = [a for a in node.args if isinstance(a, fx.Node)]
        d = self.env.get(srcs[0].name) if srcs else None
        if isinstance(m, QuantAct | BinaryAct):
            self.env[node.name] = self.quantize(node, m, d)
        elif isinstance(m, _COMPUTE):
            self.env[node.name] = self.compute(node, m, d)
        elif isinstance(m, nn.Conv2d | nn.Linear):
            raise self.fail(
                node, "a float layer; compress the model with convert(model, policy) first"
            )
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            self.env[node.name] = self.batchnorm(node, m, d)
        elif is_relu(self.gm, node):
            self.env[node.name] = self.relu(node, d)
        elif relu_cap(self.gm, node) is not None:
            self.env[node.name] = self.relu(node, d, relu_cap(self.gm, node))
        elif is_cat(self.gm, node):
            self.env[node.name] = self.cat(node)
        elif is_avgpool(self.gm, node):
            self.env[node.name] = self.avgpool(node, m, d)
        elif is_add(self.gm, node):
            self.env[node.name] = self.add(node)
        elif isinstance(m, nn.MaxPool2d) or (
            node.op == "call_function" and node.target is torch.nn.functional.max_pool2d
        ):
            self.env[node.name] = self.layout(node, d, ("maxpool", self.maxpool_params(node, m)))
        elif node.op == "call_function" and node.target is operator.getitem:
            self.env[node.name] = self.layout(node, d, ("subsample", self.subsample_params(node)))
        elif node.op == "call_function" and node.target is torch.nn.functional.pad:
            self.env[node.name] = self.layout(node, d, ("pad", self.pad_params(node)))
        elif isinstance(m, nn.Flatten) or self.is_flatten_call(node):
            self.env[node.name] = self.layout(node, d, ("flatten", None))
        elif isinstance(m, nn.Dropout | nn.Identity) or (
            node.op == "call_method" and node.target == "contiguous"
        ):
            self.env[node.name] = d
        elif node.op == "call_method" and node.target == "size":
            self.env[node.name] = None
        elif node.op == "call_function" and node.target is torch.nn.functional.dropout:
            self.env[node.name] = d
        else:
            what = type(m).__name__ if m is not None else getattr(node.target, "__name__", "")
            what = what or str(node.target)
            raise self.fail(node, f"'{what}' has no integer implementation in autochip.reference")

    def is_flatten_call(self, node: fx.Node) -> bool:
        if node.op == "call_function" and node.target is torch.flatten:
            pass
        elif not (node.op == "call_method" and node.target in ("flatten", "view", "reshape")):
            return False
        out = self.shape(node)
        src = node.args[0]
        inp = self.shape(src) if isinstance(src, fx.Node) else ()
        if len(out) == 2 and inp and out[0] == inp[0]:
            return True
        raise self.fail(node, f"only flattening to (N, -1) is supported, found {inp} -> {out}")

    def subsample_params(self, node: fx.Node) -> tuple[int, int]:
        idx = node.args[1]
        full = slice(None, None, None)
        ok = isinstance(idx, tuple) and len(idx) == 4 and idx[0] == full and idx[1] == full
        steps: list[int] = []
        if ok:
            assert isinstance(idx, tuple)
            for sl in idx[2:]:
                if not (isinstance(sl, slice) and sl.start is None and sl.stop is None):
                    ok = False
                    break
                steps.append(1 if sl.step is None else int(sl.step))
        if not ok:
            raise self.fail(node, "only strided subsampling x[:, :, ::s, ::s] is supported")
        return steps[0], steps[1]

    def pad_params(self, node: fx.Node) -> tuple[int, ...]:
        pads = node.kwargs.get("pad", node.args[1] if len(node.args) > 1 else None)
        mode = node.kwargs.get("mode", node.args[2] if len(node.args) > 2 else "constant")
        value = node.kwargs.get("value", node.args[3] if len(node.args) > 3 else None)
        if mode != "constant" or value not in (None, 0, 0.0) or not isinstance(pads, list | tuple):
            raise self.fail(node, "only constant zero padding is supported")
        p = [int(v) for v in pads] + [0] * (6 - len(pads))
        if len(pads) > 6 or len(pads) % 2 or min(p) < 0:
            raise self.fail(node, f"padding {pads}: expected up to 6 non-negative values")
        # F.pad lists the last dim first: (w0, w1, h0, h1, c0, c1) -> (c0, c1, h0, h1, w0, w1)
        return p[4], p[5], p[2], p[3], p[0], p[1]

    def maxpool_params(self, node: fx.Node, m: nn.Module | None) -> tuple[Any, ...]:
        if isinstance(m, nn.MaxPool2d):
            k, s, p, dil, ceil = m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode
        else:
            args: list[Any] = [*node.args[1:], None, None, None, None, None]
            kw: dict[str, Any] = dict(node.kwargs)
            k = kw.get("kernel_size", args[0])
            s = kw.get("stride", args[1]) or k
            p = kw.get("padding", args[2] if args[2] is not None else 0)
            dil = kw.get("dilation", args[3] if args[3] is not None else 1)
            ceil = kw.get("ceil_mode", args[4] if args[4] is not None else False)
        if _tuple2(dil) != (1, 1):
            raise self.fail(node, "max pooling with dilation is not supported")
        return _tuple2(k), _tuple2(s), _tuple2(p), bool(ceil)

    def layout(self, node: fx.Node, d: Any, post: tuple[str, Any]) -> Any:
        if isinstance(d, _Int):
            out = self.emit_post(d.name, [post], d.name)
            return _Int(out, d.scale, d.binary, d.quant)
        if isinstance(d, _Raw | _Pending | _Sum | _Cat):
            return dataclasses.replace(d, post=[*d.post, post])
        raise self.fail(node, "unsupported input")

    def relu(self, node: fx.Node, d: Any, cap: float | None = None) -> Any:
        if isinstance(d, _Cat):
            return dataclasses.replace(d, parts=[self.relu(node, p, cap) for p in d.parts])
        if isinstance(d, _Int):
            d = _Sum([(d, 1.0)])
        if isinstance(d, _Pending | _Sum):
            if cap is not None and cap <= 0:
                raise self.fail(node, f"a capped ReLU needs a positive bound, found {cap}")
            caps = [c for c in (d.cap, cap) if c is not None]
            return dataclasses.replace(d, relu=True, cap=min(caps) if caps else None)
        raise self.fail(node, "ReLU on the raw model input is not supported")

    def cat(self, node: fx.Node) -> _Cat:
        srcs = node.args[0]
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        rank = len(self.shape(node))
        if (
            not isinstance(srcs, list | tuple)
            or not isinstance(dim, int)
            or dim % max(rank, 1) != 1
        ):
            raise self.fail(node, f"only concatenation along the channels (dim 1) is supported, "
                            f"found dim {dim}")  # fmt: skip
        parts = []
        for a in srcs:
            d = self.env.get(a.name) if isinstance(a, fx.Node) else None
            if isinstance(d, _Cat) and not d.post:
                parts += d.parts
            elif isinstance(d, _Int | _Pending | _Sum) and not getattr(d, "binary", False):
                parts.append(d)
            else:
                raise self.fail(node, "concatenation must read integer tensors or layer outputs")
        return _Cat(parts)

    def batchnorm(self, node: fx.Node, m: nn.Module, d: Any) -> Any:
        assert isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)
        if not isinstance(d, _Pending) or d.relu or d.post:
            raise self.fail(node, "batch-norm must directly follow a conv/linear layer")
        var = m.running_var.detach().double().numpy()  # type: ignore[union-attr]
        mean = m.running_mean.detach().double().numpy()  # type: ignore[union-attr]
        g = m.weight.detach().double().numpy() if m.weight is not None else np.ones_like(mean)
        beta = m.bias.detach().double().numpy() if m.bias is not None else np.zeros_like(mean)
        k = g / np.sqrt(var + m.eps)
        return dataclasses.replace(d, a=d.a * k, b=(d.b - mean) * k + beta)

    def avgpool(self, node: fx.Node, m: nn.Module | None, d: Any) -> Any:
        if not isinstance(d, _Int):
            raise self.fail(node, "average pooling must read a quantised tensor")
        src = node.args[0]
        assert isinstance(src, fx.Node)
        shape_in = self.shape(src)
        shape_out = self.shape(node)
        if len(shape_in) != 4:
            raise self.fail(node, f"expected a 4-D input to average pooling, found {shape_in}")
        h, w = shape_in[2], shape_in[3]
        if isinstance(m, nn.AvgPool2d):
            k, s, p = _tuple2(m.kernel_size), _tuple2(m.stride or m.kernel_size), m.padding
            if _tuple2(p) != (0, 0) or m.ceil_mode or m.divisor_override:
                raise self.fail(node, "average pooling with padding/ceil_mode/divisor_override")
        elif node.target is torch.nn.functional.avg_pool2d:
            k = _tuple2(node.kwargs.get("kernel_size", node.args[1]))
            st = node.kwargs.get("stride", node.args[2] if len(node.args) > 2 else None)
            s = _tuple2(st) if st else k
            if node.kwargs.get("padding", node.args[3] if len(node.args) > 3 else 0):
                raise self.fail(node, "average pooling with padding is not supported")
        else:  # adaptive pooling or a mean over H, W
            ph, pw = (shape_out[2], shape_out[3]) if len(shape_out) == 4 else (1, 1)
            if h % ph or w % pw:
                raise self.fail(node, f"adaptive pooling {h}x{w} -> {ph}x{pw} is not uniform")
            k = s = (h // ph, w // pw)
            if node.target in (torch.mean, "mean"):
                dims: Any = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
                dims_t = tuple(
                    sorted(int(x) % 4 for x in (dims if isinstance(dims, list | tuple) else [dims]))
                )
                if dims_t != (2, 3):
                    raise self.fail(node, f"mean over dims {dims} (expected (2, 3))")
        out = self.fresh(f"{node.name}.sum")
        self.ops.append(SumPoolOp(out, d.name, out, k, s))
        total = _Int(out, d.scale)
        res = _Sum([(total, 1.0 / (k[0] * k[1]))])
        if len(shape_out) == 2:
            res.post.append(("flatten", None))
        return res

    def add(self, node: fx.Node) -> Any:
        if node.kwargs.get("alpha") is not None:
            raise self.fail(node, "add with alpha is not supported")
        ds = [self.env.get(a.name) for a in node.args[:2] if isinstance(a, fx.Node)]
        ints = [x for x in ds if isinstance(x, _Int)]
        if len(ints) != 2:
            raise self.fail(node, "residual add must read two quantised tensors")
        return _Sum([(ints[0], 1.0), (ints[1], 1.0)])

    def compute(self, node: fx.Node, m: nn.Module, d: Any) -> _Pending:
        if not isinstance(d, _Int):
            raise self.fail(node, "a compressed layer must read a quantised tensor")
        conv = isinstance(m, nn.Conv2d)
        assert isinstance(m, nn.Conv2d | nn.Linear)
        w = m.weight
        bias = m.bias.detach().double().numpy() if m.bias is not None else np.zeros(w.shape[0])
        if isinstance(m, QuantConv2d | QuantLinear):
            kind = "mac"
            wi = m.w_quant.integer(w)
            a = d.scale * m.w_quant.scale.detach().double().numpy()
        elif isinstance(m, AdderConv2d | AdderLinear):
            kind = "adder"
            q = shared_input_quant(m)
            if q is None or float(q.scale.detach().float()) != d.scale:
                raise self.fail(node, "adder layer must share the step of its input quantiser")
            wi = shared_integer_weight(m, w, m.bits)
            a = np.full(w.shape[0], d.scale)
        else:
            if not d.binary:
                raise self.fail(node, "a binary layer must read a binarised tensor")
            kind = "xnor"
            wi = torch.where(w.detach() > 0, 1.0, -1.0)
            a = channel_scale(w).double().numpy()
        op: dict[str, Any] = {
            "name": str(node.target),
            "input": d.name,
            "kind": kind,
            "layer": "conv" if conv else "linear",
            "weight": wi.to(torch.int64).numpy(),
        }
        if conv:
            assert isinstance(m, nn.Conv2d)
            op.update(
                stride=_tuple2(m.stride),
                padding=_tuple2(m.padding),
                dilation=_tuple2(m.dilation),
                groups=m.groups,
            )
        return _Pending(op, a.astype(np.float64), bias.astype(np.float64), src=d)

    def quantize(self, node: fx.Node, q: nn.Module, d: Any) -> _Int:
        out = self._quantize(node, q, d)
        if isinstance(q, QuantAct):
            out.quant = q
        return out

    def _quantize(self, node: fx.Node, q: nn.Module, d: Any) -> _Int:
        binary = isinstance(q, BinaryAct)
        if isinstance(d, _Raw):
            if binary or not isinstance(q, QuantAct):
                raise self.fail(
                    node, "the model input must be quantised to integers, not binarised"
                )
            if self.input_q is not None:
                raise self.fail(node, "the model input is quantised twice")
            self.input_q = q
            self.names.add(self.input_name)
            out = self.emit_post(self.input_name, d.post, self.input_name)
            return _Int(out, float(q.scale.detach().float()))
        if isinstance(d, _Cat):
            if binary:
                raise self.fail(node, "binarising a concatenation is not supported")
            assert isinstance(q, QuantAct)
            return self.finish_cat(node, q, d)
        if isinstance(d, _Int):
            if binary:
                return d if d.binary else self.binarise(node, d)
            d = _Sum([(d, 1.0)])
        if isinstance(d, _Pending):
            return self.finish_compute(node, q, d)
        if isinstance(d, _Sum):
            if binary:
                raise self.fail(node, "binarising a sum or pooled tensor is not supported")
            assert isinstance(q, QuantAct)
            return self.finish_sum(node, q, d)
        raise self.fail(node, "unsupported input to a quantiser")

    def binarise(self, node: fx.Node, d: _Int) -> _Int:
        """``bit = x > 0`` of a stored integer tensor (a residual sum, a pooled tensor): a
        depthwise 1x1 MAC convolution with weight 1 whose threshold epilogue is ``acc >= 1``
        (an identity linear layer for a flattened tensor), so the core runs it as any layer."""
        shape = self.shape(node)
        c = shape[1]
        if len(shape) == 4:
            op: dict[str, Any] = {
                "layer": "conv",
                "weight": np.ones((c, 1, 1, 1), dtype=np.int64),
                "groups": c,
            }
        elif len(shape) == 2:
            op = {"layer": "linear", "weight": np.eye(c, dtype=np.int64)}
        else:
            raise self.fail(node, f"binarising a tensor of shape {shape} is not supported")
        name = self.fresh(f"{node.name}.sign")
        self.ops.append(
            ComputeOp(
                name=name,
                input=d.name,
                output=name,
                kind="mac",
                bias=np.zeros(c, dtype=np.int64),
                threshold=Threshold(np.ones(c, dtype=np.int64), np.zeros(c, dtype=np.int64)),
                **op,
            )
        )
        return _Int(name, 1.0, True)

    def finish_compute(self, node: fx.Node, q: nn.Module, d: _Pending) -> _Int:
        k = d.a.shape[0]
        if np.any(d.a == 0):
            raise self.fail(node, "a channel has a zero scale (batch-norm weight 0)")
        if isinstance(q, BinaryAct):
            c = -d.b / d.a
            t = np.where(d.a > 0, np.floor(c) + 1, np.ceil(c))
            t = np.clip(t, ACC_MIN, ACC_MAX).astype(np.int64)
            flip = (d.a < 0).astype(np.int64)
            epi: dict[str, Any] = {
                "bias": np.zeros(k, dtype=np.int64),
                "threshold": Threshold(t, flip),
            }
            scale, binary = 1.0, True
        else:
            assert isinstance(q, QuantAct)
            step = float(q.scale.detach().float())
            bias = np.floor(d.b / d.a + 0.5)
            if np.any(np.abs(bias) > ACC_MAX):
                err = self.fail(node, "the folded bias does not fit the 32-bit accumulator")
                raise BiasRangeError(
                    str(err),
                    d.src.quant if d.src is not None else None,
                    float(np.abs(bias).max()) / BIAS_LIMIT,
                    str(d.op["name"]),
                )
            m_, s = self._per_channel(d.a / step)
            lo = max(q.qn, 0) if d.relu else q.qn
            epi = {
                "bias": bias.astype(np.int64),
                "requant": Requant(m_, s, lo, _capped(q, d.cap)),
            }
            scale, binary = step, False
        name = self.fresh(d.op["name"])
        self.ops.append(ComputeOp(**{**d.op, "name": name, "output": name, **epi}))
        out = self.emit_post(name, d.post, name)
        return _Int(out, scale, binary)

    @staticmethod
    def _per_channel(ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ms, ss = [], []
        for r in ratios:
            m_, s = fixed_point(np.array([r]))
            ms.append(int(m_[0]))
            ss.append(s)
        return np.array(ms, dtype=np.int64), np.array(ss, dtype=np.int64)

    def finish_sum(self, node: fx.Node, q: QuantAct, d: _Sum) -> _Int:
        step = float(q.scale.detach().float())
        ratios = np.array([w * src.scale / step for src, w in d.sources])
        m_, s = fixed_point(ratios)
        name = self.fresh(node.name)
        lo = max(q.qn, 0) if d.relu else q.qn
        self.ops.append(
            RescaleOp(
                name,
                tuple(src.name for src, _ in d.sources),
                name,
                tuple(int(x) for x in m_),
                s,
                lo,
                _capped(q, d.cap),
            )
        )
        out = self.emit_post(name, d.post, name)
        return _Int(out, step)

    def finish_cat(self, node: fx.Node, q: QuantAct, d: _Cat) -> _Int:
        """Each part quantised with ``q``'s step (requantised or rescaled), then concatenated:
        ``q(cat(parts)) == cat(q(part) ...)`` elementwise, so it is exact."""
        step = float(q.scale.detach().float())
        names = []
        for part in d.parts:
            if isinstance(part, _Int) and part.scale == step:
                names.append(part.name)
                continue
            names.append(self.quantize(node, q, part).name)
        name = self.fresh(node.name)
        self.ops.append(ConcatOp(name, tuple(names), name))
        out = self.emit_post(name, d.post, name)
        return _Int(out, step)


def _capped(q: QuantAct, cap: float | None) -> int:
    """The upper clamp of a quantiser after a capped ReLU: ``min(Qp, round(cap / step))``,
    rounded as the fake quantiser rounds (float32, half up)."""
    if cap is None:
        return q.qp
    r = np.floor(np.float32(cap) / np.float32(q.scale.detach().float()) + np.float32(0.5))
    return int(min(q.qp, max(0, int(r))))


def export_integer(gm: fx.GraphModule, example_input: torch.Tensor) -> IntegerModel:
    """The integer model of a converted ``gm`` (batch-norms in eval mode, as deployed)."""
    return _Exporter(gm, example_input).run()

"""The ONNX front end's translation table: each ONNX operator becomes one ATen call.

ONNX attributes become the ATen operator's arguments (``Conv``'s ``group``, ``strides``,
``dilations`` and leading ``pads``, with ``auto_pad`` resolved from the inferred shapes;
``Gemm`` with ``transB=1`` is ``aten.linear``, ...); the shared op table
(:mod:`autochip.ir._ops`) then lowers the call like any other. An ONNX operator missing from
:data:`TABLE` is refused by op type and node name (:data:`WHY` gives the reason where there is
a known one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import fx

from autochip.errors import UnsupportedOpError
from autochip.ir._values import TensorInfo

if TYPE_CHECKING:
    from autochip.ir._onnx import _Builder

__all__ = ["ONNX_OPS", "TABLE", "WHY", "OnnxNode", "Translation"]

aten = torch.ops.aten


@dataclass
class OnnxNode:
    """The ONNX node being translated: attribute access and its inputs as fx nodes."""

    b: _Builder
    proto: Any
    name: str

    @property
    def op(self) -> str:
        return str(self.proto.op_type)

    def attr(self, key: str, default: Any = None) -> Any:
        import onnx

        for a in self.proto.attribute:
            if a.name == key:
                value = onnx.helper.get_attribute_value(a)
                return value.decode(errors="replace") if isinstance(value, bytes) else value
        return default

    def has(self, i: int) -> bool:
        return i < len(self.proto.input) and bool(self.proto.input[i])

    def t(self, i: int) -> fx.Node | None:
        return self.b.value(self.proto.input[i], self) if self.has(i) else None

    def const(self, i: int) -> Any:
        """Input ``i`` as a Python value (list or scalar) if it is a constant, else ``None``."""
        return self.b.constant(self.proto.input[i]) if self.has(i) else None

    def shape(self, i: int) -> tuple[int, ...]:
        info = self.b.info.get(self.proto.input[i])
        return info.shape if isinstance(info, TensorInfo) else ()

    def out_shape(self, i: int = 0) -> tuple[int, ...]:
        info = self.b.info.get(self.proto.output[i])
        return info.shape if isinstance(info, TensorInfo) else ()

    def refuse(self, reason: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"ONNX {self.op}", self.proto.name or self.name, self.b.where,
                                  reason)  # fmt: skip


Translation = Callable[[OnnxNode], tuple[Any, tuple[Any, ...]]]


def _window(
    n: OnnxNode, spatial: int
) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """kernel, strides, leading pads, trailing pads, dilations of a conv/pool node (``auto_pad``
    resolved from the inferred shapes)."""
    x = n.shape(0)
    kernel = list(n.attr("kernel_shape") or [])
    if not kernel and n.has(1):  # Conv: the kernel is the weight's trailing dimensions
        kernel = list(n.shape(1)[2:])
    strides = list(n.attr("strides") or [1] * spatial)
    dilations = list(n.attr("dilations") or [1] * spatial)
    pads = list(n.attr("pads") or [0] * (2 * spatial))
    auto = n.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = n.out_shape()[2:]
        for i in range(spatial):
            total = max(
                0, (out[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - x[2 + i]
            )
            small, large = total // 2, total - total // 2  # SAME_UPPER puts the extra one last
            pads[i], pads[spatial + i] = (small, large) if auto == "SAME_UPPER" else (large, small)
    elif auto == "VALID":
        pads = [0] * (2 * spatial)
    return kernel, strides, pads[:spatial], pads[spatial:], dilations


def _conv(n: OnnxNode) -> tuple[Any, tuple[Any, ...]]:
    spatial = len(n.shape(0)) - 2
    _, strides, begin, end, dilations = _window(n, spatial)
    # Asymmetric padding (TensorFlow's SAME with an even total) has no (pad_h, pad_w) form: it
    # is passed as 'same', and the op table recovers the leading padding from the shapes.
    padding: Any = begin if begin == end else "same"
    transposed = n.op == "ConvTranspose"
    return aten.convolution.default, (
        n.t(0), n.t(1), n.t(2), strides, padding, dilations, transposed, [0] * spatial,
        int(n.attr("group", 1)),
    )  # fmt: skip


def _extent(size: int, pad: int, dil: int, k: int, stride: int, ceil: bool) -> int:
    """Output length of a pooling window (PyTorch's rule, ceil mode included)."""
    num = size + 2 * pad - dil * (k - 1) - 1
    out = (-(-num // stride) if ceil else num // stride) + 1
    return out - 1 if ceil and (out - 1) * stride >= size + pad else out


def _gemm(n: OnnxNode) -> tuple[Any, tuple[Any, ...]]:
    if n.attr("transA", 0):
        raise n.refuse("Gemm with transA=1 (a transposed activation) is not mapped")
    if n.attr("transB", 0):  # Y = A @ B.T + C: torch.nn.Linear's form, B is (K, C)
        return aten.linear.default, (n.t(0), n.t(1), n.t(2))
    return aten.addmm.default, (n.t(2), n.t(0), n.t(1))


def _pool(n: OnnxNode) -> tuple[Any, tuple[Any, ...]]:
    spatial = len(n.shape(0)) - 2
    if spatial not in (1, 2):
        raise n.refuse(f"expected a 1-D or 2-D pooling, found a {spatial}-D one")
    kernel, strides, pads, end, dilations = _window(n, spatial)
    ceil = bool(n.attr("ceil_mode", 0))
    if pads != end:  # asymmetric: the one extra trailing row/column is ceil mode's extra window
        x, out = n.shape(0)[2:], n.out_shape()[2:]
        fits = [_extent(x[i], pads[i], dilations[i], kernel[i], strides[i], True) == out[i]
                for i in range(spatial)]  # fmt: skip
        if not all(fits):
            raise n.refuse(f"asymmetric padding {pads} + {end} of this window and stride")
        ceil = True
    if n.op == "MaxPool":
        target = aten.max_pool2d.default if spatial == 2 else aten.max_pool1d.default
        return target, (n.t(0), kernel, strides, pads, dilations, ceil)
    target = aten.avg_pool2d.default if spatial == 2 else aten.avg_pool1d.default
    return target, (n.t(0), kernel, strides, pads, ceil, bool(n.attr("count_include_pad", 0)))


def _global_pool(n: OnnxNode) -> tuple[Any, tuple[Any, ...]]:
    spatial = len(n.shape(0)) - 2
    if spatial not in (1, 2):
        raise n.refuse(f"expected a 1-D or 2-D pooling, found a {spatial}-D one")
    kind = "avg" if n.op == "GlobalAveragePool" else "max"
    target = getattr(aten, f"adaptive_{kind}_pool{spatial}d").default
    return target, (n.t(0), [1] * spatial)


def _clip(n: OnnxNode) -> tuple[Any, tuple[Any, ...]]:
    lo, hi = (n.attr("min"), n.attr("max")) if n.b.opset < 11 else (n.const(1), n.const(2))
    if (n.has(1) and lo is None) or (n.has(2) and hi is None):
        raise n.refuse("Clip with bounds computed from the input")
    return aten.clamp.default, (n.t(0), lo, hi)


def _axes(n: OnnxNode, since: int) -> list[int] | None:
    """Axes of Reduce*/Squeeze/Unsqueeze: an attribute before opset ``since``, then an input."""
    axes = n.attr("axes") if n.b.opset < since else n.const(1)
    if axes is None and n.b.opset >= since and n.has(1):
        raise n.refuse("axes computed from the input")
    return None if axes is None else [int(a) for a in _as_list(axes)]


def _reduce(target: Any, since: int = 18) -> Translation:
    def translate(n: OnnxNode) -> tuple[Any, tuple[Any, ...]]:
        axes = _axes(n, since)
        if axes is None and n.attr("noop_with_empty_axes", 0):
            return aten.alias.default, (n.t(0),)
        return target, (n.t(0), axes, bool(n.attr("keepdims", 1)))

    return translate


def _softmax(target: Any) -> Translation:
    def translate(n: OnnxNode) -> tuple[Any, tuple[Any, ...]]:
        return target, (n.t(0), int(n.attr("axis", -1 if n.b.opset >= 13 else 1)), False)

    return translate


def _layer_norm(n: OnnxNode) -> tuple[Any, tuple[Any, ...]]:
    shape = n.shape(0)
    axis = int(n.attr("axis", -1)) % max(1, len(shape))
    return aten.layer_norm.default, (n.t(0), list(shape[axis:]), n.t(1), n.t(2))


def _gather(n: OnnxNode) -> tuple[Any, tuple[Any, ...]]:
    if not n.b.is_dyn(n.proto.input[0]):  # a table lookup: rows of a constant by the input
        return aten.embedding.default, (n.t(0), n.t(1))
    index = n.const(1)
    if index is None:
        raise n.refuse("indexing with an index computed from the input")
    if isinstance(index, int):
        return aten.select.int, (n.t(0), int(n.attr("axis", 0)), index)
    return aten.slice.Tensor, (n.t(0), int(n.attr("axis", 0)))


def _split(n: OnnxNode) -> tuple[Any, tuple[Any, ...]]:
    axis = int(n.attr("axis", 0))
    sizes = [n.out_shape(i)[axis] for i in range(len(n.proto.output))]
    return aten.split_with_sizes.default, (n.t(0), sizes, axis)


def _resize(n: OnnxNode) -> tuple[Any, tuple[Any, ...]]:
    mode = str(n.attr("mode", "nearest"))
    if mode != "nearest" or len(n.shape(0)) != 4:
        raise n.refuse(f"'{mode}' interpolation of a {len(n.shape(0))}-D tensor "
                       "(nearest-neighbour upsampling of N, C, H, W is mapped)")  # fmt: skip
    return aten.upsample_nearest2d.vec, (n.t(0), list(n.out_shape()[2:]), None)


def _einsum(n: OnnxNode) -> tuple[Any, tuple[Any, ...]]:
    inputs = [n.t(i) for i in range(len(n.proto.input))]
    return aten.einsum.default, (str(n.attr("equation")), inputs)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _same(target: Any, *attrs: tuple[str, Any]) -> Translation:
    """Inputs in order (absent ones as ``None``), then the given attributes as arguments."""

    def translate(n: OnnxNode) -> tuple[Any, tuple[Any, ...]]:
        args = [n.t(i) for i in range(len(n.proto.input))]
        return target, (*args, *(n.attr(k, d) for k, d in attrs))

    return translate


def _binary(target: Any) -> Translation:
    def translate(n: OnnxNode) -> tuple[Any, tuple[Any, ...]]:
        if len(n.proto.input) != 2:
            raise n.refuse(f"expected 2 operands, found {len(n.proto.input)}")
        return target, (n.t(0), n.t(1))

    return translate


_DATA: dict[str, Any] = {
    "Reshape": aten.reshape.default,
    "Flatten": aten.flatten.using_ints,
    "Transpose": aten.permute.default,
    "Squeeze": aten.squeeze.dims,
    "Unsqueeze": aten.unsqueeze.default,
    "Identity": aten.alias.default,
    "Dropout": aten.dropout.default,
    "Cast": aten._to_copy.default,
    "CastLike": aten._to_copy.default,
    "Expand": aten.expand.default,
    "Tile": aten.repeat.default,
    "Slice": aten.slice.Tensor,
    "DepthToSpace": aten.pixel_shuffle.default,
    "SpaceToDepth": aten.pixel_unshuffle.default,
}
_UNARY: dict[str, Any] = {
    "Relu": aten.relu.default,
    "Sigmoid": aten.sigmoid.default,
    "Tanh": aten.tanh.default,
    "HardSigmoid": aten.hardsigmoid.default,
    "HardSwish": aten.hardswish.default,
    "Softplus": aten.softplus.default,
    "Mish": aten.mish.default,
    "Gelu": aten.gelu.default,
    "Erf": aten.erf.default,
    "Exp": aten.exp.default,
    "Log": aten.log.default,
    "Sqrt": aten.sqrt.default,
    "Abs": aten.abs.default,
    "Reciprocal": aten.reciprocal.default,
    "Sin": aten.sin.default,
    "Cos": aten.cos.default,
    "Floor": aten.floor.default,
    "Ceil": aten.ceil.default,
    "Round": aten.round.default,
    "Sign": aten.sign.default,
    "Not": aten.logical_not.default,
    "Neg": aten.neg.default,
}
_BINARY: dict[str, Any] = {
    "Add": aten.add.Tensor,
    "Sum": aten.add.Tensor,
    "Sub": aten.sub.Tensor,
    "Mul": aten.mul.Tensor,
    "Div": aten.div.Tensor,
    "Pow": aten.pow.Tensor_Tensor,
    "Max": aten.maximum.default,
    "Min": aten.minimum.default,
    "Equal": aten.eq.Tensor,
    "Greater": aten.gt.Tensor,
    "Less": aten.lt.Tensor,
    "GreaterOrEqual": aten.ge.Tensor,
    "LessOrEqual": aten.le.Tensor,
    "And": aten.logical_and.default,
    "Or": aten.logical_or.default,
    "MatMul": aten.matmul.default,
    "PRelu": aten.prelu.default,
}

#: ONNX op type -> its translation into one ATen call (the op table does the rest).
TABLE: dict[str, Translation] = {
    "Conv": _conv,
    "ConvTranspose": _conv,
    "Gemm": _gemm,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "BatchNormalization": lambda n: (
        aten._native_batch_norm_legit_no_training.default,
        (n.t(0), n.t(1), n.t(2), n.t(3), n.t(4), 0.1, float(n.attr("epsilon", 1e-5))),
    ),
    "InstanceNormalization": lambda n: (
        aten.instance_norm.default,
        (n.t(0), n.t(1), n.t(2), None, None, False, 0.1, float(n.attr("epsilon", 1e-5)), False),
    ),
    "LayerNormalization": _layer_norm,
    "Clip": _clip,
    "LeakyRelu": lambda n: (aten.leaky_relu.default, (n.t(0), float(n.attr("alpha", 0.01)))),
    "Elu": lambda n: (aten.elu.default, (n.t(0), float(n.attr("alpha", 1.0)))),
    "Softmax": _softmax(aten._softmax.default),
    "LogSoftmax": _softmax(aten._log_softmax.default),
    "Where": _same(aten.where.self),
    "Concat": lambda n: (
        aten.cat.default,
        ([n.t(i) for i in range(len(n.proto.input))], int(n.attr("axis", 0))),
    ),
    "ReduceMean": _reduce(aten.mean.dim),
    "ReduceSum": _reduce(aten.sum.dim_IntList, since=13),
    "ReduceMax": _reduce(aten.amax.default),
    "ReduceMin": _reduce(aten.amin.default),
    "ReduceLogSumExp": _reduce(aten.logsumexp.default),
    "ArgMax": lambda n: (
        aten.argmax.default,
        (n.t(0), int(n.attr("axis", 0)), bool(n.attr("keepdims", 1))),
    ),
    "Gather": _gather,
    "Split": _split,
    "Pad": lambda n: (aten.pad.default, (n.t(0), [], str(n.attr("mode", "constant")), None)),
    "Resize": _resize,
    "Upsample": _resize,
    "Einsum": _einsum,
    "Shape": lambda n: (aten.sym_size.int, (n.t(0), 0)),
    "Size": lambda n: (aten.sym_numel.default, (n.t(0),)),
    **{k: _same(v) for k, v in _DATA.items()},
    **{k: _same(v) for k, v in _UNARY.items()},
    **{k: _binary(v) for k, v in _BINARY.items()},
}
#: The ONNX operators autochip maps (standard domain), sorted; documented in docs/ir.md.
ONNX_OPS: tuple[str, ...] = tuple(sorted(TABLE))

WHY = {
    "If": "control flow (subgraphs) has no mapping onto the array",
    "Loop": "control flow (subgraphs) has no mapping onto the array",
    "Scan": "control flow (subgraphs) has no mapping onto the array",
    "LSTM": "recurrent layers have no mapping onto the array",
    "GRU": "recurrent layers have no mapping onto the array",
    "RNN": "recurrent layers have no mapping onto the array",
    "TopK": "sorting has no hardware mapping",
    "NonMaxSuppression": "sorting has no hardware mapping",
    "QuantizeLinear": "quantised ONNX graphs are not mapped; export the float model",
    "DequantizeLinear": "quantised ONNX graphs are not mapped; export the float model",
    "QLinearConv": "quantised ONNX graphs are not mapped; export the float model",
    "QLinearMatMul": "quantised ONNX graphs are not mapped; export the float model",
}

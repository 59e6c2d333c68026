"""The ONNX front end: an ``.onnx`` file -> the raw AccelGraph (before passes).

An ONNX file is data. It is parsed with the ``onnx`` package only (no onnxruntime, nothing in
it is executed); tensors stored in external files are never read (their shapes are in the
model, and autochip needs no weight values). Shapes come from ``onnx.shape_inference``.

Each ONNX node becomes one ``torch.fx`` call of the ATen operator with the same meaning, with
ONNX attributes turned into that operator's arguments, and the graph is lowered by the same
:class:`~autochip.ir._lower.Lowering` and op table (:mod:`autochip.ir._ops`) as the ``torch.fx``
and ``torch.export`` front ends. Nodes that only compute on constants (shape arithmetic,
``Identity`` of an initializer) are constants, as in the other front ends. An ONNX operator with
no entry in :data:`_TABLE` is refused with its op type and node name.

Parameters: float initializers, except the running statistics of ``BatchNormalization``
(buffers, not parameters, in PyTorch). An initializer that the exporter shared between nodes
(identical tensors) counts once.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from autochip.errors import AutochipError, ModelLoadError, TraceError, UnsupportedOpError
from autochip.ir._lower import Call, Lowering
from autochip.ir._values import Const, Meta, TensorInfo, Value
from autochip.ir.graph import AccelGraph

__all__ = ["ONNX_OPS", "trace_onnx"]

aten = torch.ops.aten

#: Largest ONNX file read (protobuf's own limit is 2 GiB).
MAX_BYTES = 2**31 - 1


# -- reading -----------------------------------------------------------------------------------
def _read(path: Path) -> Any:
    import onnx

    if not path.is_file():
        raise ModelLoadError(f"expected an ONNX model file, found no file at '{path}'")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ModelLoadError(
            f"'{path}': expected an ONNX file of at most {MAX_BYTES} bytes (protobuf limit), "
            f"found {size} bytes"
        )
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelLoadError(
            f"'{path}': expected an ONNX model (protobuf ModelProto), reading it failed: "
            f"{type(exc).__name__}: {_first(exc)}"
        ) from None
    if not model.HasField("graph") or not model.graph.node:
        raise ModelLoadError(f"'{path}': expected an ONNX model with a graph, found none")
    _check_text(model, path)
    _drop_weight_values(model)
    if model.functions:
        try:
            from onnx import inliner

            model = inliner.inline_local_functions(model)
        except Exception as exc:
            raise ModelLoadError(
                f"'{path}': inlining the model's local functions failed: {_first(exc)}"
            ) from None
    return model


def _drop_weight_values(model: Any) -> None:
    """Free the values of large initializers: only their dims and type are ever read, and
    shape inference then copies a model of kilobytes instead of the weights (VGG-16: 553 MB)."""
    for t in model.graph.initializer:
        if math.prod(t.dims) > _FOLD_LIMIT:
            for name in ("raw_data", "float_data", "double_data", "int32_data", "int64_data",
                         "uint64_data", "string_data"):  # fmt: skip
                t.ClearField(name)


def _check_text(model: Any, path: Path) -> None:
    """Every name autochip reads must be text (protobuf hands over bytes that are not UTF-8)."""
    g = model.graph
    fields: list[tuple[str, Any]] = [("graph input", v.name) for v in g.input]
    fields += [("graph output", v.name) for v in g.output]
    fields += [("initializer", t.name) for t in g.initializer]
    for i, node in enumerate(g.node):
        where = f"node {i}"
        fields += [(where, node.name), (where, node.op_type), (where, node.domain)]
        fields += [(where, v) for v in (*node.input, *node.output)]
        fields += [(where, a.name) for a in node.attribute]
    fields += [("opset import", o.domain) for o in model.opset_import]
    for where, value in fields:
        if not isinstance(value, str):
            raise ModelLoadError(
                f"'{path}': expected UTF-8 text for every name, found {value[:40]!r} in {where}"
            )


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def _static_inputs(model: Any, path: Path) -> None:
    """Symbolic batch dimensions (``dim_param``) of the inputs become 1; others are an error."""
    inits = {t.name for t in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        tt = inp.type.tensor_type
        if not inp.type.HasField("tensor_type") or not tt.HasField("shape"):
            raise TraceError(
                f"'{path}': expected input '{inp.name}' to be a tensor of known rank, found "
                "no shape"
            )
        for i, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            if i == 0:
                d.Clear()
                d.dim_value = 1
                continue
            raise TraceError(
                f"'{path}': expected input '{inp.name}' to have a fixed size in dimension {i} "
                f"(only the batch dimension may be symbolic), found "
                f"'{d.dim_param or '?'}'; export the model with a fixed input size"
            )


def _check_operators(model: Any, path: Path) -> None:
    """Refuse, before anything else, the first operator on the input's dataflow that has no
    mapping (custom domains, control flow, operators missing from :data:`_TABLE`)."""
    inits = {t.name for t in model.graph.initializer}
    live = {i.name for i in model.graph.input if i.name not in inits}
    for index, node in enumerate(model.graph.node):
        std = node.domain in ("", "ai.onnx")
        if std and node.op_type in ("Shape", "Size"):
            continue  # metadata of the input: constants from here on
        if not any(i in live for i in node.input if i) and (std or node.input):
            continue  # computes on constants only
        reason = ""
        if not std:
            reason = f"operator of the custom domain '{node.domain}'"
        elif node.op_type not in _TABLE:
            reason = _WHY.get(node.op_type, "no mapping for this ONNX operator")
        if reason:
            name = node.name or f"{node.op_type.lower()}_{index}"
            raise UnsupportedOpError(
                f"ONNX {node.op_type}", name, f"ONNX file '{path.name}'", reason
            )
        live.update(o for o in node.output if o)


def _infer(model: Any, path: Path) -> Any:
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(
            model, check_type=True, strict_mode=True, data_prop=True
        )
    except Exception as exc:
        raise TraceError(f"'{path}': ONNX shape inference failed: {_first(exc)}") from None


#: Largest shape-arithmetic result folded into a constant (elements).
_FOLD_LIMIT = 65536


# Shape arithmetic that may be folded, with how its output size follows from its inputs: no
# operator outside this list is evaluated, and none whose output would exceed _FOLD_LIMIT.
_FOLD_SAME = frozenset(
    {"Cast", "Identity", "Neg", "Abs", "Sign", "Floor", "Ceil", "Not", "Squeeze", "Unsqueeze",
     "Reshape", "Flatten", "Transpose", "Slice", "ReduceProd", "ReduceSum", "ReduceMax",
     "ReduceMin", "Size", "Constant"}
)  # fmt: skip
_FOLD_BROADCAST = frozenset(
    {"Add", "Sub", "Mul", "Div", "Mod", "Min", "Max", "Equal", "Less", "Greater",
     "LessOrEqual", "GreaterOrEqual", "And", "Or", "Where"}
)  # fmt: skip


def _fold_size(op: str, args: list[Any]) -> int | None:
    """Elements the folded node would produce (an upper bound), ``None`` if it is not folded."""
    import numpy as np

    try:
        if op in _FOLD_SAME:
            return max([1, *(int(a.size) for a in args)])
        if op in _FOLD_BROADCAST:
            return math.prod(np.broadcast_shapes(*(a.shape for a in args)))
        if op == "Concat":
            return sum(int(a.size) for a in args)
        if op == "Gather":
            return int(args[0].size) * max(1, int(args[1].size))
        if op == "ConstantOfShape":
            return math.prod(max(0, int(d)) for d in args[0].reshape(-1))
        if op == "Range":
            start, limit, delta = (int(a.reshape(-1)[0]) for a in args)
            return max(0, -(-(limit - start) // delta)) if delta else None
        if op == "Expand":
            return math.prod(np.broadcast_shapes(args[0].shape, tuple(args[1].reshape(-1))))
        if op == "Tile":
            return int(args[0].size) * math.prod(max(0, int(r)) for r in args[1].reshape(-1))
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    return None


def _fold_shapes(model: Any, path: Path) -> Any:
    """Shape inference, with the input-independent integer arithmetic folded to constants.

    ``torch.onnx`` computes some shapes at run time (``Shape -> Gather -> Concat -> Slice``);
    ONNX shape inference cannot always follow that, so such integer values (``Shape`` of a
    tensor of known shape, and shape-arithmetic nodes whose inputs are all known small integer
    constants and whose result is small) are evaluated with ``onnx.reference`` (numpy, standard
    operators only), become initializers,
    and inference runs again. Float tensors and everything that depends on the input's values
    are never evaluated.
    """
    import numpy as np
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    model = _infer(model, path)
    for _ in range(16):
        g = model.graph
        static: dict[str, tuple[int, ...]] = {}
        for vi in [*g.input, *g.value_info, *g.output]:
            dims = vi.type.tensor_type.shape.dim
            if vi.type.HasField("tensor_type") and all(d.HasField("dim_value") for d in dims):
                static[vi.name] = tuple(int(d.dim_value) for d in dims)
        known: dict[str, Any] = {}
        for t in g.initializer:
            if 0 <= math.prod(t.dims) <= _FOLD_LIMIT and t.data_location != 1:
                try:
                    value = numpy_helper.to_array(t)
                except Exception:  # data that does not match its dims: not a usable constant
                    continue
                if value.dtype.kind in "iub":
                    known[t.name] = value
        folded: dict[str, Any] = {}
        for node in g.node:
            if node.domain not in ("", "ai.onnx") or any(a.type in (5, 10) for a in node.attribute):
                continue  # custom operators and subgraphs (If/Loop/Scan) are never evaluated
            inputs = [i for i in node.input if i]
            if node.op_type == "Shape" and inputs and inputs[0] in static:
                shape = static[inputs[0]]
                start, end = 0, len(shape)
                for a in node.attribute:
                    start = int(a.i) if a.name == "start" else start
                    end = int(a.i) if a.name == "end" else end
                values: Any = [np.array(shape[start:end], dtype=np.int64)]
            elif (not inputs and node.op_type != "Constant") or any(i not in known for i in inputs):
                continue
            elif (
                not 0 <= (_fold_size(node.op_type, [known[i] for i in inputs]) or -1) <= _FOLD_LIMIT
            ):
                continue  # not shape arithmetic, or a result too large to evaluate
            else:
                try:
                    single = helper.make_model(
                        helper.make_graph([node], "fold", [], []), opset_imports=model.opset_import
                    )
                    values = ReferenceEvaluator(single).run(
                        list(node.output), {i: known[i] for i in inputs}
                    )
                except Exception:
                    continue
            arrays = [np.asarray(v) for v in values]
            if any(a.dtype.kind not in "iub" or a.size > _FOLD_LIMIT for a in arrays):
                continue
            for out, a in zip(node.output, arrays, strict=False):
                if out:
                    known[out] = a
                    folded[out] = a
        if not folded:
            return model
        keep = [n for n in g.node if not all(o in folded for o in n.output if o)]
        used = {i for n in keep for i in n.input} | {o.name for o in g.output}
        new_inits = [numpy_helper.from_array(a, name) for name, a in folded.items() if name in used]
        del g.node[:]
        g.node.extend(keep)
        g.initializer.extend(new_inits)
        del g.value_info[:]
        model = _infer(model, path)
    return model


def _dtype(elem_type: int) -> str:
    import onnx

    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except Exception:
        return "unknown"


# -- the graph as fx calls of ATen operators ---------------------------------------------------
@dataclass
class _Node:
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


Translation = Callable[[_Node], tuple[Any, tuple[Any, ...]]]


def _window(n: _Node, spatial: int) -> tuple[list[int], list[int], list[int], list[int]]:
    """kernel, strides, leading pads, dilations of a conv/pool node (``auto_pad`` resolved)."""
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
            pads[i] = total // 2 if auto == "SAME_UPPER" else total - total // 2
    elif auto == "VALID":
        pads = [0] * (2 * spatial)
    return kernel, strides, pads[:spatial], dilations


def _conv(n: _Node) -> tuple[Any, tuple[Any, ...]]:
    spatial = len(n.shape(0)) - 2
    _, strides, pads, dilations = _window(n, spatial)
    transposed = n.op == "ConvTranspose"
    return aten.convolution.default, (
        n.t(0), n.t(1), n.t(2), strides, pads, dilations, transposed, [0] * spatial,
        int(n.attr("group", 1)),
    )  # fmt: skip


def _gemm(n: _Node) -> tuple[Any, tuple[Any, ...]]:
    if n.attr("transA", 0):
        raise n.refuse("Gemm with transA=1 (a transposed activation) is not mapped")
    if n.attr("transB", 0):  # Y = A @ B.T + C: torch.nn.Linear's form, B is (K, C)
        return aten.linear.default, (n.t(0), n.t(1), n.t(2))
    return aten.addmm.default, (n.t(2), n.t(0), n.t(1))


def _pool(n: _Node) -> tuple[Any, tuple[Any, ...]]:
    spatial = len(n.shape(0)) - 2
    if spatial not in (1, 2):
        raise n.refuse(f"expected a 1-D or 2-D pooling, found a {spatial}-D one")
    kernel, strides, pads, dilations = _window(n, spatial)
    ceil = bool(n.attr("ceil_mode", 0))
    if n.op == "MaxPool":
        target = aten.max_pool2d.default if spatial == 2 else aten.max_pool1d.default
        return target, (n.t(0), kernel, strides, pads, dilations, ceil)
    target = aten.avg_pool2d.default if spatial == 2 else aten.avg_pool1d.default
    return target, (n.t(0), kernel, strides, pads, ceil, bool(n.attr("count_include_pad", 0)))


def _global_pool(n: _Node) -> tuple[Any, tuple[Any, ...]]:
    spatial = len(n.shape(0)) - 2
    if spatial not in (1, 2):
        raise n.refuse(f"expected a 1-D or 2-D pooling, found a {spatial}-D one")
    kind = "avg" if n.op == "GlobalAveragePool" else "max"
    target = getattr(aten, f"adaptive_{kind}_pool{spatial}d").default
    return target, (n.t(0), [1] * spatial)


def _clip(n: _Node) -> tuple[Any, tuple[Any, ...]]:
    lo, hi = (n.attr("min"), n.attr("max")) if n.b.opset < 11 else (n.const(1), n.const(2))
    if (n.has(1) and lo is None) or (n.has(2) and hi is None):
        raise n.refuse("Clip with bounds computed from the input")
    return aten.clamp.default, (n.t(0), lo, hi)


def _axes(n: _Node, since: int) -> list[int] | None:
    """Axes of Reduce*/Squeeze/Unsqueeze: an attribute before opset ``since``, then an input."""
    axes = n.attr("axes") if n.b.opset < since else n.const(1)
    if axes is None and n.b.opset >= since and n.has(1):
        raise n.refuse("axes computed from the input")
    return None if axes is None else [int(a) for a in _as_list(axes)]


def _reduce(target: Any, since: int = 18) -> Translation:
    def translate(n: _Node) -> tuple[Any, tuple[Any, ...]]:
        axes = _axes(n, since)
        if axes is None and n.attr("noop_with_empty_axes", 0):
            return aten.alias.default, (n.t(0),)
        return target, (n.t(0), axes, bool(n.attr("keepdims", 1)))

    return translate


def _softmax(target: Any) -> Translation:
    def translate(n: _Node) -> tuple[Any, tuple[Any, ...]]:
        return target, (n.t(0), int(n.attr("axis", -1 if n.b.opset >= 13 else 1)), False)

    return translate


def _layer_norm(n: _Node) -> tuple[Any, tuple[Any, ...]]:
    shape = n.shape(0)
    axis = int(n.attr("axis", -1)) % max(1, len(shape))
    return aten.layer_norm.default, (n.t(0), list(shape[axis:]), n.t(1), n.t(2))


def _gather(n: _Node) -> tuple[Any, tuple[Any, ...]]:
    if not n.b.is_dyn(n.proto.input[0]):  # a table lookup: rows of a constant by the input
        return aten.embedding.default, (n.t(0), n.t(1))
    index = n.const(1)
    if index is None:
        raise n.refuse("indexing with an index computed from the input")
    if isinstance(index, int):
        return aten.select.int, (n.t(0), int(n.attr("axis", 0)), index)
    return aten.slice.Tensor, (n.t(0), int(n.attr("axis", 0)))


def _split(n: _Node) -> tuple[Any, tuple[Any, ...]]:
    axis = int(n.attr("axis", 0))
    sizes = [n.out_shape(i)[axis] for i in range(len(n.proto.output))]
    return aten.split_with_sizes.default, (n.t(0), sizes, axis)


def _resize(n: _Node) -> tuple[Any, tuple[Any, ...]]:
    mode = str(n.attr("mode", "nearest"))
    if mode != "nearest" or len(n.shape(0)) != 4:
        raise n.refuse(f"'{mode}' interpolation of a {len(n.shape(0))}-D tensor "
                       "(nearest-neighbour upsampling of N, C, H, W is mapped)")  # fmt: skip
    return aten.upsample_nearest2d.vec, (n.t(0), list(n.out_shape()[2:]), None)


def _einsum(n: _Node) -> tuple[Any, tuple[Any, ...]]:
    inputs = [n.t(i) for i in range(len(n.proto.input))]
    return aten.einsum.default, (str(n.attr("equation")), inputs)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _same(target: Any, *attrs: tuple[str, Any]) -> Translation:
    """Inputs in order (absent ones as ``None``), then the given attributes as arguments."""

    def translate(n: _Node) -> tuple[Any, tuple[Any, ...]]:
        args = [n.t(i) for i in range(len(n.proto.input))]
        return target, (*args, *(n.attr(k, d) for k, d in attrs))

    return translate


def _binary(target: Any) -> Translation:
    def translate(n: _Node) -> tuple[Any, tuple[Any, ...]]:
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
_TABLE: dict[str, Translation] = {
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
ONNX_OPS: tuple[str, ...] = tuple(sorted(_TABLE))

_WHY = {
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


def _onnx_constant(*args: Any) -> None:  # pragma: no cover - never called: a marker target
    """fx target of an ONNX node that computes on constants only (its value is a constant)."""


_SCOPE = re.compile(r"^[A-Za-z_][\w.]*$")


def _pretty(raw: str, op: str, index: int) -> str:
    """``/layer1/layer1.0/conv1/Conv`` (torch.onnx's scope names) -> ``layer1.0.conv1``, the
    module path the PyTorch tracer uses; other names are kept (unsafe characters -> ``_``)."""
    if not raw:
        return f"{op.lower()}_{index}"
    parts = [p for p in raw.split("/") if p]
    if raw.startswith("/") and len(parts) >= 2 and all(_SCOPE.match(p) for p in parts[:-1]):
        path, prev = "", ""  # a scope repeats its parent's name: conv, conv.0, conv.0.0
        for p in parts[:-1]:
            if prev and p.startswith(prev + "."):
                path = path[: len(path) - len(prev)] + p
            else:
                path = f"{path}.{p}" if path else p
            prev = p
        last = parts[-1].split("_")[0]
        module_ops = ("Conv", "ConvTranspose", "Gemm", "BatchNormalization", "LayerNormalization")
        if last in module_ops or path.rsplit(".", 1)[-1].lower() == last.lower():
            return path
        return f"{path}.{parts[-1].lower()}"
    return re.sub(r"[^\w.]", "_", raw.strip("/")) or f"{op.lower()}_{index}"


class _Builder:
    """Builds the fx graph of ATen calls from the inferred ONNX model."""

    def __init__(self, model: Any, path: Path) -> None:
        import onnx
        from onnx import numpy_helper

        self.model = model
        self.path = path
        self.where = f"ONNX file '{path.name}'"
        self.opset = next(
            (int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 1
        )
        g = model.graph
        self.graph = fx.Graph()
        self.info: dict[str, Any] = {}
        for vi in [*g.input, *g.value_info, *g.output]:
            tt = vi.type.tensor_type
            if vi.type.HasField("tensor_type") and tt.HasField("shape"):
                dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
                self.info[vi.name] = TensorInfo(dims, _dtype(tt.elem_type))
        self.inits = {t.name: t for t in g.initializer}
        for t in g.initializer:
            self.info[t.name] = TensorInfo(tuple(int(d) for d in t.dims), _dtype(t.data_type))
        self.const_protos: dict[str, Any] = dict(self.inits)
        self.aliases: dict[str, str] = {}  # Identity outputs -> their constant source
        for node in g.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                for a in node.attribute:
                    if a.name == "value":
                        self.const_protos[node.output[0]] = a.t
                        self.info[node.output[0]] = TensorInfo(
                            tuple(int(d) for d in a.t.dims), _dtype(a.t.data_type)
                        )
            elif node.op_type == "Identity" and node.input and node.output:
                self.aliases[node.output[0]] = node.input[0]
        self._numpy = numpy_helper
        self._onnx = onnx
        self.values: dict[str, fx.Node] = {}
        self.dyn: set[str] = set()
        self.inputs = [i for i in g.input if i.name not in self.inits]
        self.param_numel = self._parameters()

    # -- constants and parameters --------------------------------------------------------------
    def _source(self, name: str) -> str:
        seen = 0
        while name in self.aliases and seen < 10_000:
            name, seen = self.aliases[name], seen + 1
        return name

    def constant(self, name: str) -> Any:
        """A small constant tensor's value as a Python scalar or list; ``None`` otherwise."""
        proto = self.const_protos.get(self._source(name))
        if proto is None or math.prod(proto.dims) > 4096:
            return None
        if proto.data_location == self._onnx.TensorProto.EXTERNAL:
            return None
        try:
            value = self._numpy.to_array(proto).tolist()
        except Exception:
            return None
        return value

    def _parameters(self) -> dict[str, int]:
        """Float initializers except BatchNormalization's running mean and variance."""
        stats: set[str] = set()
        used: set[str] = set()
        for node in self.model.graph.node:
            for i, name in enumerate(node.input):
                src = self._source(name)
                if node.op_type == "BatchNormalization" and i in (3, 4):
                    stats.add(src)
                elif name:
                    used.add(src)
        out = {}
        for name, t in self.inits.items():
            is_float = _dtype(t.data_type).startswith(("float", "bfloat"))
            if is_float and (name not in stats or name in used):
                out[name] = math.prod(int(d) for d in t.dims)
        return out

    # -- values --------------------------------------------------------------------------------
    def is_dyn(self, name: str) -> bool:
        return name in self.dyn

    def value(self, name: str, user: _Node) -> fx.Node:
        if name in self.values:
            return self.values[name]
        if name in self.const_protos:
            p = self.graph.placeholder(f"const_{len(self.values)}")
            p.meta.update(onnx_kind="const", onnx_name=name, onnx_summary=self.info.get(name))
            self.values[name] = p
            return p
        raise TraceError(
            f"{self.where}: node '{user.proto.name or user.name}' ({user.op}) reads '{name}', "
            "which no earlier node produces (or which is an output autochip does not map)"
        )

    def _summary(self, n: _Node, i: int) -> Any:
        info = self.info.get(n.proto.output[i])
        if not isinstance(info, TensorInfo) or any(d < 0 for d in info.shape):
            shown = list(info.shape) if isinstance(info, TensorInfo) else "unknown"
            raise TraceError(
                f"{self.where}: node '{n.proto.name or n.name}' ({n.op}): expected a known shape "
                f"with non-negative sizes for output '{n.proto.output[i]}', found {shown} after "
                "shape inference (-1: unknown); export the model with a fixed input size"
            )
        return info

    # -- the walk ------------------------------------------------------------------------------
    def build(self) -> fx.Graph:
        for inp in self.inputs:
            p = self.graph.placeholder(f"input_{len(self.values)}")
            info = self.info.get(inp.name)
            p.meta.update(onnx_kind="input", onnx_name=inp.name, onnx_summary=info)
            self.values[inp.name] = p
            self.dyn.add(inp.name)
        for index, proto in enumerate(self.model.graph.node):
            if proto.op_type == "Constant" and proto.domain in ("", "ai.onnx"):
                continue
            self._node(_Node(self, proto, _pretty(proto.name, proto.op_type, index)))
        outs = [self.values[o.name] for o in self.model.graph.output if o.name in self.values]
        self.graph.output(tuple(outs))
        return self.graph

    def _node(self, n: _Node) -> None:
        proto = n.proto
        if proto.domain not in ("", "ai.onnx"):
            raise n.refuse(f"operator of the custom domain '{proto.domain}'")
        live = [name for name in proto.input if name and name in self.dyn]
        if not live:  # computes on constants only (shape arithmetic, Identity of a weight)
            args = tuple(self.value(name, n) for name in proto.input if name)
            fn = self.graph.call_function(_onnx_constant, args)
            fn.meta.update(onnx_op=n.op, onnx_name=n.name, onnx_summary=self._const_summary(n))
            for out in proto.output:
                if out:
                    self.values[out] = fn
            return
        translate = _TABLE.get(n.op)
        if translate is None:
            raise n.refuse(_WHY.get(n.op, "no mapping for this ONNX operator"))
        try:
            target, args = translate(n)
        except AutochipError:
            raise
        except Exception as exc:  # an attribute pattern the translation does not know
            raise n.refuse(
                f"this use of it is not mapped ({type(exc).__name__}: {_first(exc)})"
            ) from None
        call = self.graph.call_function(target, args)
        outputs = [o for o in proto.output if o]
        call.meta.update(onnx_op=n.op, onnx_name=n.name, onnx_raw=proto.name)
        if n.op == "Shape":
            shape = n.shape(0)
            start, end = n.attr("start", 0), n.attr("end", len(shape))
            call.meta["onnx_summary"] = tuple(shape[start:end])
            self.values[outputs[0]] = call
            return
        if n.op == "Size":
            call.meta["onnx_summary"] = math.prod(n.shape(0))
            self.values[outputs[0]] = call
            return
        if n.op == "Split":
            call.meta["onnx_summary"] = tuple(self._summary(n, i) for i in range(len(outputs)))
            for i, out in enumerate(outputs):
                item = self.graph.call_function(operator.getitem, (call, i))
                item.meta.update(onnx_op=n.op, onnx_name=n.name, onnx_raw=proto.name,
                                 onnx_summary=call.meta["onnx_summary"][i])  # fmt: skip
                self.values[out] = item
                self.dyn.add(out)
            return
        call.meta["onnx_summary"] = self._summary(n, 0)
        self.values[proto.output[0]] = call
        self.dyn.add(proto.output[0])  # further outputs (indices, mask, statistics): not mapped

    def _const_summary(self, n: _Node) -> Any:
        info = self.info.get(n.proto.output[0]) if n.proto.output else None
        if isinstance(info, TensorInfo) and all(d >= 0 for d in info.shape):
            return info
        return None


class _OnnxLowering(Lowering):
    frontend = "onnx"

    def __init__(self, b: _Builder, name: str) -> None:
        super().__init__(name, b.param_numel, sum(b.param_numel.values()))
        self.b = b

    def summary(self, n: fx.Node) -> Any:
        return n.meta.get("onnx_summary")

    def placeholder(self, n: fx.Node) -> Value:
        info = n.meta.get("onnx_summary")
        name = str(n.meta.get("onnx_name", n.name))
        if n.meta.get("onnx_kind") == "input":
            if not isinstance(info, TensorInfo) or any(d < 0 for d in info.shape):
                raise TraceError(
                    f"{self.b.where}: expected input '{name}' to have a fixed shape, found "
                    f"{list(info.shape) if isinstance(info, TensorInfo) else 'none'}"
                )
            return self.add_input(re.sub(r"[^\w.]", "_", name) or "input", info.shape)
        src = self.b._source(name)
        keys = frozenset({src}) if src in self.param_numel else frozenset()
        return Const(info.shape if isinstance(info, TensorInfo) else None, keys)

    def get_attr(self, n: fx.Node) -> Value:  # pragma: no cover - the builder makes none
        return Meta(None)

    def op_name(self, n: fx.Node, module: nn.Module | None) -> tuple[str, str]:
        op, _ = super().op_name(n, module)
        return op, f"ONNX {n.meta.get('onnx_op', n.name)}"

    def preferred_name(self, n: fx.Node, op: str) -> str:
        return str(n.meta.get("onnx_name", n.name))

    def context(self, n: fx.Node) -> str:
        return self.b.where

    def unsupported(self, call: Call, reason: str = "") -> UnsupportedOpError:
        raw = call.node.meta.get("onnx_raw") or call.name
        return UnsupportedOpError(call.display, str(raw), self.b.where, reason)


def trace_onnx(path: str | Path, name: str | None = None) -> AccelGraph:
    """The raw AccelGraph of an ONNX file (no passes applied)."""
    path = Path(path)
    model = _read(path)
    _static_inputs(model, path)
    _check_operators(model, path)
    model = _fold_shapes(model, path)
    builder = _Builder(model, path)
    fx_graph = builder.build()
    graph = _OnnxLowering(builder, name or path.stem).run(fx_graph)
    graph.attrs["frontend"] = "onnx"
    return graph

"""Op handlers of the vector operators: normalisation, activations, softmax, elementwise
arithmetic, concatenation and reductions."""

from __future__ import annotations

from typing import Any

from torch import nn

from autochip.ir._lower import Call, Lowering, unwrap
from autochip.ir._op_util import Handler, json_scalar, module_param_count, need_dyn, numel
from autochip.ir._values import Const, Dyn, Meta
from autochip.ir.node import OpKind

__all__ = ["FUNCTIONS", "MODULES"]


# -- normalisation, activation, softmax --------------------------------------------------------
def _norm(kind: OpKind, input_index: int) -> Handler:
    def handler(lo: Lowering, call: Call) -> Any:
        x = need_dyn(call, call.arg(input_index, "input"), "input")
        attrs: dict[str, Any] = {}
        if kind is OpKind.BATCHNORM:
            if len(x.shape) < 2:
                raise lo.unsupported(call, f"batch-norm over shape {list(x.shape)}")
            attrs["channels"] = x.shape[1]
        elif call.op in ("group_norm", "native_group_norm") or isinstance(
            call.module, nn.GroupNorm
        ):
            m = call.module
            groups = m.num_groups if isinstance(m, nn.GroupNorm) else call.plain(1, "num_groups")
            if call.op == "native_group_norm":  # (input, weight, bias, N, C, HxW, group, eps)
                groups = call.plain(6, "group")
            attrs.update({"norm": "group", "groups": int(groups)})
        elif call.op == "normalize":  # F.normalize: x / max(||x||_p, eps) along dim
            attrs.update({"norm": "lp", "p": float(call.plain(1, "p", 2.0))})
        elif call.op == "instance_norm" or isinstance(
            call.module, nn.modules.instancenorm._InstanceNorm
        ):
            attrs.update({"norm": "instance", "groups": x.shape[1] if len(x.shape) > 1 else 1})
        else:
            m = call.module
            shape = (
                m.normalized_shape
                if isinstance(m, nn.LayerNorm)
                else call.plain(1, "normalized_shape")
            )
            attrs["normalized_shape"] = [int(d) for d in shape]
        params = module_param_count(lo, call)
        out = lo.add(call, kind, [x], ops=numel(x.shape), params=params, attrs=attrs,
                     output_shape=x.shape)  # fmt: skip
        if isinstance(call.out, tuple | list):  # native_batch_norm / native_layer_norm tuples
            return (out, *(Meta(None) for _ in call.out[1:]))
        return out

    return handler


_ACTIVATION_MODULES: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.ReLU, "relu"),
    (nn.ReLU6, "relu6"),
    (nn.Hardtanh, "hardtanh"),
    (nn.GELU, "gelu"),
    (nn.Sigmoid, "sigmoid"),
    (nn.Tanh, "tanh"),
    (nn.SiLU, "silu"),
    (nn.Hardswish, "hardswish"),
    (nn.Hardsigmoid, "hardsigmoid"),
    (nn.LeakyReLU, "leaky_relu"),
    (nn.ELU, "elu"),
    (nn.PReLU, "prelu"),
    (nn.Softplus, "softplus"),
    (nn.Mish, "mish"),
)
# Elementwise functions of one activation (mapped like an activation: one op per element).
_UNARY_MATH = frozenset(
    {"exp", "log", "sqrt", "rsqrt", "abs", "reciprocal", "erf", "sin", "cos", "square", "log1p",
     "expm1", "sign", "round", "floor", "ceil", "softsign", "logsigmoid", "hardshrink",
     "logical_not", "bitwise_not", "invert"}
)  # fmt: skip
_ACTIVATION_FNS = frozenset(
    {name for _, name in _ACTIVATION_MODULES}
    | {"clamp", "clip", "clamp_min", "threshold", "relu6"}
    | _UNARY_MATH
)


def _activation(lo: Lowering, call: Call) -> Any:
    x = need_dyn(call, call.arg(0, "input"), "input")
    function = call.op
    if call.module is not None:
        function = next(f for cls, f in _ACTIVATION_MODULES if isinstance(call.module, cls))
        if isinstance(call.module, nn.Hardtanh) and not isinstance(call.module, nn.ReLU6):
            lo_, hi = call.module.min_val, call.module.max_val
            function = "relu6" if (lo_, hi) == (0.0, 6.0) else function
    elif function == "hardtanh":
        bounds = (float(call.plain(1, "min_val", -1.0)), float(call.plain(2, "max_val", 1.0)))
        function = "relu6" if bounds == (0.0, 6.0) else function
    elif function == "clamp_min" and float(call.plain(1, "min", 1.0)) == 0.0:
        function = "relu"
    elif function in ("clamp", "clip"):
        bounds = (
            json_scalar(call.plain(1, "min", None)),
            json_scalar(call.plain(2, "max", None)),
        )
        function = {(0, None): "relu", (0, 6): "relu6"}.get(bounds, "clamp")  # type: ignore[arg-type]
    attrs: dict[str, Any] = {"function": function}
    if function == "leaky_relu":
        slope = (
            call.module.negative_slope
            if call.module is not None
            else call.plain(1, "negative_slope", 0.01)
        )
        attrs["negative_slope"] = float(unwrap(slope))
    return lo.add(call, OpKind.ACTIVATION, [x], ops=numel(x.shape),
                  params=module_param_count(lo, call), attrs=attrs)  # fmt: skip


def _softmax(lo: Lowering, call: Call) -> Any:
    x = need_dyn(call, call.arg(0, "input"), "input")
    dim: Any = call.module.dim if call.module is not None else call.plain(1, "dim", -1)
    dim = int(dim) % len(x.shape) if dim is not None else len(x.shape) - 1
    return lo.add(call, OpKind.SOFTMAX, [x], ops=numel(x.shape),
                  attrs={"dim": dim, "log": "log" in call.op or "Log" in call.display})  # fmt: skip


# -- elementwise, concat, reductions -----------------------------------------------------------
_COMPARE = frozenset({"gt", "lt", "ge", "le", "eq", "ne", "logical_and", "logical_or", "and", "or"})
_ADD_LIKE = (
    frozenset({"add", "sub", "rsub", "maximum", "minimum", "masked_fill", "where"}) | _COMPARE
)


def _eltwise(lo: Lowering, call: Call) -> Any:
    if call.op == "where":  # where(condition, input, other)
        operands = [call.arg(1, "input"), call.arg(2, "other"), call.arg(0, "condition")]
    else:
        operands = [call.arg(0, "input"), call.arg(1, "other", None)]
        if call.op == "masked_fill":
            operands = [call.arg(0, "input"), call.arg(2, "value"), call.arg(1, "mask")]
    dyn = [v for v in operands if isinstance(v, Dyn)]
    attrs: dict[str, Any] = {"op": call.op}
    consts = [v for v in operands if isinstance(v, Const)]
    if consts:
        attrs["const_shapes"] = [list(c.shape or ()) for c in consts]
    scalars = [
        json_scalar(unwrap(v))
        for v in operands[1:]
        if isinstance(v, Meta) or not isinstance(v, Dyn | Const)
    ]
    if scalars and scalars[0] is not None:
        attrs["scalar"] = scalars[0]
    if call.op == "pow" and len(dyn) == 1 and "scalar" in attrs and not consts:
        return lo.add(call, OpKind.ACTIVATION, dyn, ops=call.out_numel,
                      attrs={"function": "pow", "exponent": attrs["scalar"]})  # fmt: skip
    kind = OpKind.ADD if call.op in _ADD_LIKE else OpKind.MUL
    return lo.add(call, kind, dyn, ops=call.out_numel, attrs=attrs)


def _max_min(lo: Lowering, call: Call) -> Any:
    """max/min: a reduction (with or without ``dim``) or, with two tensors, elementwise."""
    other = call.arg(1, "other", None)
    if isinstance(other, Dyn | Const):
        call.op = {"max": "maximum", "min": "minimum"}[call.op]
        return _eltwise(lo, call)
    return _reduce(lo, call)


def _concat(lo: Lowering, call: Call) -> Any:
    tensors = call.arg(0, "tensors")
    dim = int(call.plain(1, "dim", 0))
    rank = len(call.out_shape)
    dyn = [t for t in tensors if isinstance(t, Dyn)]
    consts = [list(t.shape or ()) for t in tensors if isinstance(t, Const)]
    attrs: dict[str, Any] = {"axis": dim % rank, "op": call.op}
    if consts:
        attrs["const_shapes"] = consts
    return lo.add(call, OpKind.CONCAT, dyn, attrs=attrs)


def _reduce(lo: Lowering, call: Call) -> Any:
    x = need_dyn(call, call.arg(0, "input"), "input")
    dims = unwrap(call.arg(2 if "norm" in call.op else 1, "dim", None))
    if isinstance(dims, int):
        dims = [dims]
    if not isinstance(dims, list | tuple):
        dims = []
    axes = list(range(len(x.shape))) if not dims else sorted(int(d) % len(x.shape) for d in dims)
    keepdim = len(call.out_shape) == len(x.shape) and len(x.shape) > 0
    attrs = {"op": call.op, "axes": axes, "keepdim": keepdim}
    out = lo.add(call, OpKind.MEAN, [x], ops=numel(x.shape), attrs=attrs)
    if isinstance(call.out, tuple | list):  # max/min with dim: (values, indices)
        return (out, Meta(None))
    return out


FUNCTIONS: dict[str, Handler] = {
    "batch_norm": _norm(OpKind.BATCHNORM, 0),
    "native_batch_norm": _norm(OpKind.BATCHNORM, 0),
    "native_batch_norm_legit_no_training": _norm(OpKind.BATCHNORM, 0),
    "layer_norm": _norm(OpKind.LAYERNORM, 0),
    "native_layer_norm": _norm(OpKind.LAYERNORM, 0),
    "group_norm": _norm(OpKind.LAYERNORM, 0),
    "native_group_norm": _norm(OpKind.LAYERNORM, 0),
    "instance_norm": _norm(OpKind.LAYERNORM, 0),
    "softmax": _softmax,
    "log_softmax": _softmax,
    "add": _eltwise,
    "sub": _eltwise,
    "rsub": _eltwise,
    "mul": _eltwise,
    "div": _eltwise,
    "neg": _eltwise,
    "pow": _eltwise,
    "maximum": _eltwise,
    "minimum": _eltwise,
    "masked_fill": _eltwise,
    "where": _eltwise,
    "max": _max_min,
    "min": _max_min,
    "cat": _concat,
    "stack": _concat,
    "mean": _reduce,
    "sum": _reduce,
    "amax": _reduce,
    "amin": _reduce,
    "var": _reduce,
    "std": _reduce,
    "logsumexp": _reduce,
    "norm": _reduce,
    "linalg_vector_norm": _reduce,
    "argmax": _reduce,
    "argmin": _reduce,
    "normalize": _norm(OpKind.LAYERNORM, 0),
}
FUNCTIONS.update({name: _activation for name in _ACTIVATION_FNS})
FUNCTIONS.update({name: _eltwise for name in _COMPARE})

MODULES: tuple[tuple[tuple[type[nn.Module], ...], Handler], ...] = (
    ((nn.BatchNorm1d, nn.BatchNorm2d), _norm(OpKind.BATCHNORM, 0)),
    (
        (nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm),
        _norm(OpKind.LAYERNORM, 0),
    ),
    (tuple(cls for cls, _ in _ACTIVATION_MODULES), _activation),
    ((nn.Softmax, nn.LogSoftmax), _softmax),
)

"""The op table: how each PyTorch / ATen operator becomes AccelGraph nodes.

Every handler takes the :class:`~autochip.ir._lower.Lowering` and one :class:`Call` and returns
the value of the call. Operators are looked up by a canonical name (``conv2d``, ``add``, ...),
the same for ``torch.*`` functions, ``Tensor`` methods, ``torch.nn.functional`` and ATen
overloads, so the fx and the export front ends share this one table. Modules (``call_module``)
are looked up by class.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn

from autochip.errors import TraceError
from autochip.ir._lower import Call, Lowering, unwrap
from autochip.ir._values import Const, Dyn, Meta, Pieces, TensorInfo
from autochip.ir.node import Arithmetic, LoopDims, OpKind
from autochip.ir.validate import EXPAND_OPS, NOOP_OPS, VIEW_OPS

__all__ = ["META_OPS", "handler_for", "op_name", "why_unsupported"]

Handler = Callable[[Lowering, Call], Any]

# Ops that only read metadata (shape, rank) of an activation, or check it.
META_OPS = frozenset(
    {"size", "dim", "numel", "getattr", "len", "sym_size", "ndimension", "sym_numel",
     "assert_tensor_metadata", "assert_async", "assert_scalar", "sym_constrain_range_for_size"}
)  # fmt: skip

_OPERATOR_NAMES = {
    operator.add: "add",
    operator.iadd: "add",
    operator.sub: "sub",
    operator.isub: "sub",
    operator.mul: "mul",
    operator.imul: "mul",
    operator.truediv: "div",
    operator.itruediv: "div",
    operator.neg: "neg",
    operator.matmul: "matmul",
    operator.getitem: "getitem",
}


def op_name(n: fx.Node, module: nn.Module | None) -> tuple[str, str]:
    """(canonical name, name shown to the user) of a call node."""
    target = n.target
    if n.op == "call_module":
        cls = type(module)
        prefix = "nn." if cls.__module__.startswith("torch.nn") else f"{cls.__module__}."
        return "", f"{prefix}{cls.__name__}"
    if n.op == "call_method":
        name = str(target)
        return _canonical(name), f"Tensor.{name}"
    if isinstance(target, torch._ops.OpOverload):
        return _canonical(target._schema.name.split("::")[-1]), str(target)
    if target in _OPERATOR_NAMES:
        return _OPERATOR_NAMES[target], f"operator.{getattr(target, '__name__', target)}"
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", repr(target))
    shown = {"torch._C._nn": "torch.nn.functional", "torch._C._fft": "torch.fft"}.get(mod, mod)
    display = f"{shown}.{name}" if shown else name
    if mod.startswith("torch") or mod in ("builtins", "_operator", "math"):
        return _canonical(name), display
    return "", display


def _canonical(name: str) -> str:
    name = name.strip("_")
    return {"iadd": "add", "truediv": "div", "concat": "cat", "concatenate": "cat"}.get(name, name)


# -- helpers -----------------------------------------------------------------------------------
def _pair(value: Any, what: str, call: Call) -> tuple[int, int]:
    value = unwrap(value)
    if isinstance(value, int):
        return value, value
    if isinstance(value, tuple | list) and len(value) == 1:
        return int(value[0]), int(value[0])
    if isinstance(value, tuple | list) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise TraceError(
        f"node '{call.name}' ({call.display}): expected {what} as an int or a pair of ints, "
        f"found {value!r}"
    )


def _need_dyn(call: Call, value: Any, what: str) -> Dyn:
    if isinstance(value, Dyn):
        return value
    raise TraceError(
        f"node '{call.name}' ({call.display}): expected the {what} to be an activation tensor, "
        f"found {type(value).__name__}"
    )


def _need_4d(lo: Lowering, call: Call, x: Dyn) -> None:
    if len(x.shape) != 4:
        raise lo.unsupported(
            call, f"expected a 4-D (N, C, H, W) input, found shape {list(x.shape)}"
        )


def _arith(call: Call) -> tuple[Arithmetic | None, float]:
    module = call.module
    if module is None or not hasattr(module, "autochip_arithmetic"):
        return None, 0.0
    arith = module.autochip_arithmetic
    if not isinstance(arith, Arithmetic):
        raise TraceError(
            f"module '{call.name}' ({call.display}): expected autochip_arithmetic to be an "
            f"autochip.ir.node.Arithmetic, found {type(arith).__name__}"
        )
    sparsity = getattr(module, "autochip_sparsity", 0.0)
    if not isinstance(sparsity, int | float) or not 0.0 <= float(sparsity) <= 1.0:
        raise TraceError(
            f"module '{call.name}' ({call.display}): expected autochip_sparsity to be a "
            f"fraction in [0, 1], found {sparsity!r}"
        )
    return arith, float(sparsity)


def _module_param_count(lo: Lowering, call: Call) -> int:
    return lo.claim(call, call.extra.get("module_params", frozenset()))


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


# -- convolution -------------------------------------------------------------------------------
def _conv(
    lo: Lowering,
    call: Call,
    x: Dyn,
    weight_shape: tuple[int, ...],
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    params: int,
) -> Dyn:
    one_d = len(weight_shape) == 3  # a 1-D convolution runs as a 2-D one with H = R = 1
    if one_d and len(x.shape) == 3:
        n, c, w = x.shape
        h, (k, c_per_group, s), r, p, q = 1, weight_shape, 1, 1, call.out_shape[2]
    else:
        _need_4d(lo, call, x)
        if len(weight_shape) != 4:
            raise lo.unsupported(
                call, f"expected a 1-D or 2-D convolution kernel, found {weight_shape}"
            )
        n, c, h, w = x.shape
        k, c_per_group, r, s = weight_shape
        p, q = call.out_shape[2:]
    sh, sw = _pair(stride, "stride", call)
    dh, dw = _pair(dilation, "dilation", call)
    padding = unwrap(padding)
    if isinstance(padding, str):  # 'same' / 'valid': recover the (leading) padding from shapes
        ph = max(0, ((p - 1) * sh + dh * (r - 1) + 1 - h) // 2)
        pw = max(0, ((q - 1) * sw + dw * (s - 1) + 1 - w) // 2)
    else:
        ph, pw = _pair(padding, "padding", call)
    if one_d:
        sh, dh, ph = 1, 1, 0
    if c != c_per_group * groups:
        raise TraceError(
            f"node '{call.name}': expected {c_per_group * groups} input channels "
            f"(kernel {c_per_group} x groups {groups}), found {c}"
        )
    dims = LoopDims(
        N=n, K=k, C=c, P=p, Q=q, R=r, S=s, H=h, W=w,
        stride_h=sh, stride_w=sw, pad_h=ph, pad_w=pw, dil_h=dh, dil_w=dw, groups=groups,
    )  # fmt: skip
    arith, sparsity = _arith(call)
    attrs: dict[str, Any] = {"padding": padding} if isinstance(padding, str) else {}
    if one_d:
        attrs["conv1d"] = True
    if groups > 1:
        attrs["depthwise"] = groups == c and k % c == 0
    return lo.add(
        call, OpKind.CONV2D, [x], dims=dims, macs=dims.macs, params=params,
        arithmetic=arith, sparsity=sparsity, attrs=attrs,
    )  # fmt: skip


def _conv_module(lo: Lowering, call: Call) -> Any:
    m = call.module
    assert isinstance(m, nn.Conv2d | nn.Conv1d)
    x = _need_dyn(call, call.arg(0, "input"), "input")
    shape = (m.out_channels, m.in_channels // m.groups, *m.kernel_size)
    if m.padding_mode != "zeros":
        call.extra["padding_mode"] = m.padding_mode
    params = _module_param_count(lo, call)
    return _conv(lo, call, x, shape, m.stride, m.padding, m.dilation, m.groups, params)


def _conv_fn(lo: Lowering, call: Call) -> Any:
    x = _need_dyn(call, call.arg(0, "input"), "input")
    weight = call.arg(1, "weight")
    if call.op == "convolution":  # aten.convolution(input, weight, bias, stride, padding,
        if unwrap(call.arg(6, "transposed")):  # dilation, transposed, output_padding, groups)
            raise lo.unsupported(call, "transposed convolution")
        stride, padding, dilation = (
            call.arg(3, "stride"),
            call.arg(4, "padding"),
            call.arg(5, "dilation"),
        )
        groups = call.plain(8, "groups")
    else:
        stride, padding = call.arg(3, "stride", 1), call.arg(4, "padding", 0)
        dilation, groups = call.arg(5, "dilation", 1), call.plain(6, "groups", 1)
    if not isinstance(weight, Const) or weight.shape is None:
        raise lo.unsupported(call, "convolution with a weight computed from the input")
    return _conv(lo, call, x, weight.shape, stride, padding, dilation, int(groups), lo.claim(call))


# -- linear and matmul -------------------------------------------------------------------------
def _linear(lo: Lowering, call: Call, x: Dyn, c: int, k: int, params: int, **attrs: Any) -> Dyn:
    out = call.out_shape
    if not x.shape or (x.shape[-1] != c and attrs.get("weight_side") != "left"):
        raise TraceError(
            f"node '{call.name}': expected an input whose last dimension is {c}, found "
            f"{list(x.shape)}"
        )
    dims = LoopDims(N=_numel(out) // k, K=k, C=c)
    arith, sparsity = _arith(call)
    return lo.add(
        call, OpKind.LINEAR, [x], dims=dims, macs=dims.macs, params=params,
        arithmetic=arith, sparsity=sparsity, attrs=attrs,
    )  # fmt: skip


def _linear_module(lo: Lowering, call: Call) -> Any:
    m = call.module
    assert isinstance(m, nn.Linear)
    x = _need_dyn(call, call.arg(0, "input"), "input")
    return _linear(lo, call, x, m.in_features, m.out_features, _module_param_count(lo, call))


def _linear_fn(lo: Lowering, call: Call) -> Any:
    if call.op == "addmm":  # addmm(bias, mat1, mat2) = bias + mat1 @ mat2
        return _matmul(lo, call, call.arg(1, "mat1"), call.arg(2, "mat2"))
    x, weight = call.arg(0, "input"), call.arg(1, "weight")
    if isinstance(weight, Dyn):  # F.linear with an activation as weight: x @ w.T
        x = _need_dyn(call, x, "input")
        return _dynamic_matmul(lo, call, x, weight, weight.shape[-1] if weight.shape else 1)
    x = _need_dyn(call, x, "input")
    if not isinstance(weight, Const) or weight.shape is None or len(weight.shape) != 2:
        raise TraceError(f"node '{call.name}': expected a 2-D weight (K, C), found {weight!r}")
    k, c = weight.shape
    return _linear(lo, call, x, c, k, lo.claim(call))


def _dynamic_matmul(lo: Lowering, call: Call, a: Dyn, b: Dyn, c: int) -> Dyn:
    out = call.out_shape
    k = out[-1] if len(b.shape) >= 2 and out else 1
    dims = LoopDims(N=_numel(out) // k, K=k, C=c, dynamic_weights=True)
    return lo.add(call, OpKind.MATMUL, [a, b], dims=dims, macs=dims.macs, params=lo.claim(call))


def _matmul(lo: Lowering, call: Call, a: Any, b: Any) -> Any:
    if isinstance(a, Dyn) and isinstance(b, Dyn):
        return _dynamic_matmul(lo, call, a, b, a.shape[-1])
    if isinstance(a, Dyn) and isinstance(b, Const) and b.shape:
        c = b.shape[-2] if len(b.shape) >= 2 else b.shape[0]
        k = b.shape[-1] if len(b.shape) >= 2 else 1
        return _linear(lo, call, a, c, k, lo.claim(call), op=call.op)
    if isinstance(a, Const) and isinstance(b, Dyn) and a.shape:
        k = a.shape[-2] if len(a.shape) >= 2 else 1
        c = a.shape[-1]
        return _linear(lo, call, b, c, k, lo.claim(call), op=call.op, weight_side="left")
    raise lo.unsupported(call, "expected two tensor operands")


def _baddbmm(lo: Lowering, call: Call) -> Any:
    """baddbmm(input, batch1, batch2) = beta * input + alpha * batch1 @ batch2."""
    return _matmul(lo, call, call.arg(1, "batch1"), call.arg(2, "batch2"))


def _attention(lo: Lowering, call: Call) -> Any:
    """scaled_dot_product_attention(q, k, v): two dynamic matmuls around a softmax."""
    q = _need_dyn(call, call.arg(0, "query"), "query")
    k = _need_dyn(call, call.arg(1, "key"), "key")
    v = _need_dyn(call, call.arg(2, "value"), "value")
    if len(q.shape) < 2 or len(k.shape) < 2 or len(v.shape) < 2:
        raise lo.unsupported(call, "expected query, key and value with at least 2 dimensions")
    out = call.out_shape
    scores_shape = (*out[:-1], k.shape[-2])
    name = call.name
    qk_call = dataclasses.replace(call, name=lo.unique(f"{name}.qk"), out=TensorInfo(scores_shape))
    e, s_len = q.shape[-1], k.shape[-2]
    qk_dims = LoopDims(N=_numel(scores_shape) // s_len, K=s_len, C=e, dynamic_weights=True)
    scores = lo.add(qk_call, OpKind.MATMUL, [q, k], dims=qk_dims, macs=qk_dims.macs,
                    ops=_numel(scores_shape), attrs={"transpose_b": True}, params=0)  # fmt: skip
    attrs: dict[str, Any] = {"dim": len(scores_shape) - 1, "log": False}
    if unwrap(call.arg(5, "is_causal", False)):
        attrs["causal"] = True
    sm_call = dataclasses.replace(
        call, name=lo.unique(f"{name}.softmax"), out=TensorInfo(scores_shape)
    )
    probs = lo.add(
        sm_call, OpKind.SOFTMAX, [scores], ops=_numel(scores_shape), attrs=attrs, params=0
    )
    av_dims = LoopDims(N=_numel(out) // out[-1], K=out[-1], C=s_len, dynamic_weights=True)
    return lo.add(call, OpKind.MATMUL, [probs, v], dims=av_dims, macs=av_dims.macs)


def _einsum(lo: Lowering, call: Call) -> Any:
    """A two-operand einsum contraction: MACs = out.numel() x the contracted index sizes."""
    equation = str(call.plain(0, "equation")).replace(" ", "")
    operands = list(call.args[1:])
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = list(operands[0])
    if len(operands) != 2 or "." in equation:
        raise lo.unsupported(call, "only two-operand einsum without '...' is mapped")
    a, b = operands
    if not isinstance(a, Dyn | Const) or not isinstance(b, Dyn | Const):
        raise lo.unsupported(call, "expected two tensor operands")
    inputs, _, output = equation.partition("->")
    terms = inputs.split(",")
    shapes = [a.shape or (), b.shape or ()]
    if len(terms) != 2 or any(len(t) != len(sh) for t, sh in zip(terms, shapes, strict=True)):
        raise TraceError(f"node '{call.name}': einsum '{equation}' does not fit shapes {shapes}")
    if not _:  # implicit output: the indices that appear once, in alphabetical order
        output = "".join(sorted(c for c in set(inputs) - {","} if inputs.count(c) == 1))
    size = {c: d for t, sh in zip(terms, shapes, strict=True) for c, d in zip(t, sh, strict=True)}
    c = math.prod(size[ch] for ch in set(terms[0] + terms[1]) - set(output))
    out = call.out_shape
    k = out[-1] if out else 1
    dims = LoopDims(
        N=_numel(out) // k, K=k, C=c, dynamic_weights=isinstance(b, Dyn) and isinstance(a, Dyn)
    )
    attrs = {"equation": equation}
    if dims.dynamic_weights:
        return lo.add(call, OpKind.MATMUL, [a, b], dims=dims, macs=dims.macs, attrs=attrs)  # type: ignore[list-item]
    x = a if isinstance(a, Dyn) else b
    assert isinstance(x, Dyn)
    return lo.add(call, OpKind.LINEAR, [x], dims=dims, macs=dims.macs, attrs=attrs)


def _matmul_fn(lo: Lowering, call: Call) -> Any:
    key = "mat2" if call.op in ("mm", "bmm") else "other"
    return _matmul(lo, call, call.arg(0, "input"), call.arg(1, key))


# -- normalisation, activation, softmax --------------------------------------------------------
def _norm(kind: OpKind, input_index: int) -> Handler:
    def handler(lo: Lowering, call: Call) -> Any:
        x = _need_dyn(call, call.arg(input_index, "input"), "input")
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
        params = _module_param_count(lo, call)
        out = lo.add(call, kind, [x], ops=_numel(x.shape), params=params, attrs=attrs,
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
    x = _need_dyn(call, call.arg(0, "input"), "input")
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
            _json_scalar(call.plain(1, "min", None)),
            _json_scalar(call.plain(2, "max", None)),
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
    return lo.add(call, OpKind.ACTIVATION, [x], ops=_numel(x.shape),
                  params=_module_param_count(lo, call), attrs=attrs)  # fmt: skip


def _softmax(lo: Lowering, call: Call) -> Any:
    x = _need_dyn(call, call.arg(0, "input"), "input")
    dim: Any = call.module.dim if call.module is not None else call.plain(1, "dim", -1)
    dim = int(dim) % len(x.shape) if dim is not None else len(x.shape) - 1
    return lo.add(call, OpKind.SOFTMAX, [x], ops=_numel(x.shape),
                  attrs={"dim": dim, "log": "log" in call.op or "Log" in call.display})  # fmt: skip


# -- pooling -----------------------------------------------------------------------------------
def _pool(
    lo: Lowering, call: Call, kind: OpKind, kernel: Any, stride: Any, padding: Any,
    dilation: Any, ceil_mode: bool, extra: dict[str, Any] | None = None,
) -> Any:  # fmt: skip
    x = _need_dyn(call, call.arg(0, "input"), "input")
    one_d = len(x.shape) == 3 and "1d" in call.op + type(call.module).__name__
    if one_d:
        n, c, w = x.shape
        h, p, q = 1, 1, call.out_shape[2]
    else:
        _need_4d(lo, call, x)
        n, c, h, w = x.shape
        p, q = call.out_shape[2:]
    r, s = _pair(kernel, "kernel_size", call)
    stride = unwrap(stride)
    sh, sw = (
        (r, s) if stride is None or stride == [] or stride == () else _pair(stride, "stride", call)
    )
    ph, pw = _pair(padding, "padding", call)
    dh, dw = _pair(dilation, "dilation", call)
    if one_d:
        r, sh, ph, dh = 1, 1, 0, 1
        extra = {**(extra or {}), "pool1d": True}
    dims = LoopDims(N=n, K=c, C=c, P=p, Q=q, R=r, S=s, H=h, W=w, stride_h=sh, stride_w=sw,
                    pad_h=ph, pad_w=pw, dil_h=dh, dil_w=dw, groups=c)  # fmt: skip
    attrs = {"ceil_mode": bool(ceil_mode), "adaptive": False, **(extra or {})}
    out = lo.add(call, kind, [x], dims=dims, ops=n * c * p * q * r * s, attrs=attrs)
    return (out, Meta(None)) if isinstance(call.out, tuple | list) else out


def _adaptive_windows(size: int, out: int) -> list[int]:
    """Window lengths of adaptive pooling: [floor(i*size/out), ceil((i+1)*size/out))."""
    return [-(-(i + 1) * size // out) - (i * size // out) for i in range(out)]


def _adaptive_pool(lo: Lowering, call: Call, kind: OpKind) -> Any:
    x = _need_dyn(call, call.arg(0, "input"), "input")
    one_d = len(x.shape) == 3 and "1d" in call.op + type(call.module).__name__
    if one_d:
        (n, c, w), h, p, q = x.shape, 1, 1, call.out_shape[2]
    else:
        _need_4d(lo, call, x)
        n, c, h, w = x.shape
        p, q = call.out_shape[2:]
    wh, ww = _adaptive_windows(h, p), _adaptive_windows(w, q)
    regular = h % p == 0 and w % q == 0
    dims = LoopDims(N=n, K=c, C=c, P=p, Q=q, R=max(wh), S=max(ww), H=h, W=w,
                    stride_h=max(1, h // p), stride_w=max(1, w // q), groups=c)  # fmt: skip
    attrs: dict[str, Any] = {"ceil_mode": False, "adaptive": True, "regular": regular}
    if one_d:
        attrs["pool1d"] = True
    out = lo.add(call, kind, [x], dims=dims, ops=n * c * sum(wh) * sum(ww), attrs=attrs)
    return (out, Meta(None)) if isinstance(call.out, tuple | list) else out


def _maxpool_fn(lo: Lowering, call: Call) -> Any:
    return _pool(lo, call, OpKind.MAXPOOL, call.arg(1, "kernel_size"), call.arg(2, "stride", None),
                 call.arg(3, "padding", 0), call.arg(4, "dilation", 1),
                 bool(call.plain(5, "ceil_mode", False)))  # fmt: skip


def _avgpool_fn(lo: Lowering, call: Call) -> Any:
    include_pad = bool(call.plain(5, "count_include_pad", True))
    return _pool(lo, call, OpKind.AVGPOOL, call.arg(1, "kernel_size"), call.arg(2, "stride", None),
                 call.arg(3, "padding", 0), 1, bool(call.plain(4, "ceil_mode", False)),
                 {"count_include_pad": include_pad})  # fmt: skip


def _pool_module(lo: Lowering, call: Call) -> Any:
    m = call.module
    if isinstance(m, nn.MaxPool2d | nn.MaxPool1d):
        return _pool(lo, call, OpKind.MAXPOOL, m.kernel_size, m.stride, m.padding, m.dilation,
                     m.ceil_mode)  # fmt: skip
    if isinstance(m, nn.AvgPool2d | nn.AvgPool1d):
        return _pool(lo, call, OpKind.AVGPOOL, m.kernel_size, m.stride, m.padding, 1, m.ceil_mode,
                     {"count_include_pad": bool(m.count_include_pad)})  # fmt: skip
    if isinstance(m, nn.AdaptiveAvgPool2d | nn.AdaptiveAvgPool1d):
        return _adaptive_pool(lo, call, OpKind.AVGPOOL)
    return _adaptive_pool(lo, call, OpKind.MAXPOOL)


# -- elementwise, concat, reductions -----------------------------------------------------------
def _json_scalar(value: Any) -> Any:
    return value if isinstance(value, int | float | bool) else None


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
        _json_scalar(unwrap(v))
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


def _like(lo: Lowering, call: Call) -> Any:
    """zeros_like(x) and friends: a constant of x's shape, not data from x."""
    return Const(call.out_shape)


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
    x = _need_dyn(call, call.arg(0, "input"), "input")
    dims = unwrap(call.arg(2 if call.op == "norm" else 1, "dim", None))
    if isinstance(dims, int):
        dims = [dims]
    if not isinstance(dims, list | tuple):
        dims = []
    axes = list(range(len(x.shape))) if not dims else sorted(int(d) % len(x.shape) for d in dims)
    keepdim = len(call.out_shape) == len(x.shape) and len(x.shape) > 0
    attrs = {"op": call.op, "axes": axes, "keepdim": keepdim}
    out = lo.add(call, OpKind.MEAN, [x], ops=_numel(x.shape), attrs=attrs)
    if isinstance(call.out, tuple | list):  # max/min with dim: (values, indices)
        return (out, Meta(None))
    return out


# -- zero-cost data movement -------------------------------------------------------------------
def _reshape(lo: Lowering, call: Call) -> Any:
    x = call.arg(0, "input")
    if isinstance(x, Pieces):
        raise lo.unsupported(call, "reshaping a tuple of tensors")
    x = _need_dyn(call, x, "input")
    op = call.op
    if call.module is not None:
        op = {nn.Flatten: "flatten", nn.Unflatten: "unflatten", nn.Identity: "identity"}.get(
            type(call.module), "dropout"
        )
    return lo.add(call, OpKind.RESHAPE, [x], attrs={"op": op})


def _pad(lo: Lowering, call: Call) -> Any:
    x = _need_dyn(call, call.arg(0, "input"), "input")
    mode = call.plain(2, "mode", "constant")
    if call.module is not None:
        mode = {
            "ReflectionPad": "reflect",
            "ReplicationPad": "replicate",
            "CircularPad": "circular",
        }
        mode = next(
            (v for k, v in mode.items() if type(call.module).__name__.startswith(k)), "constant"
        )
    return lo.add(call, OpKind.RESHAPE, [x], attrs={"op": "pad", "mode": str(mode)})


def _upsample(lo: Lowering, call: Call) -> Any:
    x = _need_dyn(call, call.arg(0, "input"), "input")
    if call.module is not None:
        mode = str(getattr(call.module, "mode", "nearest"))
    elif call.op.startswith("upsample_"):
        mode = call.op.removeprefix("upsample_").rstrip("123d")
    else:
        mode = str(call.plain(3, "mode", "nearest"))
    if mode != "nearest":
        raise lo.unsupported(
            call, f"'{mode}' interpolation (nearest-neighbour upsampling is mapped)"
        )
    return lo.add(call, OpKind.RESHAPE, [x], attrs={"op": "upsample", "mode": mode})


def _getattr(lo: Lowering, call: Call) -> Any:
    """``.values`` / ``.indices`` of a (values, indices) result such as ``x.max(dim=1)``."""
    base, attr = call.args[0], unwrap(call.args[1])
    if isinstance(base, tuple) and attr in ("values", "indices"):
        return base[0 if attr == "values" else 1]
    raise lo.unsupported(call, f"attribute '{attr}' of an activation")


def _getitem(lo: Lowering, call: Call) -> Any:
    base, index = call.args[0], call.args[1]
    if isinstance(base, tuple | list):
        return base[unwrap(index)]
    if isinstance(base, Pieces):
        i = int(unwrap(index))
        call.out = TensorInfo(base.shapes[i])
        return lo.add(call, OpKind.RESHAPE, [base.source], attrs={"op": base.op, "index": i})
    if isinstance(base, Meta):
        return Meta(base.value[unwrap(index)])
    if any(isinstance(v, Dyn) for v in _flat(index)):
        raise lo.unsupported(call, "indexing with an index computed from the input")
    return lo.add(call, OpKind.RESHAPE, [_need_dyn(call, base, "input")], attrs={"op": "slice"})


def _flat(obj: Any) -> list[Any]:
    if isinstance(obj, tuple | list):
        return [x for o in obj for x in _flat(o)]
    return [obj]


def _split(lo: Lowering, call: Call) -> Any:
    x = _need_dyn(call, call.arg(0, "input"), "input")
    out = call.out
    if not isinstance(out, tuple | list) or not all(isinstance(o, TensorInfo) for o in out):
        raise lo.unsupported(call, "expected a tuple of tensors")
    return Pieces(x, call.op, tuple(o.shape for o in out))


def _quant_identity(lo: Lowering, call: Call) -> Any:
    x = _need_dyn(call, call.arg(0, "input"), "input")
    attrs: dict[str, Any] = {"op": "quant_identity"}
    arith = getattr(call.module, "autochip_arithmetic", None)
    if isinstance(arith, Arithmetic):
        attrs["a_bits"] = arith.a_bits
        attrs["dtype"] = arith.dtype
    return lo.add(call, OpKind.RESHAPE, [x], attrs=attrs, params=_module_param_count(lo, call))


# -- tables ------------------------------------------------------------------------------------
_FUNCTIONS: dict[str, Handler] = {
    "conv2d": _conv_fn,
    "conv1d": _conv_fn,
    "max_pool1d": _maxpool_fn,
    "max_pool1d_with_indices": _maxpool_fn,
    "avg_pool1d": _avgpool_fn,
    "adaptive_avg_pool1d": lambda lo, call: _adaptive_pool(lo, call, OpKind.AVGPOOL),
    "adaptive_max_pool1d": lambda lo, call: _adaptive_pool(lo, call, OpKind.MAXPOOL),
    "convolution": _conv_fn,
    "linear": _linear_fn,
    "addmm": _linear_fn,
    "matmul": _matmul_fn,
    "mm": _matmul_fn,
    "bmm": _matmul_fn,
    "batch_norm": _norm(OpKind.BATCHNORM, 0),
    "native_batch_norm": _norm(OpKind.BATCHNORM, 0),
    "native_batch_norm_legit_no_training": _norm(OpKind.BATCHNORM, 0),
    "layer_norm": _norm(OpKind.LAYERNORM, 0),
    "native_layer_norm": _norm(OpKind.LAYERNORM, 0),
    "softmax": _softmax,
    "log_softmax": _softmax,
    "max_pool2d": _maxpool_fn,
    "max_pool2d_with_indices": _maxpool_fn,
    "avg_pool2d": _avgpool_fn,
    "adaptive_avg_pool2d": lambda lo, call: _adaptive_pool(lo, call, OpKind.AVGPOOL),
    "adaptive_max_pool2d": lambda lo, call: _adaptive_pool(lo, call, OpKind.MAXPOOL),
    "baddbmm": _baddbmm,
    "einsum": _einsum,
    "scaled_dot_product_attention": _attention,
    "group_norm": _norm(OpKind.LAYERNORM, 0),
    "native_group_norm": _norm(OpKind.LAYERNORM, 0),
    "instance_norm": _norm(OpKind.LAYERNORM, 0),
    "pad": _pad,
    "constant_pad_nd": _pad,
    "interpolate": _upsample,
    "upsample_nearest2d": _upsample,
    "upsample_bilinear2d": _upsample,
    "add": _eltwise,
    "sub": _eltwise,
    "rsub": _eltwise,
    "mul": _eltwise,
    "div": _eltwise,
    "neg": _eltwise,
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
    "max": _max_min,
    "min": _max_min,
    "maximum": _eltwise,
    "minimum": _eltwise,
    "masked_fill": _eltwise,
    "where": _eltwise,
    "pow": _eltwise,
    "getitem": _getitem,
    "getattr": _getattr,
    "split": _split,
    "chunk": _split,
    "unbind": _split,
    "tensor_split": _split,
    "split_with_sizes": _split,
}
_FUNCTIONS.update({name: _activation for name in _ACTIVATION_FNS})
_FUNCTIONS.update({name: _eltwise for name in _COMPARE})
_FUNCTIONS.update(
    {name: _like for name in ("zeros_like", "ones_like", "full_like", "empty_like", "rand_like",
                              "randn_like", "new_zeros", "new_ones", "new_full", "new_empty")}
)  # fmt: skip
_FUNCTIONS.update({name: _reshape for name in VIEW_OPS | NOOP_OPS | EXPAND_OPS})
_FUNCTIONS.update({name: _reshape for name in ("slice", "select", "narrow")})

_MODULES: tuple[tuple[type[nn.Module] | tuple[type[nn.Module], ...], Handler], ...] = (
    ((nn.Conv2d, nn.Conv1d), _conv_module),
    (nn.Linear, _linear_module),
    ((nn.BatchNorm1d, nn.BatchNorm2d), _norm(OpKind.BATCHNORM, 0)),
    (
        (nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm),
        _norm(OpKind.LAYERNORM, 0),
    ),
    ((nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d), _pad),
    (nn.Upsample, _upsample),
    (tuple(cls for cls, _ in _ACTIVATION_MODULES), _activation),
    (
        (
            nn.MaxPool2d,
            nn.AvgPool2d,
            nn.AdaptiveAvgPool2d,
            nn.AdaptiveMaxPool2d,
            nn.MaxPool1d,
            nn.AvgPool1d,
            nn.AdaptiveAvgPool1d,
            nn.AdaptiveMaxPool1d,
        ),
        _pool_module,
    ),
    ((nn.Flatten, nn.Unflatten, nn.Identity, nn.modules.dropout._DropoutNd), _reshape),
    ((nn.Softmax, nn.LogSoftmax), _softmax),
)

_WHY = {
    "LSTM": "recurrent layers have no mapping onto the array",
    "GRU": "recurrent layers have no mapping onto the array",
    "RNN": "recurrent layers have no mapping onto the array",
    "lstm": "recurrent layers have no mapping onto the array",
    "gru": "recurrent layers have no mapping onto the array",
    "rnn_tanh": "recurrent layers have no mapping onto the array",
    "rnn_relu": "recurrent layers have no mapping onto the array",
    "sort": "sorting has no hardware mapping",
    "topk": "sorting has no hardware mapping",
    "item": "reading a tensor value on the host makes the dataflow data-dependent",
    "tolist": "reading a tensor value on the host makes the dataflow data-dependent",
}


def handler_for(op: str, module: nn.Module | None) -> Handler | None:
    if module is None:
        return _FUNCTIONS.get(op)
    if getattr(module, "autochip_identity", False) is True:
        return _quant_identity
    if hasattr(module, "autochip_arithmetic") and not isinstance(module, nn.Conv2d | nn.Linear):
        return None
    for cls, handler in _MODULES:
        if isinstance(module, cls):
            return handler
    return None


def why_unsupported(op: str, module: nn.Module | None) -> str:
    if module is not None:
        if hasattr(module, "autochip_arithmetic"):
            return "a module with autochip_arithmetic must be an nn.Conv2d or nn.Linear"
        return _WHY.get(type(module).__name__, "no hardware mapping for this module")
    if op.startswith("fft"):
        return "Fourier transforms have no hardware mapping"
    return _WHY.get(op, "")

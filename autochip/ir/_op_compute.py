"""Op handlers of the compute and window operators: convolution, linear, matmul, attention,
einsum, pooling."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from torch import nn

from autochip.errors import TraceError
from autochip.ir._lower import Call, Lowering, unwrap
from autochip.ir._op_util import (
    Handler,
    arithmetic_of,
    module_param_count,
    need_4d,
    need_dyn,
    numel,
    pair,
)
from autochip.ir._values import Const, Dyn, Meta, TensorInfo
from autochip.ir.node import LoopDims, OpKind

__all__ = ["FUNCTIONS", "MODULES"]


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
        need_4d(lo, call, x)
        if len(weight_shape) != 4:
            raise lo.unsupported(
                call, f"expected a 1-D or 2-D convolution kernel, found {weight_shape}"
            )
        n, c, h, w = x.shape
        k, c_per_group, r, s = weight_shape
        p, q = call.out_shape[2:]
    sh, sw = pair(stride, "stride", call)
    dh, dw = pair(dilation, "dilation", call)
    padding = unwrap(padding)
    if isinstance(padding, str):  # 'same' / 'valid': recover the (leading) padding from shapes
        ph = max(0, ((p - 1) * sh + dh * (r - 1) + 1 - h) // 2)
        pw = max(0, ((q - 1) * sw + dw * (s - 1) + 1 - w) // 2)
    else:
        ph, pw = pair(padding, "padding", call)
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
    arith, sparsity = arithmetic_of(call)
    attrs: dict[str, Any] = {"padding": padding} if isinstance(padding, str) else {}
    if one_d:
        attrs["conv1d"] = True
    if call.extra.get("padding_mode", "zeros") != "zeros":  # reflect / replicate / circular
        attrs["padding_mode"] = call.extra["padding_mode"]
    if groups > 1:
        attrs["depthwise"] = groups == c and k % c == 0
    return lo.add(
        call, OpKind.CONV2D, [x], dims=dims, macs=dims.macs, params=params,
        arithmetic=arith, sparsity=sparsity, attrs=attrs,
    )  # fmt: skip


def _conv_module(lo: Lowering, call: Call) -> Any:
    m = call.module
    assert isinstance(m, nn.Conv2d | nn.Conv1d)
    x = need_dyn(call, call.arg(0, "input"), "input")
    shape = (m.out_channels, m.in_channels // m.groups, *m.kernel_size)
    call.extra["padding_mode"] = str(m.padding_mode)
    params = module_param_count(lo, call)
    return _conv(lo, call, x, shape, m.stride, m.padding, m.dilation, m.groups, params)


def _conv_fn(lo: Lowering, call: Call) -> Any:
    x = need_dyn(call, call.arg(0, "input"), "input")
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
    dims = LoopDims(N=numel(out) // k, K=k, C=c)
    arith, sparsity = arithmetic_of(call)
    return lo.add(
        call, OpKind.LINEAR, [x], dims=dims, macs=dims.macs, params=params,
        arithmetic=arith, sparsity=sparsity, attrs=attrs,
    )  # fmt: skip


def _linear_module(lo: Lowering, call: Call) -> Any:
    m = call.module
    assert isinstance(m, nn.Linear)
    x = need_dyn(call, call.arg(0, "input"), "input")
    return _linear(lo, call, x, m.in_features, m.out_features, module_param_count(lo, call))


def _linear_fn(lo: Lowering, call: Call) -> Any:
    if call.op == "addmm":  # addmm(bias, mat1, mat2) = bias + mat1 @ mat2
        return _matmul(lo, call, call.arg(1, "mat1"), call.arg(2, "mat2"))
    x, weight = call.arg(0, "input"), call.arg(1, "weight")
    if isinstance(weight, Dyn):  # F.linear with an activation as weight: x @ w.T
        x = need_dyn(call, x, "input")
        return _dynamic_matmul(lo, call, x, weight, weight.shape[-1] if weight.shape else 1)
    x = need_dyn(call, x, "input")
    if not isinstance(weight, Const) or weight.shape is None or len(weight.shape) != 2:
        raise TraceError(f"node '{call.name}': expected a 2-D weight (K, C), found {weight!r}")
    k, c = weight.shape
    return _linear(lo, call, x, c, k, lo.claim(call))


def _dynamic_matmul(lo: Lowering, call: Call, a: Dyn, b: Dyn, c: int) -> Dyn:
    out = call.out_shape
    k = out[-1] if len(b.shape) >= 2 and out else 1
    dims = LoopDims(N=numel(out) // k, K=k, C=c, dynamic_weights=True)
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
    q = need_dyn(call, call.arg(0, "query"), "query")
    k = need_dyn(call, call.arg(1, "key"), "key")
    v = need_dyn(call, call.arg(2, "value"), "value")
    if len(q.shape) < 2 or len(k.shape) < 2 or len(v.shape) < 2:
        raise lo.unsupported(call, "expected query, key and value with at least 2 dimensions")
    out = call.out_shape
    scores_shape = (*out[:-1], k.shape[-2])
    name = call.name
    qk_call = dataclasses.replace(call, name=lo.unique(f"{name}.qk"), out=TensorInfo(scores_shape))
    e, s_len = q.shape[-1], k.shape[-2]
    qk_dims = LoopDims(N=numel(scores_shape) // s_len, K=s_len, C=e, dynamic_weights=True)
    scores = lo.add(qk_call, OpKind.MATMUL, [q, k], dims=qk_dims, macs=qk_dims.macs,
                    ops=numel(scores_shape), attrs={"transpose_b": True}, params=0)  # fmt: skip
    attrs: dict[str, Any] = {"dim": len(scores_shape) - 1, "log": False}
    if unwrap(call.arg(5, "is_causal", False)):
        attrs["causal"] = True
    sm_call = dataclasses.replace(
        call, name=lo.unique(f"{name}.softmax"), out=TensorInfo(scores_shape)
    )
    probs = lo.add(
        sm_call, OpKind.SOFTMAX, [scores], ops=numel(scores_shape), attrs=attrs, params=0
    )
    av_dims = LoopDims(N=numel(out) // out[-1], K=out[-1], C=s_len, dynamic_weights=True)
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
        N=numel(out) // k, K=k, C=c, dynamic_weights=isinstance(b, Dyn) and isinstance(a, Dyn)
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


# -- pooling -----------------------------------------------------------------------------------
def _pool(
    lo: Lowering, call: Call, kind: OpKind, kernel: Any, stride: Any, padding: Any,
    dilation: Any, ceil_mode: bool, extra: dict[str, Any] | None = None,
) -> Any:  # fmt: skip
    x = need_dyn(call, call.arg(0, "input"), "input")
    one_d = len(x.shape) == 3 and "1d" in call.op + type(call.module).__name__
    if one_d:
        n, c, w = x.shape
        h, p, q = 1, 1, call.out_shape[2]
    else:
        need_4d(lo, call, x)
        n, c, h, w = x.shape
        p, q = call.out_shape[2:]
    r, s = pair(kernel, "kernel_size", call)
    stride = unwrap(stride)
    sh, sw = (
        (r, s) if stride is None or stride == [] or stride == () else pair(stride, "stride", call)
    )
    ph, pw = pair(padding, "padding", call)
    dh, dw = pair(dilation, "dilation", call)
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
    x = need_dyn(call, call.arg(0, "input"), "input")
    one_d = len(x.shape) == 3 and "1d" in call.op + type(call.module).__name__
    if one_d:
        (n, c, w), h, p, q = x.shape, 1, 1, call.out_shape[2]
    else:
        need_4d(lo, call, x)
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


FUNCTIONS: dict[str, Handler] = {
    "conv2d": _conv_fn,
    "conv1d": _conv_fn,
    "convolution": _conv_fn,
    "linear": _linear_fn,
    "addmm": _linear_fn,
    "matmul": _matmul_fn,
    "mm": _matmul_fn,
    "bmm": _matmul_fn,
    "baddbmm": _baddbmm,
    "einsum": _einsum,
    "scaled_dot_product_attention": _attention,
    "max_pool2d": _maxpool_fn,
    "max_pool2d_with_indices": _maxpool_fn,
    "max_pool1d": _maxpool_fn,
    "max_pool1d_with_indices": _maxpool_fn,
    "avg_pool2d": _avgpool_fn,
    "avg_pool1d": _avgpool_fn,
    "adaptive_avg_pool2d": lambda lo, call: _adaptive_pool(lo, call, OpKind.AVGPOOL),
    "adaptive_max_pool2d": lambda lo, call: _adaptive_pool(lo, call, OpKind.MAXPOOL),
    "adaptive_avg_pool1d": lambda lo, call: _adaptive_pool(lo, call, OpKind.AVGPOOL),
    "adaptive_max_pool1d": lambda lo, call: _adaptive_pool(lo, call, OpKind.MAXPOOL),
}

MODULES: tuple[tuple[tuple[type[nn.Module], ...], Handler], ...] = (
    ((nn.Conv2d, nn.Conv1d), _conv_module),
    ((nn.Linear,), _linear_module),
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
)

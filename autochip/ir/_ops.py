"""The op table: how each PyTorch / ATen operator becomes AccelGraph nodes.

Every handler takes the :class:`~autochip.ir._lower.Lowering` and one :class:`Call` and returns
the value of the call. Operators are looked up by a canonical name (``conv2d``, ``add``, ...),
the same for ``torch.*`` functions, ``Tensor`` methods, ``torch.nn.functional`` and ATen
overloads, so the fx and the export front ends share this one table. Modules (``call_module``)
are looked up by class.
"""

from __future__ import annotations

import operator

import torch
from torch import fx, nn

from autochip.ir import _op_compute, _op_data, _op_vector
from autochip.ir._op_util import Handler

__all__ = ["META_OPS", "Handler", "handler_for", "op_name", "why_unsupported"]

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


# -- tables ------------------------------------------------------------------------------------
_FUNCTIONS: dict[str, Handler] = {
    **_op_compute.FUNCTIONS,
    **_op_vector.FUNCTIONS,
    **_op_data.FUNCTIONS,
}
_MODULES = _op_compute.MODULES + _op_vector.MODULES + _op_data.MODULES
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
        return _op_data.quant_identity
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

"""Helpers shared by the op handlers (:mod:`autochip.ir._ops`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from autochip.errors import TraceError
from autochip.ir._lower import Call, Lowering, unwrap
from autochip.ir._values import Dyn
from autochip.ir.node import Arithmetic

__all__ = [
    "Handler",
    "arithmetic_of",
    "json_scalar",
    "module_param_count",
    "need_4d",
    "need_dyn",
    "numel",
    "pair",
]

Handler = Callable[[Lowering, Call], Any]


def pair(value: Any, what: str, call: Call) -> tuple[int, int]:
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


def need_dyn(call: Call, value: Any, what: str) -> Dyn:
    if isinstance(value, Dyn):
        return value
    raise TraceError(
        f"node '{call.name}' ({call.display}): expected the {what} to be an activation tensor, "
        f"found {type(value).__name__}"
    )


def need_4d(lo: Lowering, call: Call, x: Dyn) -> None:
    if len(x.shape) != 4:
        raise lo.unsupported(
            call, f"expected a 4-D (N, C, H, W) input, found shape {list(x.shape)}"
        )


def arithmetic_of(call: Call) -> tuple[Arithmetic | None, float]:
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


def module_param_count(lo: Lowering, call: Call) -> int:
    return lo.claim(call, call.extra.get("module_params", frozenset()))


def numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def json_scalar(value: Any) -> Any:
    """A number for node attrs; infinities and NaN (a mask's fill value) as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value if isinstance(value, int | float | bool) else None

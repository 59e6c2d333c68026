"""What an fx node evaluates to while it is lowered to the AccelGraph.

- :class:`Dyn`: an activation tensor, produced by the AccelGraph node ``name``.
- :class:`Const`: a tensor that does not depend on the input (a parameter, a buffer, or something
  computed from them); it carries the names of the parameters it was made from, so that their
  count is attributed to the first node that consumes it.
- :class:`Meta`: a plain Python value (an int, a shape, a dtype).
- :class:`Pieces`: the tuple of an op that splits one activation (chunk/split/unbind).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Const", "Dyn", "Meta", "Pieces", "TensorInfo", "Value", "iter_values"]


@dataclass(frozen=True)
class TensorInfo:
    """Shape (and dtype) of a tensor seen during shape propagation."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class Dyn:
    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Const:
    shape: tuple[int, ...] | None
    params: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Meta:
    value: Any


@dataclass(frozen=True)
class Pieces:
    source: Dyn
    op: str
    shapes: tuple[tuple[int, ...], ...]


Value = Dyn | Const | Meta | Pieces


def iter_values(obj: Any) -> Iterator[Value]:
    """Every :data:`Value` inside nested tuples, lists and dicts."""
    if isinstance(obj, Dyn | Const | Meta | Pieces):
        yield obj
    elif isinstance(obj, tuple | list):
        for item in obj:
            yield from iter_values(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from iter_values(item)

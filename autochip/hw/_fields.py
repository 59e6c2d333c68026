"""Reading YAML mappings into typed values while collecting every problem with its path.

Each spec parser builds one :class:`Fields` reader, pulls its values, and calls :meth:`finish`,
which raises a single :class:`SpecError` listing every problem found (what was expected, what was
found, and where: ``array.rows``).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from autochip._safeio import MAX_INT, load_yaml_file
from autochip.errors import SpecError

__all__ = ["Fields", "load_yaml"]

T = TypeVar("T")

_MISSING = object()


def load_yaml(path: str | Path) -> tuple[Any, str]:
    """Read a YAML file safely (:func:`autochip._safeio.load_yaml_file`): a missing file, a
    syntax error, an alias, a duplicate key or an oversized file is a :class:`SpecError`."""
    return load_yaml_file(path)


class Fields:
    """A problem-collecting reader over nested mappings."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}" if where else message)

    def mapping(self, data: Any, where: str) -> Mapping[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            self.error(where, f"expected a mapping, found {type(data).__name__} {data!r}")
            return {}
        return data

    def unknown(self, data: Mapping[str, Any], known: Iterable[str], where: str) -> None:
        allowed = sorted(known)
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.error(_join(where, str(key)), f"unknown key; expected one of {allowed}{hint}")

    def get(
        self,
        data: Mapping[str, Any],
        key: str,
        kind: type[T] | tuple[type, ...],
        where: str,
        default: Any = _MISSING,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        choices: Iterable[Any] | None = None,
        limit: str | None = None,
    ) -> Any:
        path = _join(where, key)
        if key not in data or data[key] is None:
            if default is _MISSING:
                self.error(path, "required, not given")
                return None
            return default
        value: Any = data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            self.error(path, f"expected {names}, found {type(value).__name__} {value!r}")
            return default if default is not _MISSING else None
        if choices is not None:
            options = list(choices)
            if value not in options:
                close = difflib.get_close_matches(str(value).lower(), [str(o) for o in options], 1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.error(path, f"expected one of {options}, found {value!r}{hint}")
                return default if default is not _MISSING else None
        if isinstance(value, float) and not math.isfinite(value):
            self.error(path, f"expected a finite number, found {value!r}")
            return default if default is not _MISSING else None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            self.error(path, f"expected an integer of magnitude <= 2**53 (MAX_INT), found {value}")
            return default if default is not _MISSING else None
        num: Any = value
        if minimum is not None and num < minimum:
            self.error(path, f"expected a value >= {minimum}, found {value!r}")
        if maximum is not None and num > maximum:
            named = f" ({limit})" if limit else ""
            self.error(path, f"expected a value <= {maximum}{named}, found {value!r}")
        return value

    def finish(self) -> None:
        if self.problems:
            raise SpecError(self.source, self.problems)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key

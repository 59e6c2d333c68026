"""Where in the user's code an fx / export node (or an exception) comes from."""

from __future__ import annotations

import functools
import linecache
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SourceLoc", "caller", "from_exception", "from_stack_trace"]

_FRAME = re.compile(
    r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)\n(?P<code>[^\n]*)'
)


@functools.cache
def _library_dirs() -> tuple[str, ...]:
    import torch

    return (str(Path(torch.__file__).parent), str(Path(__file__).parents[1]))


@dataclass(frozen=True)
class SourceLoc:
    """A frame of the user's model code."""

    file: str
    line: int
    code: str

    @property
    def short(self) -> str:
        """``file.py:42``: the file's name only, so saved graphs don't depend on the checkout."""
        return f"{Path(self.file).name}:{self.line}"

    @property
    def long(self) -> str:
        """``/path/to/file.py:42: y = torch.sort(x)`` for error messages."""
        code = f": {self.code}" if self.code else ""
        return f"{self.file}:{self.line}{code}"


def _pick(frames: list[tuple[str, int, str]]) -> SourceLoc | None:
    """The innermost frame outside torch and autochip (frames ordered outermost first)."""
    skip = _library_dirs()
    for file, line, code in reversed(frames):
        if not file.startswith(skip) and not file.startswith("<"):
            return SourceLoc(file, line, code.strip())
    return None


def from_stack_trace(stack_trace: str | None) -> SourceLoc | None:
    if not stack_trace:
        return None
    frames = [(m["file"], int(m["line"]), m["code"]) for m in _FRAME.finditer(stack_trace + "\n")]
    return _pick(frames)


def from_exception(exc: BaseException) -> SourceLoc | None:
    frames = [
        (f.filename, f.lineno or 0, f.line or "") for f in traceback.extract_tb(exc.__traceback__)
    ]
    return _pick(frames)


def caller() -> SourceLoc | None:
    """The innermost frame of the current call stack outside torch and autochip.

    Used while fx traces a model: much cheaper than torch.fx's ``record_stack_traces``.
    """
    skip = _library_dirs()
    frame = sys._getframe(1)
    while frame is not None:
        file = frame.f_code.co_filename
        if not file.startswith(skip) and not file.startswith("<"):
            line = frame.f_lineno
            return SourceLoc(file, line, linecache.getline(file, line).strip())
        frame = frame.f_back  # type: ignore[assignment]
    return None

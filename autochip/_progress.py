"""Progress bars on stderr, drawn only when stderr is a terminal (one mechanism for all commands).

A log file or a CI job gets nothing (no ``\\r`` updates every half second); ``--json`` output on
stdout is never touched. Two shapes:

- :func:`bar`: a ``tqdm`` bar over a known number of steps (training batches, images).
- :class:`Stages`: a bar over named stages of one long job (Verilator build, simulation, Yosys,
  nextpnr). Library functions take it as an optional callback ``progress(label)``, called
  when a stage starts; while a stage runs, the bar's clock keeps ticking.
- :class:`Counter`: a bar over a count reported as ``progress(done, total)`` (simulated cycles,
  designs evaluated), where the total may be refined as the job goes.

Both draw on their own copy of the terminal's descriptor: tool runs redirect fd 2 to their log
files (``autochip.builder.core_sim``), and the bar must not end up there.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from types import TracebackType
from typing import IO, Any, Self

from tqdm import tqdm

__all__ = ["Counter", "Stages", "bar", "on_terminal"]


def on_terminal() -> bool:
    """Whether progress may be drawn: stderr is an interactive terminal."""
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def bar(
    total: int,
    desc: str,
    *,
    unit: str = "it",
    enabled: bool = True,
    file: IO[str] | None = None,
    bar_format: str | None = None,
) -> tqdm[Any]:
    """A bar over ``total`` steps on stderr (disabled unless stderr is a terminal)."""
    return tqdm(
        bar_format=bar_format,
        total=total,
        desc=desc,
        unit=unit,
        file=file or sys.stderr,
        disable=not (enabled and on_terminal()),
        leave=False,
        mininterval=0.5,
        dynamic_ncols=True,
    )


def _own_terminal(enabled: bool) -> IO[str] | None:
    """A private copy of the terminal behind stderr (``None`` when nothing is to be drawn)."""
    if enabled and on_terminal():
        with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
    return None


class _Drawn:
    """What both bars share: a private terminal copy, ``drawn``, ``close`` and the ``with`` form."""

    _own: IO[str] | None
    _bar: tqdm[Any]

    @property
    def drawn(self) -> bool:
        return not self._bar.disable

    def close(self) -> None:
        self._bar.close()
        if self._own is not None:
            self._own.close()
            self._own = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Stages(_Drawn):
    """A bar over the ``total`` stages of one job; call it with a stage's label as it starts.

    ``with Stages("sim", 2) as progress: simulate_core(..., progress=progress)``: each call
    completes the stage before it and shows the new label; leaving the ``with`` block completes
    the bar and removes it from the terminal.
    """

    def __init__(self, desc: str, total: int, *, enabled: bool = True) -> None:
        self.desc = desc
        self.total = total
        self.started = 0
        self._own = _own_terminal(enabled)
        fmt = "{desc} |{bar}| {n_fmt}/{total_fmt} stages [{elapsed}]"
        self._bar = bar(total, desc, unit="stage", enabled=enabled, file=self._own, bar_format=fmt)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if not self._bar.disable:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self._bar.refresh()  # keeps the elapsed time moving during a long stage

    def __call__(self, label: str) -> None:
        if self.started and self._bar.n < self.total:
            self._bar.update(1)
        self.started += 1
        self._bar.set_description_str(f"{self.desc}: {label}", refresh=True)

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        if self._bar.n < self.total:
            self._bar.update(self.total - self._bar.n)
        super().close()


class Counter(_Drawn):
    """A bar over a count: ``with Counter("simulating", "cycle") as progress:`` then
    ``progress(done, total)`` from the job (any thread); ``total`` may change between calls.
    ``drawn`` is false off a terminal, where a job may skip the work of reporting."""

    def __init__(self, desc: str, unit: str, *, enabled: bool = True) -> None:
        self._own = _own_terminal(enabled)
        self._bar = bar(0, desc, unit=unit, enabled=enabled, file=self._own)
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        if self._bar.disable:
            return
        with self._lock:
            self._bar.total = max(total, 1)
            self._bar.n = min(done, self._bar.total)
            self._bar.refresh()

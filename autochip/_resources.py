"""Where autochip's data folders are: the model zoo and the Verilog templates.

Both live at the top of the source tree (``models/``, ``templates/``; DESIGN.md fixes that
layout) and ship inside the wheel as the package-data sub-packages ``autochip._zoo`` and
``autochip._templates`` (``package-dir`` mapping in ``pyproject.toml``). This module is the one
place that knows both layouts; everything else asks :func:`zoo_dir` / :func:`templates_dir`.

Lookup order: the folder inside the installed package (a wheel), then the folder beside the
package in a source checkout (``PYTHONPATH`` or an editable install), then wherever the import
system maps the sub-package (an editable install whose finder points elsewhere).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["templates_dir", "zoo_dir"]

_PACKAGE = Path(__file__).resolve().parent


def _locate(subpackage: str, top: str) -> Path | None:
    installed = _PACKAGE / subpackage
    if installed.is_dir():
        return installed
    checkout = _PACKAGE.parent / top
    if checkout.is_dir() and (_PACKAGE.parent / "pyproject.toml").is_file():
        return checkout
    try:
        spec = importlib.util.find_spec(f"autochip.{subpackage}")
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    return None


def zoo_dir() -> Path | None:
    """The model zoo folder (one ``NAME.py`` per network), or ``None`` if it is missing."""
    return _locate("_zoo", "models")


def templates_dir() -> Path | None:
    """The folder of Jinja2 templates and hand-written Verilog, or ``None`` if it is missing."""
    return _locate("_templates", "templates")

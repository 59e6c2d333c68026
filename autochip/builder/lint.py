"""``verilator --lint-only -Wall`` on an emitted design; any warning is a :class:`ToolError`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from autochip.builder.render import FILE_LIST, MANIFEST
from autochip.builder.tools import find_tool
from autochip.errors import ToolError

__all__ = ["lint_design"]


def lint_design(design_dir: str | Path) -> str:
    """Lint every file of ``design_dir/files.f`` (top from the manifest); returns Verilator's
    output when clean."""
    root = Path(design_dir)
    if not (root / FILE_LIST).is_file() or not (root / MANIFEST).is_file():
        raise ToolError(
            f"expected an emitted design in '{root}' ({FILE_LIST}, {MANIFEST}), found none"
        )
    top = str(json.loads((root / MANIFEST).read_text())["top"])
    argv = [find_tool("verilator"), "--lint-only", "-Wall", "-f", FILE_LIST, "--top-module", top]
    proc = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=600)
    text = proc.stdout + proc.stderr
    findings = [line for line in text.splitlines() if line.startswith("%")]
    if proc.returncode != 0 or findings:
        shown = "\n".join(findings[:20]) or text.strip()[-2000:]
        raise ToolError(f"{root}: verilator --lint-only -Wall is not clean:\n{shown}")
    return text

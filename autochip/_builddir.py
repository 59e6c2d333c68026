"""Checks of a design or build folder before ``autochip sim`` or ``synth`` runs tools on it.

A folder written by ``autochip emit`` / ``build`` holds RTL that a simulator compiles and runs,
and (build) the cocotb testbench ``tb/tb_core.py`` that ``sim`` runs in Python. A folder from
somewhere else could run code through either: Verilog's ``$system`` runs a shell command in
Verilator and Icarus, a changed testbench is any Python. So before running tools, autochip
checks that the file list stays inside the folder, the top module is a plain identifier (it is
written into the Yosys script), the RTL uses no system task that runs commands or touches files,
and the testbench is byte-for-byte the one autochip writes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["design_problems"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,127}")
_FORBIDDEN = re.compile(
    r"\$(system|fopen|fclose|fwrite[bho]?|fdisplay[bho]?|fstrobe[bho]?|fmonitor[bho]?|fscanf|"
    r"fread|fgets|fgetc|readmem[bh]|writemem[bh]|dumpfile|dumpvars|sformat)\b"
    r"|`include\b|\bimport\s+\"DPI"
)
MAX_RTL_BYTES = 1 << 26


def design_problems(root: Path, testbench: bool) -> list[str]:
    """Problems that make ``root`` unsafe to hand to a simulator or Yosys (empty: none)."""
    problems: list[str] = []
    file_list = root / "files.f"
    manifest = root / "manifest.json"
    if not file_list.is_file() or not manifest.is_file():
        return []  # the commands report a missing design themselves
    try:
        top = json.loads(manifest.read_text(encoding="utf-8")).get("top")
        names = file_list.read_text(encoding="utf-8").split()
    except (ValueError, UnicodeDecodeError, AttributeError, OSError) as exc:
        return [f"expected manifest.json (an object with 'top') and files.f, found: {exc}"[:300]]
    if not isinstance(top, str) or not _IDENT.fullmatch(top):
        problems.append(f"manifest.json: top: expected a Verilog identifier, found {top!r}"[:200])
    base = root.resolve()
    total = 0
    for name in names:
        path = (root / name).resolve()
        if Path(name).is_absolute() or ".." in Path(name).parts or base not in path.parents:
            problems.append(f"files.f: expected paths inside the folder, found '{name}'"[:200])
            continue
        if not path.is_file():
            continue  # reported by the tool's own check
        total += path.stat().st_size
        if total > MAX_RTL_BYTES:
            problems.append(f"expected at most {MAX_RTL_BYTES} bytes of RTL (MAX_RTL_BYTES)")
            break
        m = _FORBIDDEN.search(path.read_text(encoding="utf-8", errors="replace"))
        if m:
            problems.append(
                f"{name}: refusing RTL that uses '{m.group(0)}' (it can run commands or touch "
                "files in a simulator); autochip's own RTL never does"
            )
    if testbench:
        tb = root / "tb" / "tb_core.py"
        ours = Path(__file__).with_name("builder") / "core_tb.py"
        if tb.is_file() and tb.read_bytes() != ours.read_bytes():
            problems.append(
                "tb/tb_core.py: expected the testbench autochip writes, found a different file "
                "(it would run as Python code); rebuild the folder with `autochip build`"
            )
    return problems

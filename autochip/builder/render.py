"""Render the PE array for a hardware spec: Verilog files, a file list and a manifest.

Everything is produced in memory as ``{relative path: text}`` so that :func:`write_design` can
validate first and write all or nothing. Output is deterministic: no timestamps, no absolute paths.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import jinja2

from autochip.builder.params import ArrayParams
from autochip.builder.tools import templates_dir
from autochip.errors import ToolError

__all__ = [
    "ARRAY_TEMPLATE",
    "FILE_LIST",
    "MANIFEST",
    "SUPPORT_MODULES",
    "manifest_for",
    "render_design",
    "write_design",
]

ARRAY_TEMPLATE = "pe_array_os.v.j2"
SUPPORT_MODULES = ("autochip_delay.v", "autochip_row_mux.v")
FILE_LIST = "files.f"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _ports(p: ArrayParams) -> list[dict[str, Any]]:
    def port(name: str, direction: str, width: int, text: str) -> dict[str, Any]:
        return {"name": name, "direction": direction, "width": width, "description": text}

    lane_a = f"{p.rows} lanes x {p.a_width} bits, lane r = row r"
    lane_b = f"{p.cols} lanes x {p.b_width} bits, lane c = column c"
    return [
        port("clk", "input", 1, "clock, rising edge"),
        port("rst", "input", 1, "synchronous reset, active high"),
        port("en", "input", 1, "clock enable: low freezes the whole array"),
        port("clear", "input", 1, "zero every accumulator (not during a tile)"),
        port("in_valid", "input", 1, "a_in/b_in carry a reduction beat"),
        port("in_last", "input", 1, "this beat is the last of the tile"),
        port("in_ready", "output", 1, "the array takes a beat this cycle"),
        port("a_in", "input", p.a_bus_bits, f"A[:, k]: {lane_a}"),
        port("b_in", "input", p.b_bus_bits, f"B[k, :]: {lane_b}"),
        port("out_valid", "output", 1, "out_data holds one accumulator row"),
        port("out_last", "output", 1, "out_data holds the last row of the tile"),
        port("out_row", "output", p.row_bits, "row index of out_data"),
        port(
            "out_data",
            "output",
            p.out_bus_bits,
            f"{p.cols} lanes x {p.acc_bits}-bit signed accumulators, lane c = column c",
        ),
    ]


def manifest_for(p: ArrayParams, files: list[str]) -> dict[str, Any]:
    """The machine-readable description of an emitted design (``manifest.json``)."""
    constant = p.rows + p.cols - 1
    return {
        "format": MANIFEST_FORMAT,
        "generator": "autochip emit",
        "spec": p.spec_name,
        "top": p.top,
        "files": files,
        "pe": {
            "kind": p.kind,
            "module": p.pe_module,
            "a_bits": p.a_bits,
            "w_bits": p.w_bits,
            "vector": p.vector,
            "acc_bits": p.acc_bits,
            "parameters": p.pe_parameter_map,
        },
        "array": {"rows": p.rows, "cols": p.cols, "dataflow": p.dataflow},
        "parameters": asdict(p),
        "ports": _ports(p),
        "cycles": {
            "per_tile_formula": p.cycles_formula,
            "per_tile_constant": constant,
            "per_tile_examples": {str(t): t + constant for t in (1, p.rows, p.cols, 64)},
            "max_depth": p.max_depth,
            "note": "T = reduction depth (beats per tile); cycles from the first beat taken "
            "to the cycle out_last is high, which is also when the next tile's first beat "
            "is taken (autochip.predictor.rtl_model.os_tile_cycles)",
        },
    }


def render_design(p: ArrayParams) -> dict[str, str]:
    """All files of the design, relative path -> text (Verilog, file list, manifest)."""
    env = _environment()
    base = templates_dir()
    rtl: dict[str, str] = {}
    for name in (f"{p.pe_module}.v", *SUPPORT_MODULES):
        source = base / name
        if not source.is_file():
            raise ToolError(f"expected the Verilog module '{source}', found no such file")
        rtl[f"rtl/{name}"] = source.read_text()
    values = asdict(p)
    rtl[f"rtl/{p.top}.v"] = env.get_template(ARRAY_TEMPLATE).render(**values)
    files = sorted(rtl)
    out = dict(rtl)
    out[FILE_LIST] = "".join(f"{f}\n" for f in files)
    out[MANIFEST] = json.dumps(manifest_for(p, files), indent=2, sort_keys=True) + "\n"
    return out


def write_design(files: dict[str, str], out_dir: str | Path) -> list[Path]:
    """Write rendered files under ``out_dir``: each file atomically (temp file + rename)."""
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise ToolError(f"expected an output folder at '{root}', found a file")
    written: list[Path] = []
    for rel, text in sorted(files.items()):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, target)
        written.append(target)
    return written

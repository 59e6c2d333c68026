"""List what autochip knows: target platforms, or the models of the zoo.

  autochip list platforms [--json]
  autochip list models [--json]

platforms: every FPGA device and ASIC technology that --platform accepts, with its board
aliases, resources (FPGA: LUT, FF, DSP, BRAM blocks) or node, and its default accelerator.
models: every zoo name that MODEL accepts, with the first paragraph of the file's docstring (read
without importing the file). JSON: a list of objects, one per platform or model.
"""

from __future__ import annotations

import argparse
import ast
import json
from typing import Any

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=("platforms", "models"), help="what to list")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def platforms() -> list[dict[str, Any]]:
    """One entry per platform (board names folded into their device as ``aliases``)."""
    from autochip.hw.platform import load_platform, platform_names

    rows: dict[str, dict[str, Any]] = {}
    for name in platform_names():
        p = load_platform(name)
        key = p.device.name if p.device is not None else p.name
        if key not in rows:
            hw = p.default_hw
            row: dict[str, Any] = {
                "name": key,
                "kind": p.kind,
                "aliases": [],
                "node_nm": p.tech.node_nm,
                "default_hw": {
                    "rows": hw.rows,
                    "cols": hw.cols,
                    "dataflow": hw.dataflow,
                    "pe": f"{hw.pe.kind} {hw.pe.dtype}{hw.pe.w_bits}x{hw.pe.a_bits}",
                    "clock_mhz": hw.clock_mhz,
                },
            }
            if p.device is not None:
                d = p.device
                row.update(
                    family=d.family, synth_target=d.synth_target, lut=d.lut, ff=d.ff,
                    dsp=d.dsp, bram=d.bram.count, bram_bits=d.bram.bits,
                )  # fmt: skip
            rows[key] = row
        if name != key:
            rows[key]["aliases"].append(name)
    return sorted(rows.values(), key=lambda r: (r["kind"], r["name"]))


def models() -> list[dict[str, Any]]:
    """One entry per zoo model: name, file and the first paragraph of its docstring."""
    from autochip.ir.loader import zoo_dir, zoo_names

    out = []
    for name in zoo_names():
        path = zoo_dir() / f"{name}.py"
        try:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            doc = ""
        summary = " ".join(doc.split("\n\n")[0].split())  # the first paragraph, one line
        out.append({"name": name, "description": summary, "path": str(path)})
    return out


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    cells = [[str(r.get(key, "")) for key, _ in columns] for r in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, (_, h) in enumerate(columns)]
    lines = ["  ".join(h.ljust(w) for (_, h), w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]  # fmt: skip
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    rows = platforms() if args.what == "platforms" else models()
    if args.json:
        print(json.dumps(rows, indent=1, allow_nan=False))
        return 0
    if args.what == "models":
        for r in rows:
            text = r["description"]
            r["description"] = text if len(text) <= 90 else text[:89].rsplit(" ", 1)[0] + " ..."
        print(_table(rows, [("name", "model"), ("description", "description")]), end="")
        return 0
    for r in rows:
        hw = r["default_hw"]
        r["accel"] = (
            f"{hw['rows']}x{hw['cols']} {hw['dataflow']} {hw['pe']} @{hw['clock_mhz']:g} MHz"
        )
        r["also"] = ", ".join(r["aliases"])
        r["node"] = f"{r['node_nm']:g} nm"
    columns = [("name", "platform"), ("kind", "kind"), ("node", "node"), ("lut", "LUT"),
               ("ff", "FF"), ("dsp", "DSP"), ("bram", "BRAM"), ("accel", "default accelerator"),
               ("also", "aliases")]  # fmt: skip
    print(_table(rows, columns), end="")
    return 0

"""Render the Verilog PE array for a hardware spec: RTL, file list and manifest.

  autochip emit --hw HW.yaml --out DIR [--depth T] [--lint] [--json]

Writes DIR/rtl/*.v (hand-written PEs + the array rendered from templates/pe_array_os.v.j2),
DIR/files.f (the file list, relative to DIR) and DIR/manifest.json (parameters, ports, expected
cycles per tile). --depth T also checks that a reduction of T terms cannot overflow the
accumulator; --lint runs `verilator --lint-only -Wall` on the result.
"""

from __future__ import annotations

import argparse
import json

from autochip._safeio import output_dir_problems, raise_output_problems
from autochip.builder.emit import emit_design
from autochip.builder.lint import lint_design
from autochip.hw.spec import load_hardware_spec

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hw", required=True, metavar="HW.yaml", help="accelerator description")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--depth", type=int, metavar="T", help="reduction depth to check for overflow")
    p.add_argument("--lint", action="store_true", help="run verilator --lint-only -Wall")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")


def run(args: argparse.Namespace) -> int:
    raise_output_problems("autochip emit", output_dir_problems("--out", args.out))
    hw = load_hardware_spec(args.hw)
    result = emit_design(hw, args.out, depth=args.depth, source=args.hw)
    if args.lint:
        lint_design(result.out_dir)
    if args.json:
        print(json.dumps(result.manifest, indent=2, sort_keys=True))
        return 0
    p = result.params
    cycles = result.manifest["cycles"]
    print(f"{p.top}: {p.rows} x {p.cols} {p.kind} PEs ({p.pe_module} {' '.join(p.pe_parameters)})")
    print(f"  dataflow      {p.dataflow} (output-stationary)")
    print(f"  a_in / b_in   {p.a_bus_bits} / {p.b_bus_bits} bits, out_data {p.out_bus_bits} bits")
    formula, constant = cycles["per_tile_formula"], cycles["per_tile_constant"]
    print(f"  cycles/tile   {formula} (R + C - 1 = {constant})")
    print(f"  max depth T   {p.max_depth} terms without accumulator overflow")
    if args.lint:
        print("  lint          verilator --lint-only -Wall: clean")
    for name in result.files:
        print(f"  wrote {result.out_dir / name}")
    return 0

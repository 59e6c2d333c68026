"""Compile a compressed model into a complete accelerator core: RTL, program, DRAM image, testbench.

  autochip build MODEL (--hw HW.yaml | --platform NAME) --out DIR [--images N] [--json]

MODEL is the integer model written by `autochip compress` (CKPT.npz), or its checkpoint CKPT.pt
with the .npz beside it. --hw gives the core's array, precision and buffer sizes; --platform
searches the core's design space for the platform (`autochip explore`, objective latency,
the device as budget) and builds the chosen core, writing its spec as hw.yaml in DIR to edit
and rebuild with --hw (ECP5/iCE40, which have no whole-core resource model: the platform's
default array, at most 16 x 16); AdderNet datapaths when the model has adder layers.
DIR receives rtl/ (the core), files.f and manifest.json (for `autochip synth DIR`),
dram.bin, program.bin, plan.json (memory map, tiling plan, predicted cycles), model.npz,
inputs.npy (N quantised test inputs: digits test images for 8x8 models, else seeded random),
tb/tb_core.py (the cocotb testbench of `autochip sim DIR`) and report.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from autochip._progress import Stages
from autochip._safeio import atomic_write_text, output_dir_problems, raise_output_problems
from autochip.builder.core_build import build_core
from autochip.errors import SpecError
from autochip.hw.spec import HardwareSpec, load_hardware_spec
from autochip.reference import IntegerModel, load_integer_model, quantize_input

__all__ = ["add_arguments", "run"]

DIGITS_SHAPE = (1, 8, 8)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="integer model .npz (or its checkpoint .pt)")
    p.add_argument("--hw", metavar="HW.yaml", help="hardware spec of the core")
    p.add_argument("--platform", metavar="NAME", help="use the platform's default accelerator")
    p.add_argument("--out", required=True, metavar="DIR", help="build folder to write")
    p.add_argument("--images", type=int, default=20, help="test inputs to store (20)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _integer_model(spec: str) -> IntegerModel:
    path = Path(spec)
    if path.suffix == ".pt":
        path = path.with_suffix(".npz")
        if not path.is_file():
            raise SpecError(
                spec,
                [f"expected the integer model '{path}' that `autochip compress` writes beside "
                 "the checkpoint, found no such file"],
            )  # fmt: skip
    elif path.suffix != ".npz":
        raise SpecError(
            spec,
            [f"expected an integer model .npz from `autochip compress` (or its .pt), found "
             f"'{spec}'"],
        )  # fmt: skip
    return load_integer_model(path)


def _hardware(args: argparse.Namespace, model: IntegerModel) -> tuple[HardwareSpec, str]:
    if bool(args.hw) == bool(args.platform):
        raise SpecError(
            "autochip build", ["expected exactly one of --hw HW.yaml or --platform NAME"]
        )
    if args.hw:
        return load_hardware_spec(args.hw), str(args.hw)
    from autochip.builder.explore_build import choose_core

    hw, args.chosen_design = choose_core(model, args.platform, Path(args.model).stem)
    return hw, f"--platform {args.platform} (design-space search, hw.yaml)"


def default_inputs(model: IntegerModel, n: int) -> np.ndarray:
    """``n`` quantised inputs: the digits test split for 8x8 models, else seeded uniform 0..1."""
    shape = tuple(model.input_shape[1:])
    if shape == DIGITS_SHAPE:
        from autochip.compress.data import load_digits

        x = load_digits().x_test[:n].numpy()
    else:
        x = np.random.default_rng(0).random((n, *shape), dtype=np.float32)
    return quantize_input(model, x)


def run(args: argparse.Namespace) -> int:
    if args.images < 1:
        raise SpecError("autochip build", [f"--images: expected >= 1, found {args.images}"])
    raise_output_problems("autochip build", output_dir_problems("--out", args.out))
    model = _integer_model(args.model)
    hw, source = _hardware(args, model)
    with Stages("build", 3) as progress:  # drawn only on a terminal
        res = build_core(model, hw, args.out, default_inputs(model, args.images), source,
                         progress=progress)  # fmt: skip
    if getattr(args, "chosen_design", None):
        from autochip.builder.explore_build import spec_yaml

        atomic_write_text(Path(args.out) / "hw.yaml", spec_yaml(args.chosen_design))
    total = sum(c.total for c in res.cycles)
    if args.json:
        out = {
            "out_dir": str(res.out_dir),
            "core": dataclasses.asdict(res.core),
            "dram_bytes": len(res.program.dram),
            "layers": [
                {"name": lay.name, "kind": lay.kind, "mode": lay.mode,
                 "cycles_predicted": cyc.layer}
                for lay, cyc in zip(res.program.layers, res.cycles[:-1], strict=True)
            ],
            "cycles_predicted_total": total,
            "files": list(res.files),
        }  # fmt: skip
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    c = res.core
    print(
        f"built {c.top} for '{c.spec_name}' in {res.out_dir}: {c.rows}x{c.cols} {c.kind} "
        f"array, {len(res.program.layers)} layers, DRAM image {len(res.program.dram)} bytes"
    )
    print(f"{'layer':<24}{'kind':<9}{'mode':<8}{'cycles (predicted)':>20}")
    for lay, cyc in zip(res.program.layers, res.cycles[:-1], strict=True):
        print(f"{lay.name:<24}{lay.kind:<9}{lay.mode:<8}{cyc.layer:>20}")
    print(f"{'total (with end descriptor)':<41}{total:>20}")
    return 0

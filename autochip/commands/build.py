"""Compile a model (integer, or float quantised post-training) into a complete accelerator core.

  autochip build MODEL (--hw HW.yaml [--platform NAME] | --platform NAME [--budget K=V,...])
                 --out DIR
                 [--calibrate DATA] [--images N] [--json]

MODEL is the integer model written by `autochip compress` (CKPT.npz), or its checkpoint CKPT.pt
with the .npz beside it, or a float model (zoo name, .py, torch.export .pt2, or an FP32
checkpoint .pt), which is quantised post-training to int8 (per-channel weights, per-tensor
activations; no training): calibrated on --calibrate DATA (digits, fashion-mnist, cifar10:PATH,
a dataset folder, or an .npy of float inputs [N, C, H, W]), or without it on seeded synthetic
inputs; the report says which.
--hw gives the core's array, precision and buffer sizes; --platform searches the core's design
space for the platform (`autochip explore`, objective latency, the device or --budget as
budget) and builds the chosen core, writing its spec as hw.yaml in DIR to edit and rebuild with
--hw (iCE40, which has no whole-core resource model: the platform's default array, at most
16 x 16, unsearched); --hw with --platform builds the spec as given for that platform (no
search; the Fmax check refers to the platform's FPGA family only);
AdderNet datapaths when the model has adder layers. DIR receives rtl/ (the core), files.f and
manifest.json (for `autochip synth DIR`), dram.bin, program.bin, plan.json (memory map, tiling
plan, predicted cycles), model.npz, inputs.npy (N quantised test inputs: the test split of
--calibrate DATA, else digits test images for 8x8 models, else seeded random),
tb/tb_core.py (the cocotb testbench of `autochip sim DIR`) and report.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autochip._progress import Stages
from autochip._safeio import (
    atomic_write_text,
    output_dir_problems,
    raise_output_problems,
    user_code,
)
from autochip.builder.compiler import compile_model
from autochip.builder.core import core_params
from autochip.builder.core_build import build_core
from autochip.errors import AutochipError, SpecError
from autochip.hw.platform import load_platform
from autochip.hw.spec import HardwareSpec, load_hardware_spec
from autochip.predictor.core_model import RESOURCE_TARGETS, fmax_warnings
from autochip.reference import IntegerModel, load_integer_model, quantize_input
from autochip.reference import run as run_integer

__all__ = ["add_arguments", "run"]

DIGITS_SHAPE = (1, 8, 8)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        metavar="MODEL",
        help="integer model .npz (or its checkpoint .pt), or a float model to quantise "
        "(zoo name, .py, .pt2, FP32 checkpoint .pt)",
    )
    p.add_argument("--hw", metavar="HW.yaml", help="hardware spec of the core")
    p.add_argument(
        "--platform",
        metavar="NAME",
        help="search the core for the platform (as `autochip explore`) and build it; with "
        "--hw: the platform the spec is for (its FPGA family's Fmax check)",
    )
    p.add_argument(
        "--budget",
        metavar="K=V,...",
        help="with --platform: caps on top of the device for the search "
        "(lut=,ff=,dsp=,bram=,power_w= | area_mm2=,power_w=; as explore)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="build folder to write")
    p.add_argument("--images", type=int, default=20, help="test inputs to store (20)")
    p.add_argument(
        "--calibrate",
        metavar="DATA",
        help="post-training quantisation of a float MODEL: digits, fashion-mnist, cifar10:PATH, "
        "a dataset folder or an .npy of inputs (default: seeded synthetic inputs)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


@dataclass(frozen=True)
class _Quantised:
    """The integer model to build; for a float MODEL, its PTQ report and held-out inputs."""

    model: IntegerModel
    check: Callable[[], dict[str, Any]] | None = None  # the PTQ report (compares with float)
    inputs: np.ndarray | None = None  # quantised test inputs from the calibration data


def _is_integer_spec(spec: str) -> bool:
    path = Path(spec)
    if path.suffix == ".npz":
        return True
    if path.suffix != ".pt" or not path.is_file():
        return False
    from autochip.compress.checkpoint import read_checkpoint

    return read_checkpoint(path).get("policy") is not None  # compressed: its .npz is beside


def _model(spec: str, calibrate: str | None, images: int) -> _Quantised:
    """MODEL -> the integer model: read as is, or a float model quantised post-training."""
    if _is_integer_spec(spec):
        if calibrate is not None:
            raise SpecError(
                "autochip build",
                [f"--calibrate: MODEL '{spec}' is already an integer model; --calibrate "
                 "applies to float models (zoo name, .py, .pt2, FP32 checkpoint .pt)"],
            )  # fmt: skip
        return _Quantised(_integer_model(spec))
    if Path(spec).suffix not in ("", ".py", ".pt", ".pt2"):
        return _Quantised(_integer_model(spec))  # the integer-model error names what is expected
    return _post_training(spec, calibrate, images)


def _post_training(spec: str, calibrate: str | None, images: int) -> _Quantised:
    """Quantise a float model to int8 without training (autochip.compress.ptq)."""
    import torch

    from autochip.compress.ptq import calibration_inputs, lift_exported, ptq, sample_budget
    from autochip.ir import load_model

    with user_code(f"MODEL '{spec}'"):  # a model .py runs: it may not print to stdout or exit
        if spec.endswith(".pt"):
            from autochip.compress.checkpoint import load_checkpoint

            model, example = load_checkpoint(spec)
        else:
            loaded = load_model(spec)
            if not isinstance(loaded.example_input, torch.Tensor):
                raise SpecError(spec, ["expected a model with one input tensor"])
            model, example = loaded.model, loaded.example_input
            if loaded.program is not None:  # a .pt2: ATen calls back to quantisable modules
                model = lift_exported(loaded.program)
        try:
            samples, check = sample_budget(model, example)  # the model's first forward
        except AutochipError:
            raise
        except Exception:  # the model's own code failed: trace it for the node and line
            from autochip.ir import trace

            trace(model, example, Path(spec).stem)
            raise
        cal = calibration_inputs(calibrate, tuple(example.shape[1:]), samples)
        notes: list[str] = []
        integer = ptq(model, example, cal.x, notes=notes)

    def report() -> dict[str, Any]:
        return {**ptq_report(model, integer, cal, check), "step_changes": notes}

    inputs = None
    if not cal.synthetic:
        inputs = quantize_input(integer, cal.x_test[:images].numpy())
    return _Quantised(integer, report, inputs)  # the report runs once the model compiles


def ptq_report(model: Any, integer: IntegerModel, cal: Any, n: int = 256) -> dict[str, Any]:
    """How the float model was quantised and how well the integer model agrees with it.

    Agreement is measured on up to ``n`` held-out inputs of the calibration source (the test
    split, or further synthetic inputs; ``n`` from :func:`autochip.compress.ptq.sample_budget`):
    top-1 class agreement, the largest logit difference and the float model's largest logit
    magnitude; accuracies when labels exist.
    """
    import torch

    x = cal.x_test[:n]
    with torch.no_grad():
        was = model.training
        model.eval()
        ref = model(x).double().numpy()
        model.train(was)
    out, _ = run_integer(integer, quantize_input(integer, x.numpy()))
    got = out.astype(np.float64) * integer.output_scale
    rep: dict[str, Any] = {
        "method": "post-training int8 (per-channel weights, per-tensor activations)",
        "calibration": cal.source,
        "calibration_inputs": len(cal.x),
        "synthetic": cal.synthetic,
        "check_inputs": len(x),
        "class_agreement": (
            float((got.argmax(1) == ref.argmax(1)).mean()) if ref.ndim == 2 else None
        ),
        "max_logit_error": float(np.abs(got - ref).max()),
        "max_logit": float(np.abs(ref).max()),
    }
    if cal.y_test is not None and ref.ndim == 2:
        y = cal.y_test[:n].numpy()
        rep["accuracy_float"] = float((ref.argmax(1) == y).mean())
        rep["accuracy_integer"] = float((got.argmax(1) == y).mean())
    return rep


def _quant_line(rep: dict[str, Any]) -> str:
    acc = ""
    if "accuracy_float" in rep:
        acc = (f", accuracy float {100 * rep['accuracy_float']:.2f} % -> integer "
               f"{100 * rep['accuracy_integer']:.2f} %")  # fmt: skip
    agree = rep["class_agreement"]
    agree_s = f"class agreement {100 * agree:.2f} %, " if agree is not None else ""
    changed = rep.get("step_changes") or []
    steps = (
        f"; {len(changed)} activation step(s) made coarser so that folded biases fit the "
        "32-bit accumulator (report.md)"
        if changed
        else ""
    )
    return (
        f"quantised post-training to int8, calibrated on {rep['calibration']}: {agree_s}max "
        f"logit error {rep['max_logit_error']:.4g} (max |logit| {rep['max_logit']:.4g}) on "
        f"{rep['check_inputs']} held-out inputs{acc}{steps}"
    )


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
    if not args.hw and not args.platform:
        raise SpecError(
            "autochip build", ["expected --hw HW.yaml or --platform NAME, found neither"]
        )
    if args.hw:
        if args.platform:
            load_platform(args.platform)  # a bad name: exit 2 here
        return load_hardware_spec(args.hw), str(args.hw)
    from autochip.builder.explore_build import choose_core

    hw, args.chosen_design = choose_core(model, args.platform, Path(args.model).stem,
                                         budget=args.budget)  # fmt: skip
    return hw, f"--platform {args.platform} (design-space search, hw.yaml)"


def _check_budget(args: argparse.Namespace) -> None:
    if not args.platform or args.hw:
        raise SpecError("autochip build", ["--budget: expected with --platform NAME and no "
                                           "--hw (the search's budget)"])  # fmt: skip
    from autochip.builder.space import parse_budget

    plat = load_platform(args.platform)
    if plat.device is not None and plat.device.synth_target not in RESOURCE_TARGETS:
        raise SpecError("--budget", [
            f"expected a platform with a whole-core resource model ({', '.join(RESOURCE_TARGETS)}"
            f" devices, or an ASIC), found the {plat.device.synth_target} platform "
            f"'{args.platform}', whose default core is built unsearched"])  # fmt: skip
    parse_budget(args.budget, plat, 0.05)


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
    if args.budget is not None:  # before any work: the search's budget
        _check_budget(args)
    quant = _model(args.model, args.calibrate, args.images)
    model = quant.model
    hw, source = _hardware(args, model)
    report = None
    if quant.check is not None:  # refuse what the core cannot run before the float comparison
        compile_model(model, core_params(hw, source))
        report = quant.check()
    inputs = quant.inputs if quant.inputs is not None else default_inputs(model, args.images)
    with Stages("build", 3) as progress:  # drawn only on a terminal
        res = build_core(model, hw, args.out, inputs, source, progress=progress,
                         quantisation=report)  # fmt: skip
    if getattr(args, "chosen_design", None):
        from autochip.builder.explore_build import spec_yaml

        atomic_write_text(Path(args.out) / "hw.yaml", spec_yaml(args.chosen_design))
    total = sum(c.total for c in res.cycles)
    # the platform's FPGA family when there is one (a Xilinx board gets no ECP5 warning);
    # with --hw alone the target is unknown: every family with an Fmax model
    targets: tuple[str, ...] = tuple(RESOURCE_TARGETS)
    if args.platform:
        device = load_platform(args.platform).device  # None: an ASIC platform
        target = device.synth_target if device is not None else ""
        targets = (target,) if target in RESOURCE_TARGETS else ()
    for warning in fmax_warnings(res.core, res.core.clock_mhz, targets):
        print(warning, file=sys.stderr)
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
            "quantisation": report,
        }  # fmt: skip
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    c = res.core
    print(
        f"built {c.top} for '{c.spec_name}' in {res.out_dir}: {c.rows}x{c.cols} {c.kind} "
        f"array, {len(res.program.layers)} layers, DRAM image {len(res.program.dram)} bytes"
    )
    if report is not None:
        print(_quant_line(report))
    print(f"{'layer':<24}{'kind':<11}{'mode':<8}{'cycles (predicted)':>20}")
    for lay, cyc in zip(res.program.layers, res.cycles[:-1], strict=True):
        print(f"{lay.name:<24}{lay.kind:<11}{lay.mode:<8}{cyc.layer:>20}")
    print(f"{'total (with end descriptor)':<43}{total:>20}")
    return 0

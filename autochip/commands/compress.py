"""Compress a model (quantise, binarise, adder layers or prune), export integers, check agreement.

Trains the FP32 model first (or loads it: MODEL may be an FP32 checkpoint), converts it with the
method's policy (first and last layers int8), calibrates, trains the compressed model, exports it
to the integer model and evaluates all three on the test split. Writes CKPT (the compressed
checkpoint), CKPT with suffix .npz (the integer model for autochip.reference) and, when it trained
one, the FP32 model beside it as <stem>.fp32.pt (usable as --kd TEACHER).

  autochip compress lenet_digits --method quant --bits 8/8 --data digits --epochs 30 --out q8.pt
  autochip compress lenet_digits --method adder --kd q8.fp32.pt --epochs 30 --out adder_kd.pt
  autochip compress lenet_digits --method binary --kd q8.fp32.pt --kd-loss skd --out b.pt

The defaults are the recipes measured on LeNet-5 / Fashion-MNIST (docs/compression.md, Results):
batch 128, 20 FP32 epochs, and distillation from a copy of the FP32 model being compressed
(Hinton KD; PKKD for adder) unless --kd TEACHER names another or --no-kd turns it off; epochs and
learning rate per method: quant 1 epoch at 1e-4 (8 bits), 2 at 5e-4 (4..7 bits), 3 at 1e-3
(2..3 bits); binary 12 at 2e-3 (with a batch-norm before each binariser, --no-binary-bn to drop
it); adder 6 at 1e-2; prune 24 fine-tuning epochs, then 1 int8 epoch at 1e-3. On a small data
set such as digits (1,437 training images) give --batch-size 32 and more epochs.

--method prune removes channels or residual blocks (docs/compression.md, Pruning), fine-tunes the
smaller FP32 model for --epochs, then quantises it at --bits like --method quant
(--quant-epochs); <stem>.fp32.pt is the pruned FP32 model:

  autochip compress models/lenet5_fashion.fp32.pt --method prune --ratio 0.5 \
      --data fashion-mnist --out p.pt
  autochip compress models/resnet8_fashion.fp32.pt --method prune --latency-budget 4e-5 \
      --platform asic-45nm --data fashion-mnist --out p.pt
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from torch import nn

from autochip._safeio import output_file_problems, user_code
from autochip.compress import prune as pr
from autochip.compress.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from autochip.compress.convert import convert
from autochip.compress.data import Dataset, load_data
from autochip.compress.distill import KD_LOSSES
from autochip.compress.export import export_integer
from autochip.compress.policy import CALIBRATIONS, parse_bits, policy_for_method
from autochip.compress.train import (
    TrainConfig,
    calibrate,
    evaluate,
    init_adder_weights,
    logits,
    seed_everything,
    train,
)
from autochip.errors import CompressionError, SpecError
from autochip.reference import quantize_input, save_integer_model
from autochip.reference import run as run_integer

__all__ = ["add_arguments", "run"]

FP32_LR = 3e-3
# The defaults are the recipes measured on LeNet-5 / Fashion-MNIST (docs/compression.md,
# Results): (epochs, learning rate) per method, quant by its narrowest width (8; 4..7; 2..3).
# prune: fine-tuning epochs of the pruned FP32 model (at FP32_LR / 3), then PRUNE_QUANT_EPOCHS
# int8 epochs at the learning rate given here.
RECIPES = {
    "quant8": (1, 1e-4),
    "quant4": (2, 5e-4),
    "quant2": (3, 1e-3),
    "binary": (12, 2e-3),
    "adder": (6, 1e-2),
    "prune": (24, 1e-3),
}
PRUNE_QUANT_EPOCHS = 1
FP32_EPOCHS = 20
BATCH_SIZE = 128
CALIBRATION_SAMPLES = 512


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="zoo name, .py file or FP32 checkpoint .pt")
    p.add_argument("--method", required=True, choices=["quant", "binary", "adder", "prune"])
    p.add_argument("--bits", default="8/8", help="W/A bits 2..8 for quant and adder (8/8)")
    p.add_argument(
        "--kd",
        metavar="TEACHER",
        help="FP32 teacher to distil from: zoo name, .py file or FP32 checkpoint .pt (default: "
        "a copy of the FP32 model being compressed)",
    )
    p.add_argument(
        "--no-kd", action="store_true", help="no distillation: train on the labels alone"
    )
    p.add_argument(
        "--kd-any-arch",
        action="store_true",
        help="accept a --kd TEACHER of another architecture than MODEL (kd and skd only; it must "
        "still take MODEL's input and give its logits); without it such a teacher is refused",
    )
    p.add_argument(
        "--kd-loss",
        choices=KD_LOSSES,
        default=None,
        help="distillation loss: kd (Hinton), skd (spherical), pkkd (adder only); default pkkd "
        "for adder, kd otherwise",
    )
    p.add_argument(
        "--data",
        default="digits",
        help="digits, fashion-mnist[:DIR] (Debian's idx files), or a CIFAR-10 / image folder path",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs of compressed training (quant: 1 at 8 bits, 2 at 4..7, 3 at 2..3; binary "
        "12; adder 6; prune: FP32 fine-tuning of the pruned model, 24)",
    )
    p.add_argument(
        "--fp32-epochs", type=int, default=FP32_EPOCHS, help=f"FP32 epochs ({FP32_EPOCHS})"
    )
    p.add_argument("--out", required=True, metavar="CKPT", help="checkpoint to write (.pt)")
    p.add_argument(
        "--model-code",
        metavar="FILE.py",
        help="the model's Python file, when a checkpoint given as MODEL or --kd names one",
    )
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--estimator", choices=["ste", "fda"], default="ste", help="binary gradient")
    p.add_argument(
        "--binary-bn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="binary: a batch-norm before each binariser that has none, folded into the integer "
        "thresholds (default on)",
    )
    p.add_argument("--calibration", choices=CALIBRATIONS, default="minmax")
    p.add_argument(
        "--steps",
        choices=["lsq", "static"],
        default="lsq",
        help="learn quantiser steps (LSQ) or keep the calibrated ones",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate of the compressed model (quant: 1e-4 at 8 bits, 5e-4 at 4..7, 1e-3 "
        "at 2..3; binary 2e-3; adder 1e-2; prune: of its int8 epochs, 1e-3)",
    )
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"({BATCH_SIZE})")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    _prune_arguments(p)


def _prune_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pruning (--method prune)")
    g.add_argument("--ratio", type=float, help="fraction of the network's MACs to remove (0..1)")
    g.add_argument("--macs", type=int, help="MACs to keep at most")
    g.add_argument("--latency-budget", type=float, metavar="S", help="predicted latency (s)")
    g.add_argument(
        "--energy-budget", type=float, metavar="J", help="predicted energy per inference (J)"
    )
    g.add_argument("--blocks", type=int, help="residual blocks to remove (--criterion block)")
    g.add_argument(
        "--stage-weights",
        metavar="W,W,...",
        help="--criterion l1: relative pruning of the network's stages (the prunable layers in "
        "compute order, split into as many runs as weights), e.g. 0.5,1,1.5; default uniform",
    )
    g.add_argument("--hw", metavar="HW.yaml", help="accelerator of the budget / --criterion hw")
    g.add_argument("--platform", metavar="NAME", help="platform of the budget / --criterion hw")
    g.add_argument(
        "--criterion",
        choices=pr.CRITERIA,
        default=None,
        help="l1 filter norms (default), hw: predicted latency (with --energy-budget: energy) "
        "per lost importance (default with a budget), block: residual blocks by linear-probe "
        "discrimination",
    )
    g.add_argument(
        "--early-bird",
        type=float,
        metavar="D",
        help="stop FP32 pre-training once the pruning mask moves less than D (0..1) for 3 epochs",
    )
    g.add_argument(
        "--quant-epochs",
        type=int,
        default=PRUNE_QUANT_EPOCHS,
        help=f"quantisation-aware epochs after pruning ({PRUNE_QUANT_EPOCHS})",
    )


def _check(args: argparse.Namespace) -> tuple[tuple[int, int], Path]:
    problems: list[str] = []
    bits = (8, 8)
    try:
        bits = parse_bits(args.bits)
    except CompressionError as exc:
        problems.append(str(exc))
    epochs, lr = _recipe(args.method, bits)
    if args.epochs is None:
        args.epochs = epochs
    if args.epochs < 0:
        problems.append(f"--epochs: expected an integer >= 0, found {args.epochs}")
    if args.fp32_epochs < 0:
        problems.append(f"--fp32-epochs: expected an integer >= 0, found {args.fp32_epochs}")
    if args.batch_size < 1:
        problems.append(f"--batch-size: expected an integer >= 1, found {args.batch_size}")
    if args.threads < 1:
        problems.append(f"--threads: expected an integer >= 1, found {args.threads}")
    if args.kd and args.no_kd:
        problems.append(f"--kd {args.kd} and --no-kd: expected one of them, found both")
    if args.kd_loss is not None and args.no_kd:
        problems.append(f"--kd-loss {args.kd_loss}: distils, expected no --no-kd beside it")
    if args.kd_loss == "pkkd" and args.method != "adder":
        problems.append(
            f"--kd-loss pkkd: distils adder layers, expected --method adder, found "
            f"--method {args.method} (use kd or skd)"
        )
    if not args.no_kd and args.kd_loss is None:
        args.kd_loss = "pkkd" if args.method == "adder" else "kd"
    if args.binary_bn is not None and args.method != "binary":
        flag = "--binary-bn" if args.binary_bn else "--no-binary-bn"
        problems.append(f"{flag}: expected --method binary beside it, found --method {args.method}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        problems.append(f"--lr: expected a positive number, found {args.lr}")
    if args.lr is None:
        args.lr = lr
    problems += _prune_problems(args)
    out = Path(args.out)
    if out.suffix != ".pt":
        problems.append(f"--out: expected a checkpoint path ending in .pt, found '{args.out}'")
    if not out.parent.is_dir():
        problems.append(f"--out: the directory '{out.parent}' does not exist")
    if out.is_dir():
        problems.append(f"--out: '{out}' is a directory")
    if not problems:
        problems += output_file_problems("--out", args.out)
    if problems:
        raise SpecError("autochip compress", problems)
    return bits, out


def _recipe(method: str, bits: tuple[int, int]) -> tuple[int, float]:
    """The default (epochs, learning rate) of ``method`` at ``bits`` (RECIPES)."""
    if method != "quant":
        return RECIPES[method]
    narrow = min(bits)
    return RECIPES["quant8" if narrow == 8 else "quant4" if narrow >= 4 else "quant2"]


def _prune_problems(args: argparse.Namespace) -> list[str]:
    opts = (
        "ratio",
        "macs",
        "latency_budget",
        "energy_budget",
        "blocks",
        "hw",
        "platform",
        "criterion",
        "stage_weights",
    )
    given = [f"--{o.replace('_', '-')}" for o in opts if getattr(args, o) is not None]
    if args.early_bird is not None:
        given.append("--early-bird")
    if args.method != "prune":
        return [f"{g}: a pruning option, expected --method prune beside it" for g in given]
    out: list[str] = []
    targets = [
        t
        for t in ("ratio", "macs", "latency_budget", "energy_budget", "blocks")
        if getattr(args, t) is not None
    ]
    if len(targets) != 1:
        out.append(
            "--method prune: expected one target, --ratio R, --macs N, --latency-budget S, "
            f"--energy-budget J or --blocks N, found {len(targets)}"
        )
    if args.ratio is not None and not (math.isfinite(args.ratio) and 0 < args.ratio < 1):
        out.append(f"--ratio: expected a fraction of MACs to remove, 0 < R < 1, found {args.ratio}")
    if args.macs is not None and args.macs < 1:
        out.append(f"--macs: expected an integer >= 1, found {args.macs}")
    if args.blocks is not None and args.blocks < 1:
        out.append(f"--blocks: expected an integer >= 1, found {args.blocks}")
    lb, jb = args.latency_budget, args.energy_budget
    if lb is not None and not (math.isfinite(lb) and lb > 0):
        out.append(f"--latency-budget: expected seconds > 0, found {lb}")
    if jb is not None and not (math.isfinite(jb) and jb > 0):
        out.append(f"--energy-budget: expected joules per inference > 0, found {jb}")
    budget = lb is not None or jb is not None
    if args.criterion is None:
        args.criterion = "block" if args.blocks else "hw" if budget else "l1"
    if (budget or args.criterion == "hw") and not (args.hw or args.platform):
        out.append(
            "--latency-budget / --energy-budget / --criterion hw: expected --hw HW.yaml or "
            "--platform NAME"
        )
    if args.stage_weights is not None:
        try:
            wts = tuple(float(v) for v in args.stage_weights.split(","))
        except ValueError:
            wts = ()
        if not wts or not all(math.isfinite(w) and w >= 0 for w in wts) or max(wts) <= 0:
            out.append(
                "--stage-weights: expected comma-separated weights >= 0, not all 0 (e.g. "
                f"0.5,1,1.5), found {args.stage_weights!r}"
            )
        elif args.criterion != "l1" or (args.macs is None and args.ratio is None):
            out.append(
                "--stage-weights: weights the l1 criterion at a --ratio or --macs target, "
                f"found --criterion {args.criterion}"
                + ("" if args.macs is not None or args.ratio is not None else " without one")
            )
        else:
            args.stage_weights_t = wts
    if args.blocks is not None and args.criterion != "block":
        out.append(
            f"--blocks: removes residual blocks, expected --criterion block, found {args.criterion}"
        )
    eb = args.early_bird
    if eb is not None and not (math.isfinite(eb) and 0 <= eb <= 1):
        out.append(f"--early-bird: expected a mask distance 0..1, found {eb}")
    if args.quant_epochs < 0:
        out.append(f"--quant-epochs: expected an integer >= 0, found {args.quant_epochs}")
    return out


def _pruner(model: nn.Module, example: torch.Tensor, args: argparse.Namespace) -> pr.Pruner:
    """The model's pruning analysis with the predictor of --hw / --platform; targets checked."""
    from autochip.hw.platform import load_platform
    from autochip.hw.spec import load_hardware_spec

    latency = energy = None
    if args.hw or args.platform:
        platform = load_platform(args.platform or "asic-45nm")
        hw = load_hardware_spec(args.hw) if args.hw else platform.default_hw
        latency = pr.latency_fn(hw, platform, example)
        energy = pr.energy_fn(hw, platform, example)
    pruner = pr.Pruner(copy.deepcopy(model), example, latency, energy)
    pruner.check(_target(args, pruner.macs_before))
    return pruner


def _target(args: argparse.Namespace, macs_before: int) -> pr.PruneTarget:
    macs = args.macs
    if args.ratio is not None:
        macs = math.floor(macs_before * (1.0 - args.ratio))
    return pr.PruneTarget(
        args.criterion,
        macs,
        args.latency_budget,
        args.blocks,
        args.energy_budget,
        getattr(args, "stage_weights_t", ()),
    )


def _prune(
    pruner: pr.Pruner,
    fp: nn.Module,
    data: Dataset,
    args: argparse.Namespace,
    teacher: nn.Module | None,
) -> tuple[nn.Module, pr.PruneResult]:
    """Prune the trained FP32 model to the target, then fine-tune it (with --kd, distilled)."""
    pruner.model = copy.deepcopy(fp).eval()
    plan, scores = pruner.plan(_target(args, pruner.macs_before), data, args.seed)
    res = pruner.result(plan, scores)
    cfg = TrainConfig(
        epochs=args.epochs, lr=FP32_LR / 3, batch_size=args.batch_size, seed=args.seed
    )
    train(
        res.model, data, cfg, desc="prune fine-tune", teacher=teacher, kd_loss=args.kd_loss or "kd"
    )
    res.model.eval()
    return res.model, res


def _load_fp32(
    spec: str, role: str, model_code: str | None = None
) -> tuple[nn.Module, torch.Tensor, str, bool]:
    """(model, example input, model spec, pretrained?) for a MODEL/TEACHER argument."""
    from autochip.ir import load_model

    if spec.endswith(".pt"):
        data = read_checkpoint(spec)
        if data.get("policy") is not None:
            raise CompressionError(
                f"{role} '{spec}': expected an FP32 checkpoint (e.g. the <stem>.fp32.pt that "
                f"autochip compress writes), found a compressed one ({data['meta'].get('method')})"
            )
        model, example = load_checkpoint(spec, model_code)
        return model, example, model_code or str(data["model"]), True
    loaded = load_model(spec)
    if loaded.program is not None:
        raise CompressionError(
            f"{role} '{spec}': a torch.export .pt2 program cannot be trained; give the model's "
            ".py file or zoo name"
        )
    if not isinstance(loaded.example_input, torch.Tensor):
        raise CompressionError(f"{role} '{spec}': expected one example input tensor")
    return loaded.model, loaded.example_input, spec, False


def _check_outputs(model: nn.Module, example: torch.Tensor, data: Dataset, spec: str) -> None:
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(example)
    model.train(was)
    n = len(data.classes)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] != n:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise CompressionError(
            f"MODEL '{spec}': expected logits of shape (N, {n}) for the {n} classes of "
            f"{data.name}, found {shape}"
        )


def _check_teacher(
    teacher: nn.Module, example: torch.Tensor, t_example: torch.Tensor, data: Dataset, spec: str
) -> None:
    """The teacher must take MODEL's input and give MODEL's output shape (N, classes)."""
    n = len(data.classes)
    if tuple(t_example.shape[1:]) != tuple(example.shape[1:]):
        raise CompressionError(
            f"--kd TEACHER '{spec}': expected MODEL's input shape {tuple(example.shape[1:])}, "
            f"found {tuple(t_example.shape[1:])}"
        )
    was = teacher.training
    teacher.eval()
    with torch.no_grad():
        out = teacher(example)
    teacher.train(was)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (example.shape[0], n):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise CompressionError(
            f"--kd TEACHER '{spec}': expected logits of shape ({example.shape[0]}, {n}) like "
            f"MODEL's for the {n} classes of {data.name}, found {shape}"
        )


def _start_and_teacher(
    model: nn.Module,
    example: torch.Tensor,
    pretrained: bool,
    data: Dataset,
    args: argparse.Namespace,
) -> tuple[nn.Module, nn.Module | None, bool]:
    """(FP32 start of the student, teacher or None, whether the start was loaded, not trained).

    Without --kd the start is MODEL (trained here unless it is a checkpoint) and the teacher a
    copy of it (none with --no-kd). With --kd TEACHER of MODEL's architecture and an untrained
    MODEL, the teacher is also the start (it is trained once); otherwise MODEL and TEACHER are
    loaded or trained separately. PKKD needs MODEL's architecture. The teacher is checked before
    any training.
    """
    if not args.kd:
        fp = _fp32(model, pretrained, data, args, "fp32")
        return fp, None if args.no_kd else copy.deepcopy(fp), pretrained
    teacher, t_example, _, t_pretrained = _load_fp32(args.kd, "--kd TEACHER", args.model_code)
    _check_teacher(teacher, example, t_example, data, args.kd)
    same = _same_architecture(teacher, model)
    if args.kd_loss == "pkkd" and not same:
        raise CompressionError(
            f"--kd TEACHER '{args.kd}': --kd-loss pkkd expected MODEL '{args.model}''s "
            "architecture (it matches layers by name and shape), found another one"
        )
    if not same and not args.kd_any_arch:
        raise CompressionError(
            f"--kd TEACHER '{args.kd}': expected MODEL '{args.model}''s architecture (the same "
            "parameter names and shapes, e.g. its FP32 checkpoint), found another one; pass "
            "--kd-any-arch to distil from a different network on purpose"
        )
    if same and not pretrained:
        fp = _fp32(teacher, t_pretrained, data, args, "fp32 teacher")
        return fp, copy.deepcopy(fp), t_pretrained
    fp = _fp32(model, pretrained, data, args, "fp32")
    return fp, _fp32(teacher, t_pretrained, data, args, "fp32 teacher"), pretrained


def _same_architecture(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)


def _fp32(
    model: nn.Module, pretrained: bool, data: Dataset, args: argparse.Namespace, desc: str
) -> nn.Module:
    if not pretrained:
        cfg = TrainConfig(
            epochs=args.fp32_epochs, lr=FP32_LR, batch_size=args.batch_size, seed=args.seed
        )
        eb = getattr(args, "pruner", None)
        if eb is not None and args.early_bird is not None and desc == "fp32":
            counts = eb.early_bird_counts(_target(args, eb.macs_before))
            args.fp32_epochs_run, _ = pr.early_bird_train(
                model, data, cfg, eb.an, counts, args.early_bird
            )
        else:
            train(model, data, cfg, desc=desc)
    model.eval()
    return model


def run(args: argparse.Namespace) -> int:
    stdout = sys.stdout  # the model's own prints go to stderr while its code runs
    with user_code(f"MODEL '{args.model}'"):
        return _run(args, stdout)


def _run(args: argparse.Namespace, stdout: TextIO) -> int:
    bits, out = _check(args)
    policy = policy_for_method(
        "quant" if args.method == "prune" else args.method,
        bits,
        args.estimator,
        binary_bn=args.binary_bn is not False,
    )
    policy = dataclasses.replace(policy, calibration=args.calibration, steps=args.steps)
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)

    model, example, spec, pretrained = _load_fp32(args.model, "MODEL", args.model_code)
    data = load_data(args.data, tuple(example.shape[1:]))
    _check_outputs(model, example, data, args.model)
    export_integer(convert(model, policy), example)  # fail before training if it cannot export
    pruned_meta = read_checkpoint(args.model)["meta"].get("pruned") if pretrained else None
    if args.method == "prune":
        if args.early_bird is not None and pretrained:
            raise CompressionError("--early-bird: stops FP32 training, expected an untrained MODEL")
        args.pruner = _pruner(model, example, args)  # targets checked before any training
    fp, teacher_model, teacher_pretrained = _start_and_teacher(
        model, example, pretrained, data, args
    )
    acc_fp32 = evaluate(fp, data.x_test, data.y_test)
    pres = None
    if args.method == "prune":
        fp, pres = _prune(args.pruner, fp, data, args, teacher_model)
        pruned_meta = pres.plan.to_meta(fp)
        acc_pruned = evaluate(fp, data.x_test, data.y_test)

    seed_everything(args.seed)
    student = convert(fp, policy)
    calibrate(student, data.x_train[:CALIBRATION_SAMPLES], policy.calibration)
    if args.method == "adder":  # conv weights -> templates in the inputs' range (adder.py)
        init_adder_weights(student, data.x_train[:CALIBRATION_SAMPLES], policy.calibration)
    cfg = TrainConfig(
        epochs=args.quant_epochs if args.method == "prune" else args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    train(
        student,
        data,
        cfg,
        desc=args.method,
        teacher=teacher_model,
        kd_loss=args.kd_loss or "kd",
    )
    acc = evaluate(student, data.x_test, data.y_test)

    integer = export_integer(student, example)
    fq = logits(student, data.x_test).numpy() / integer.output_scale
    fq_int = np.rint(fq).astype(np.int64)
    out_int, _ = run_integer(integer, quantize_input(integer, data.x_test.numpy()))
    y = data.y_test.numpy()
    acc_int = float((out_int.argmax(axis=1) == y).mean())
    agreement = float((out_int.argmax(axis=1) == fq_int.argmax(axis=1)).mean())
    max_diff = int(np.abs(out_int - fq_int).max())

    meta: dict[str, Any] = {
        "method": args.method,
        "bits": "1/1" if args.method == "binary" else f"{bits[0]}/{bits[1]}",
        "data": args.data,
        "epochs": args.epochs,
        "seed": args.seed,
        "kd": args.kd or (None if args.no_kd else "MODEL"),
        "kd_loss": args.kd_loss,
        "accuracy_fp32": acc_fp32,
        "accuracy": acc,
        "accuracy_integer": acc_int,
        "agreement": agreement,
        "max_logit_diff_lsb": max_diff,
    }
    fp_meta: dict[str, Any] = {"method": "fp32", "accuracy": acc_fp32}
    if pruned_meta is not None:
        meta["pruned"] = fp_meta["pruned"] = pruned_meta
    if pres is not None:
        meta.update(_prune_report(args, pres, acc_pruned))
        fp_meta.update(accuracy=acc_pruned, accuracy_dense=acc_fp32)
    npz = out.with_suffix(".npz")
    fp_path = out.with_name(out.stem + ".fp32.pt")
    save_integer_model(integer, npz)  # atomic (temp + rename), as the checkpoints
    save_checkpoint(out, spec, policy, student, meta)
    written = [str(out), str(npz)]
    if not teacher_pretrained or pres is not None:
        save_checkpoint(fp_path, spec, None, fp, fp_meta)
        written.append(str(fp_path))

    result = {
        "accuracy_fp32": round(acc_fp32, 6),
        "accuracy": round(acc, 6),
        "accuracy_integer": round(acc_int, 6),
        "agreement": round(agreement, 6),
        "max_logit_diff_lsb": max_diff,
        "checkpoint": str(out),
        "integer_model": str(npz),
    }
    if pres is not None:
        result.update({k: v for k, v in meta.items() if k in _PRUNE_KEYS})
    if args.json:
        print(json.dumps(result, indent=2), file=stdout)
    else:
        label = meta["bits"] if args.method != "binary" else "±1"
        print(f"{spec}: {args.method} {label} on {data.name} ({len(y)} test samples)", file=stdout)
        print(f"  accuracy fp32        {100 * acc_fp32:6.2f} %", file=stdout)
        if pres is not None:
            print(
                f"  accuracy pruned fp32 {100 * acc_pruned:6.2f} %  ({_prune_line(meta)})",
                file=stdout,
            )
        print(f"  accuracy fake-quant  {100 * acc:6.2f} %", file=stdout)
        print(f"  accuracy integer     {100 * acc_int:6.2f} %", file=stdout)
        print(
            f"  integer vs fake-quant class agreement {100 * agreement:.2f} %, "
            f"max logit difference {max_diff} LSB",
            file=stdout,
        )
        print("  wrote " + ", ".join(written), file=stdout)
    return 0


_PRUNE_KEYS = (
    "accuracy_pruned",
    "criterion",
    "macs_before",
    "macs_after",
    "params_before",
    "params_after",
    "latency_before_s",
    "latency_after_s",
    "energy_before_j",
    "energy_after_j",
    "removed_blocks",
    "stage_weights",
    "fp32_epochs_run",
)


def _prune_report(args: argparse.Namespace, res: pr.PruneResult, acc: float) -> dict[str, Any]:
    def params(m: nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    rep: dict[str, Any] = {
        "accuracy_pruned": round(acc, 6),
        "criterion": args.criterion,
        "macs_before": res.macs_before,
        "macs_after": res.macs_after,
        "params_before": params(args.pruner.model),
        "params_after": params(res.model),
        "removed_blocks": list(res.plan.removed_blocks),
    }
    if getattr(args, "stage_weights_t", ()):
        rep["stage_weights"] = list(args.stage_weights_t)
    if res.latency_before_s is not None:
        rep.update(latency_before_s=res.latency_before_s, latency_after_s=res.latency_after_s)
    if res.energy_before_j is not None:
        rep.update(energy_before_j=res.energy_before_j, energy_after_j=res.energy_after_j)
    if getattr(args, "fp32_epochs_run", None) is not None:
        rep["fp32_epochs_run"] = args.fp32_epochs_run
    return rep


def _prune_line(meta: dict[str, Any]) -> str:
    text = f"{meta['criterion']}: MACs {meta['macs_before']:,} -> {meta['macs_after']:,}"
    if "latency_after_s" in meta:
        text += f", latency {meta['latency_before_s']:.4g} -> {meta['latency_after_s']:.4g} s"
    if "energy_after_j" in meta:
        text += f", energy {meta['energy_before_j']:.4g} -> {meta['energy_after_j']:.4g} J"
    if meta.get("stage_weights"):
        text += ", stage weights " + "/".join(f"{w:g}" for w in meta["stage_weights"])
    if meta["removed_blocks"]:
        text += ", removed " + ", ".join(meta["removed_blocks"])
    return text

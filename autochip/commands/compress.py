"""Compress a model (quantise, binarise or adder layers), export integers, check agreement.

Trains the FP32 model first (or loads it: MODEL may be an FP32 checkpoint), converts it with the
method's policy (first and last layers int8), calibrates, trains the compressed model, exports it
to the integer model and evaluates all three on the test split. Writes CKPT (the compressed
checkpoint), CKPT with suffix .npz (the integer model for autochip.reference) and, when it trained
one, the FP32 model beside it as <stem>.fp32.pt (usable as --kd TEACHER).

  autochip compress lenet_digits --method quant --bits 8/8 --data digits --epochs 30 --out q8.pt
  autochip compress lenet_digits --method adder --kd q8.fp32.pt --epochs 30 --out adder_kd.pt
  autochip compress lenet_digits --method binary --kd q8.fp32.pt --kd-loss skd --out b.pt
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autochip.compress.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from autochip.compress.convert import convert
from autochip.compress.data import Dataset, load_data
from autochip.compress.distill import KD_LOSSES
from autochip.compress.export import export_integer
from autochip.compress.policy import parse_bits, policy_for_method
from autochip.compress.train import TrainConfig, calibrate, evaluate, logits, seed_everything, train
from autochip.errors import CompressionError, SpecError
from autochip.reference import quantize_input, save_integer_model
from autochip.reference import run as run_integer

__all__ = ["add_arguments", "run"]

FP32_LR = 3e-3
METHOD_LR = {"quant": 1e-3, "binary": 1e-2, "adder": 2e-2}
METHOD_EPOCHS = {"quant": 30, "binary": 30, "adder": 60}
FP32_EPOCHS = 30
CALIBRATION_SAMPLES = 512


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="zoo name, .py file or FP32 checkpoint .pt")
    p.add_argument("--method", required=True, choices=["quant", "binary", "adder"])
    p.add_argument("--bits", default="8/8", help="W/A bits 2..8 for quant and adder (8/8)")
    p.add_argument(
        "--kd",
        metavar="TEACHER",
        help="FP32 teacher to distil from: zoo name, .py file or FP32 checkpoint .pt",
    )
    p.add_argument(
        "--kd-loss",
        choices=KD_LOSSES,
        default=None,
        help="distillation loss with --kd: kd (Hinton), skd (spherical), pkkd (adder only); "
        "default pkkd for adder, kd otherwise",
    )
    p.add_argument("--data", default="digits", help="digits, or a CIFAR-10 / image folder path")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs of compressed training (quant 30, binary 30, adder 60)",
    )
    p.add_argument("--fp32-epochs", type=int, default=FP32_EPOCHS, help="FP32 epochs (30)")
    p.add_argument("--out", required=True, metavar="CKPT", help="checkpoint to write (.pt)")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--estimator", choices=["ste", "fda"], default="ste", help="binary gradient")
    p.add_argument("--calibration", choices=["minmax", "percentile"], default="minmax")
    p.add_argument(
        "--steps",
        choices=["lsq", "static"],
        default="lsq",
        help="learn quantiser steps (LSQ) or keep the calibrated ones",
    )
    p.add_argument("--lr", type=float, default=None, help="learning rate of the compressed model")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")


def _check(args: argparse.Namespace) -> tuple[tuple[int, int], Path]:
    problems: list[str] = []
    bits = (8, 8)
    try:
        bits = parse_bits(args.bits)
    except CompressionError as exc:
        problems.append(str(exc))
    if args.epochs is None:
        args.epochs = METHOD_EPOCHS[args.method]
    if args.epochs < 0:
        problems.append(f"--epochs: expected an integer >= 0, found {args.epochs}")
    if args.fp32_epochs < 0:
        problems.append(f"--fp32-epochs: expected an integer >= 0, found {args.fp32_epochs}")
    if args.batch_size < 1:
        problems.append(f"--batch-size: expected an integer >= 1, found {args.batch_size}")
    if args.threads < 1:
        problems.append(f"--threads: expected an integer >= 1, found {args.threads}")
    if args.kd_loss is not None and not args.kd:
        problems.append(f"--kd-loss {args.kd_loss}: expected --kd TEACHER beside it, found none")
    if args.kd_loss == "pkkd" and args.method != "adder":
        problems.append(
            f"--kd-loss pkkd: distils adder layers, expected --method adder, found "
            f"--method {args.method} (use kd or skd)"
        )
    if args.kd and args.kd_loss is None:
        args.kd_loss = "pkkd" if args.method == "adder" else "kd"
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        problems.append(f"--lr: expected a positive number, found {args.lr}")
    out = Path(args.out)
    if out.suffix != ".pt":
        problems.append(f"--out: expected a checkpoint path ending in .pt, found '{args.out}'")
    if not out.parent.is_dir():
        problems.append(f"--out: the directory '{out.parent}' does not exist")
    if out.is_dir():
        problems.append(f"--out: '{out}' is a directory")
    if problems:
        raise SpecError("autochip compress", problems)
    return bits, out


def _load_fp32(spec: str, role: str) -> tuple[nn.Module, torch.Tensor, str, bool]:
    """(model, example input, model spec, pretrained?) for a MODEL/TEACHER argument."""
    from autochip.ir import load_model

    if spec.endswith(".pt"):
        data = read_checkpoint(spec)
        if data.get("policy") is not None:
            raise CompressionError(
                f"{role} '{spec}': expected an FP32 checkpoint (e.g. the <stem>.fp32.pt that "
                f"autochip compress writes), found a compressed one ({data['meta'].get('method')})"
            )
        model, example = load_checkpoint(spec)
        return model, example, str(data["model"]), True
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

    Without --kd the start is MODEL (trained here unless it is a checkpoint). With --kd TEACHER
    of MODEL's architecture and an untrained MODEL, the teacher is also the start (it is trained
    once); otherwise MODEL and TEACHER are loaded or trained separately. PKKD needs MODEL's
    architecture. The teacher is checked before any training.
    """
    if not args.kd:
        return _fp32(model, pretrained, data, args, "fp32"), None, pretrained
    teacher, t_example, _, t_pretrained = _load_fp32(args.kd, "--kd TEACHER")
    _check_teacher(teacher, example, t_example, data, args.kd)
    same = _same_architecture(teacher, model)
    if args.kd_loss == "pkkd" and not same:
        raise CompressionError(
            f"--kd TEACHER '{args.kd}': --kd-loss pkkd expected MODEL '{args.model}''s "
            "architecture (it matches layers by name and shape), found another one"
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
        train(model, data, cfg, desc=desc)
    model.eval()
    return model


def run(args: argparse.Namespace) -> int:
    bits, out = _check(args)
    policy = policy_for_method(args.method, bits, args.estimator)
    policy = dataclasses.replace(policy, calibration=args.calibration, steps=args.steps)
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)

    model, example, spec, pretrained = _load_fp32(args.model, "MODEL")
    data = load_data(args.data, tuple(example.shape[1:]))
    _check_outputs(model, example, data, args.model)
    export_integer(convert(model, policy), example)  # fail before training if it cannot export
    fp, teacher_model, teacher_pretrained = _start_and_teacher(
        model, example, pretrained, data, args
    )
    acc_fp32 = evaluate(fp, data.x_test, data.y_test)

    seed_everything(args.seed)
    student = convert(fp, policy)
    calibrate(student, data.x_train[:CALIBRATION_SAMPLES], policy.calibration)
    cfg = TrainConfig(
        epochs=args.epochs,
        lr=args.lr or METHOD_LR[args.method],
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
        "kd": args.kd,
        "kd_loss": args.kd_loss,
        "accuracy_fp32": acc_fp32,
        "accuracy": acc,
        "accuracy_integer": acc_int,
        "agreement": agreement,
        "max_logit_diff_lsb": max_diff,
    }
    npz = out.with_suffix(".npz")
    fp_path = out.with_name(out.stem + ".fp32.pt")
    save_integer_model(integer, npz.with_name(npz.stem + ".tmp.npz"))
    os.replace(npz.with_name(npz.stem + ".tmp.npz"), npz)
    save_checkpoint(out, spec, policy, student, meta)
    written = [str(out), str(npz)]
    if not teacher_pretrained:
        save_checkpoint(fp_path, spec, None, fp, {"method": "fp32", "accuracy": acc_fp32})
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
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        label = meta["bits"] if args.method != "binary" else "±1"
        print(f"{spec}: {args.method} {label} on {data.name} ({len(y)} test samples)")
        print(f"  accuracy fp32        {100 * acc_fp32:6.2f} %")
        print(f"  accuracy fake-quant  {100 * acc:6.2f} %")
        print(f"  accuracy integer     {100 * acc_int:6.2f} %")
        print(
            f"  integer vs fake-quant class agreement {100 * agreement:.2f} %, "
            f"max logit difference {max_diff} LSB"
        )
        print("  wrote " + ", ".join(written))
    return 0

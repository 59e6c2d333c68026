"""Measured accuracy of a candidate: fine-tuned from the FP32 model with distillation, cached.

A candidate at fidelity ``schedule`` (cumulative epochs, e.g. ``(1, 3)``) is trained as
``autochip compress`` trains: the FP32 checkpoint is pruned to the candidate's MAC fraction
(``autochip.compress.prune``, the plan of its criterion), converted by its policy, calibrated
(adder templates initialised), then trained with Hinton KD from the dense FP32 model for
``schedule[0]`` epochs; each later entry continues the previous fidelity's checkpoint for the
difference (successive halving promotes a candidate without retraining it). The result is the
integer model (``export_integer``): its accuracy on a validation split held out of the
training images ranks candidates, its accuracy on the test split is reported, both computed by
the integer reference (:func:`autochip.reference.run`): what the built core computes.

Everything is cached by content: the key is the SHA-256 of (the FP32 checkpoint's bytes, the
data and its split, the candidate, the seed, the batch size, the schedule, the recipe). An
entry is a folder with ``student.pt`` (the compressed checkpoint), ``model.npz`` (the integer
model) and ``result.json``, written last: a folder without it is an interrupted run, retrained.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autochip._safeio import atomic_write_text
from autochip.codesign.candidate import Candidate, digest
from autochip.compress.data import Dataset, load_data
from autochip.errors import CompressionError

__all__ = ["RECIPE", "Context", "cached", "candidate_key", "default_cache", "measure"]

CALIBRATION_SAMPLES = 512  # as autochip compress
SPLIT_SEED = 20261202  # the validation split is fixed (not the search's seed)
# Learning rates by the narrowest inner width / kind: autochip compress's recipes
# (docs/compression.md): quant 8 bits 1e-4, 4..7 bits 5e-4, 2..3 bits 1e-3, binary 2e-3,
# adder 1e-2; a pruned network at least the pruning fine-tune's 1e-3. A continuation (a
# promoted candidate's further epochs) restarts the cosine decay at half the rate.
RECIPE = {"quant8": 1e-4, "quant4": 5e-4, "quant2": 1e-3, "binary": 2e-3, "adder": 1e-2,
          "prune": 1e-3, "continue": 0.5, "version": 1}  # fmt: skip


@dataclass(frozen=True)
class Context:
    """What every candidate's training shares (plain data: it is sent to Dask workers)."""

    model: str  # the trained FP32 checkpoint (autochip compress's <stem>.fp32.pt)
    data: str  # a --data spec
    val_images: int  # held out of the training images, ranks candidates
    train_images: int | None  # of the rest, the first N (None: all)
    test_images: int | None  # the first N of the test split (None: all)
    seed: int
    batch_size: int
    cache: str
    threads: int = 1

    def identity(self) -> dict[str, Any]:
        d = asdict(self)
        del d["cache"], d["threads"], d["model"]
        d["model_sha256"] = file_digest(self.model)
        return d


def default_cache() -> str:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(root) / "autochip" / "codesign")


_FILE_DIGESTS: dict[tuple[str, float, int], str] = {}


def file_digest(path: str) -> str:
    st = os.stat(path)
    k = (str(Path(path).resolve()), st.st_mtime, st.st_size)
    if k not in _FILE_DIGESTS:
        _FILE_DIGESTS[k] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return _FILE_DIGESTS[k]


def candidate_key(ctx: Context, cand: Candidate, schedule: tuple[int, ...]) -> str:
    what = {"context": ctx.identity(), "candidate": cand.to_dict(), "schedule": list(schedule),
            "recipe": RECIPE}  # fmt: skip
    if _calibration(cand) != "minmax":  # (the key of a min-max calibrated candidate predates it)
        what["calibration"] = _calibration(cand)
    return digest(what)


def _calibration(cand: Candidate) -> str:
    """Activation-step calibration before fine-tuning: ``mse`` for MAC networks narrower than
    8 bits (the min-max step leaves most values in a few levels: LeNet-5 w4/a4 on Fashion-MNIST
    tested 89.86 % after one epoch from an MSE-calibrated start against 88.37 % from min-max;
    LSQ's steps move slowly under Adam), ``minmax`` otherwise (as `autochip compress`)."""
    narrow = min(cand.w_bits, cand.a_bits, cand.edge_w_bits, cand.edge_a_bits)
    return "mse" if cand.kind == "mac" and narrow < 8 else "minmax"


def _entry(ctx: Context, key: str) -> Path:
    return Path(ctx.cache) / key[:2] / key


def cached(ctx: Context, cand: Candidate, schedule: tuple[int, ...]) -> dict[str, Any] | None:
    """The cached result of ``cand`` at ``schedule``, or None."""
    p = _entry(ctx, candidate_key(ctx, cand, schedule)) / "result.json"
    if not p.is_file():
        return None
    try:
        res: dict[str, Any] = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return res if _complete(res) else None


def _complete(res: dict[str, Any]) -> bool:
    return all(Path(res.get(k, "")).is_file() for k in ("checkpoint", "integer_model"))


# --------------------------------------------------------------------------- data and model

_DATA: dict[tuple[Any, ...], tuple[Dataset, Dataset]] = {}


def split_data(ctx: Context, sample_shape: tuple[int, ...]) -> tuple[Dataset, Dataset]:
    """(training data, validation data): the validation images are ``val_images`` of the
    training split, drawn once with a fixed seed; the test split is each one's test part."""
    k = (ctx.data, ctx.val_images, ctx.train_images, ctx.test_images, sample_shape)
    if k not in _DATA:
        d = load_data(ctx.data, sample_shape)
        n = len(d.x_train)
        if not 0 < ctx.val_images < n:
            raise CompressionError(
                f"--val-images: expected 1..{n - 1} (the training split of {d.name} has {n} "
                f"images), found {ctx.val_images}"
            )
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
        val, rest = perm[: ctx.val_images], perm[ctx.val_images :]
        if ctx.train_images is not None:
            rest = rest[: ctx.train_images]
        rest = rest.sort().values
        xt, yt = d.x_test, d.y_test
        if ctx.test_images is not None:
            xt, yt = xt[: ctx.test_images], yt[: ctx.test_images]
        train = Dataset(d.name, d.x_train[rest], d.y_train[rest], xt, yt, d.classes)
        valid = Dataset(d.name, d.x_train[rest[:0]], d.y_train[rest[:0]],
                        d.x_train[val.sort().values], d.y_train[val.sort().values],
                        d.classes)  # fmt: skip
        _DATA[k] = (train, valid)
    return _DATA[k]


def load_fp32(path: str) -> tuple[torch.nn.Module, torch.Tensor, str]:
    """(FP32 model, example input, model spec) of a trained FP32 checkpoint."""
    from autochip.compress.checkpoint import load_checkpoint, read_checkpoint

    data = read_checkpoint(path)
    if data.get("policy") is not None:
        raise CompressionError(
            f"MODEL '{path}': expected a trained FP32 checkpoint (the <stem>.fp32.pt that "
            f"autochip compress writes), found a compressed one ({data['meta'].get('method')})"
        )
    model, example = load_checkpoint(path)
    return model.eval(), example, str(data["model"])


def _lr(cand: Candidate) -> float:
    if cand.kind == "binary":
        lr = RECIPE["binary"]
    elif cand.kind == "adder":
        lr = RECIPE["adder"]
    else:
        narrow = min(cand.w_bits, cand.a_bits, cand.edge_w_bits, cand.edge_a_bits)
        lr = RECIPE["quant8" if narrow == 8 else "quant4" if narrow >= 4 else "quant2"]
    if cand.prune > 0:
        lr = max(lr, RECIPE["prune"])
    return float(lr)


def _integer_accuracy(integer: Any, x: torch.Tensor, y: torch.Tensor) -> float:
    from autochip.reference import quantize_input
    from autochip.reference import run as run_integer

    hits = 0
    for i in range(0, len(x), 1024):
        out, _ = run_integer(integer, quantize_input(integer, x[i : i + 1024].numpy()))
        hits += int((out.argmax(axis=1) == y[i : i + 1024].numpy()).sum())
    return hits / max(1, len(x))


# --------------------------------------------------------------------------- one measurement


def measure(ctx: Context, cand: Candidate, schedule: tuple[int, ...]) -> dict[str, Any]:
    """Train ``cand`` to ``schedule[-1]`` epochs (continuing ``schedule[:-1]``'s cached
    checkpoint), export and evaluate it; cached. Returns the result record (JSON-ready)."""
    hit = cached(ctx, cand, schedule)
    if hit is not None:
        return {**hit, "cached": True}
    from autochip.compress import prune as pr
    from autochip.compress.checkpoint import load_checkpoint, save_checkpoint
    from autochip.compress.convert import convert
    from autochip.compress.export import export_integer
    from autochip.compress.train import TrainConfig, calibrate, init_adder_weights, train
    from autochip.reference import save_integer_model

    torch.set_num_threads(max(1, ctx.threads))
    t0 = time.process_time()
    w0 = time.perf_counter()
    fp, example, spec = load_fp32(ctx.model)
    train_data, valid = split_data(ctx, tuple(example.shape[1:]))
    teacher = copy.deepcopy(fp).eval()
    policy = dataclasses.replace(cand.policy(), calibration=_calibration(cand))
    start = 0
    meta: dict[str, Any] = {"method": "codesign", "candidate": cand.to_dict()}
    prev = schedule[:-1]
    if prev:
        before = measure(ctx, cand, prev)
        student, _ = load_checkpoint(before["checkpoint"])
        start = prev[-1]
        meta.update({k: before[k] for k in ("pruned",) if k in before})
        macs = int(before["macs"])
    else:
        torch.manual_seed(ctx.seed)
        model = copy.deepcopy(fp)
        macs_dense = pr.traced_macs(model, example)
        if cand.prune > 0:
            pruner = pr.Pruner(model, example, None)
            target = pr.PruneTarget(cand.criterion, macs=math.floor(macs_dense * (1 - cand.prune)),
                                    stage_weights=cand.stages)  # fmt: skip
            pruner.check(target)
            plan, _ = pruner.plan(target, train_data, ctx.seed)
            model = pruner.result(plan, {}).model.eval()
            meta["pruned"] = plan.to_meta(model)
        macs = pr.traced_macs(model, example)
        torch.manual_seed(ctx.seed)
        student = convert(model, policy)
        cal = train_data.x_train[:CALIBRATION_SAMPLES]
        calibrate(student, cal, policy.calibration)
        if cand.kind == "adder":
            init_adder_weights(student, cal, policy.calibration)
    epochs = schedule[-1] - start
    lr = _lr(cand) * (RECIPE["continue"] if start else 1.0)
    cfg = TrainConfig(epochs=epochs, lr=lr, batch_size=ctx.batch_size, seed=ctx.seed + start)
    torch.manual_seed(ctx.seed + start)
    train(student, train_data, cfg, desc=f"{cand.label} e{schedule[-1]}", teacher=teacher,
          kd_loss="kd", progress=False)  # fmt: skip
    student.eval()
    integer = export_integer(student, example)  # type: ignore[arg-type]
    val_acc = _integer_accuracy(integer, valid.x_test, valid.y_test)
    test_acc = _integer_accuracy(integer, train_data.x_test, train_data.y_test)
    key = candidate_key(ctx, cand, schedule)
    folder = _entry(ctx, key)
    folder.mkdir(parents=True, exist_ok=True)
    ckpt, npz = folder / "student.pt", folder / "model.npz"
    meta.update(epochs=schedule[-1], accuracy_integer=test_acc, accuracy_val=val_acc)
    save_checkpoint(ckpt, spec, policy, student, meta)
    save_integer_model(integer, npz)
    res: dict[str, Any] = {
        "key": key,
        "candidate": cand.to_dict(),
        "label": cand.label,
        "schedule": list(schedule),
        "epochs": schedule[-1],
        "accuracy_val": val_acc,
        "accuracy": test_acc,
        "macs": macs,
        "params": int(sum(p.numel() for p in student.parameters())),
        "checkpoint": str(ckpt),
        "integer_model": str(npz),
        "train_cpu_s": time.process_time() - t0,
        "train_wall_s": time.perf_counter() - w0,
        "val_images": len(valid.x_test),
        "test_images": len(train_data.x_test),
        "train_images": len(train_data.x_train),
    }
    if "pruned" in meta:
        res["pruned"] = meta["pruned"]
    atomic_write_text(folder / "result.json", json.dumps(res, indent=1, default=_jsonable))
    return {**res, "cached": False}


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON: {type(x).__name__}")

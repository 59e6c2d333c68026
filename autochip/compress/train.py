"""Training loops: FP32, quantisation-aware / binary / adder training, distillation; calibration.

Deterministic: batch order comes from a ``torch.Generator`` seeded per run and epoch, and the CLI
sets the global seed and a fixed thread count.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autochip._progress import bar as progress_bar
from autochip.compress.adder import (
    ADDER_ETA,
    AdderConv2d,
    AdderLinear,
    scale_adder_gradients,
    template_weights,
)
from autochip.compress.data import Dataset
from autochip.compress.distill import Distiller
from autochip.compress.quant import QuantAct, calibrate_scale

MIN_STEP = 1e-6  # quantiser steps stay positive

__all__ = [
    "TrainConfig",
    "batches",
    "calibrate",
    "evaluate",
    "init_adder_weights",
    "logits",
    "seed_everything",
    "train",
]


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser settings of one training phase (Adam with a cosine learning-rate decay)."""

    epochs: int
    lr: float = 3e-3
    batch_size: int = 32
    weight_decay: float = 0.0
    seed: int = 0
    kd_weight: float = 1.0  # weight of the logit term (KD / SKD) when a teacher is given
    feature_weight: float = 1.0  # weight of PKKD's kernel-feature term
    teacher_lr_factor: float = 0.1  # PKKD: the teacher trains with lr * this
    adder_eta: float = ADDER_ETA
    # LSQ's gradient scale is meant for SGD; under Adam the step sizes move by ~lr per update,
    # so they get a smaller learning rate than the weights.
    step_lr_factor: float = 0.01


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def batches(
    x: Tensor, y: Tensor, batch_size: int, seed: int, epoch: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """Shuffled mini-batches, the order fixed by (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(len(x), generator=g)
    for i in range(0, len(x), batch_size):
        idx = perm[i : i + batch_size]
        yield x[idx], y[idx]


@torch.no_grad()
def logits(model: nn.Module, x: Tensor, batch_size: int = 256) -> Tensor:
    """Eval-mode outputs of ``model`` on ``x``."""
    was = model.training
    model.eval()
    try:
        return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was)


def evaluate(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Top-1 accuracy (fraction) of ``model`` on ``(x, y)``."""
    return float((logits(model, x).argmax(dim=1) == y).float().mean())


@torch.no_grad()
def calibrate(model: nn.Module, x: Tensor, method: str = "minmax") -> None:
    """Post-training calibration of every :class:`QuantAct` step, in one pass over ``x``.

    Each quantiser takes its step from the float values it receives, ``max|v| / Qp``
    (``minmax``) or the 99.99th percentile of ``|v|`` (``percentile``), just before it quantises
    them, so every quantiser sees inputs quantised by the ones before it. The batch-norms
    re-estimate their statistics in the same pass (a converted layer, an adder layer above all,
    produces other statistics than the float layer it replaced).
    """
    quants = [m for m in model.modules() if isinstance(m, QuantAct)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)]

    def observe(q: nn.Module, inp: tuple[Tensor, ...]) -> None:
        assert isinstance(q, QuantAct)
        q.scale.fill_(calibrate_scale(inp[0], q.qp, method, qn=q.qn))

    hooks = [q.register_forward_pre_hook(observe) for q in quants]
    was = model.training
    saved = [bn.momentum for bn in bns]
    model.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: the running statistics of this batch
        bn.train()
    for m in model.modules():
        if "_grid_bias" in m.__dict__:
            m.train()  # float bias: the grid-rounded one depends on the statistics measured here
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
        for bn, mom in zip(bns, saved, strict=True):
            bn.momentum = mom
        model.train(was)


@torch.no_grad()
def init_adder_weights(model: nn.Module, x: Tensor, method: str = "minmax") -> int:
    """Replace the conv/linear weights that adder layers inherited by template weights
    (:func:`autochip.compress.adder.template_weights`), layer by layer in execution order, each
    from the inputs it receives once the layers before it have theirs; then recalibrate.

    Returns the number of adder layers initialised.
    """
    adders = {m for m in model.modules() if isinstance(m, AdderConv2d | AdderLinear)}
    done: set[nn.Module] = set()
    seen: list[tuple[nn.Module, Tensor]] = []

    def grab(m: nn.Module, inp: tuple[Tensor, ...]) -> None:
        seen.append((m, inp[0].detach()))

    while len(done) < len(adders):
        seen.clear()
        hooks = [m.register_forward_pre_hook(grab) for m in adders - done]
        try:
            calibrate(model, x, method)  # batch-norm statistics of the layers before
        finally:
            for h in hooks:
                h.remove()
        layer, inp = seen[0]  # the first not yet initialised adder layer that ran
        assert isinstance(layer, AdderConv2d | AdderLinear)
        layer.weight.copy_(template_weights(layer, inp))
        done.add(layer)
    calibrate(model, x, method)
    return len(done)


def _has_adders(model: nn.Module) -> bool:
    return any(isinstance(m, AdderConv2d | AdderLinear) for m in model.modules())


def train(
    model: nn.Module,
    data: Dataset,
    cfg: TrainConfig,
    desc: str = "train",
    teacher: nn.Module | None = None,
    kd_loss: str = "kd",
    progress: bool = True,
) -> None:
    """Train ``model`` on ``data.x_train``; with ``teacher``, add the ``kd_loss`` distillation
    term (``kd``, ``skd`` or ``pkkd``: :class:`autochip.compress.distill.Distiller`).

    With ``pkkd`` the teacher (same architecture, conv layers where the student has adders) is
    trained on the labels alongside the student: PKKD's progressive distillation.
    """
    if cfg.epochs <= 0:
        return
    distill = (
        Distiller(
            kd_loss,
            model,
            teacher,
            kd_weight=cfg.kd_weight,
            feature_weight=cfg.feature_weight,
            teacher_lr=cfg.lr * cfg.teacher_lr_factor,
        )
        if teacher is not None
        else None
    )
    named = list(model.named_parameters())
    named = [(n, p) for n, p in named if p.requires_grad]
    steps_ = [p for n, p in named if n.endswith("scale")]
    others = [p for n, p in named if not n.endswith("scale")]
    others += distill.parameters() if distill else []
    groups: list[dict[str, Any]] = [
        {"params": others},
        {"params": steps_, "lr": cfg.lr * cfg.step_lr_factor},
    ]
    opt = torch.optim.Adam(
        groups,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )
    steps = cfg.epochs * ((len(data.x_train) + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    adders = _has_adders(model)
    model.train()
    # Bars are for people at a terminal; a log file would get a \r update every half second.
    bar = progress_bar(steps, desc, enabled=progress)  # drawn only on a terminal
    try:
        for epoch in range(cfg.epochs):
            for xb, yb in batches(data.x_train, data.y_train, cfg.batch_size, cfg.seed, epoch):
                t_out = distill.teacher_logits(xb, yb) if distill is not None else None
                out = model(xb)
                loss = F.cross_entropy(out, yb)
                if distill is not None and t_out is not None:
                    loss = loss + distill.loss(out, t_out)
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                if adders:
                    scale_adder_gradients(model, cfg.adder_eta)
                opt.step()
                with torch.no_grad():
                    for p in steps_:
                        p.clamp_(min=MIN_STEP)
                sched.step()
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", refresh=False)
    finally:
        bar.close()
        if distill is not None:
            distill.remove()
    model.eval()

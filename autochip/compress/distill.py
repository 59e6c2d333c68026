"""Knowledge distillation for every compression method: KD, SKD and PKKD, one mechanism.

:class:`Distiller` is what the training loop uses: it runs the teacher on each batch and adds
the distillation term to the student's label loss. Three kinds (``--kd-loss``):

* ``kd``, logit KD (Hinton et al. 2015): ``T^2 * KL(softmax(t / T) || softmax(s / T))``.
* ``skd``, spherical KD (Guo et al., "Reducing the Teacher-Student Gap via Spherical Knowledge
  Distillation", arXiv 2010.07485): both logit vectors are first projected onto a sphere —
  centred (their mean removed) and divided by their standard deviation, then scaled by a fixed
  multiplier ``m`` (``m (z - mean z) / std z``, i.e. radius ``m sqrt(C)`` for ``C`` classes) — so
  the student learns the teacher's *direction* of logits, not its confidence (the norm); then
  KD as above on the projected logits. ``m = 2``, ``T = 1`` as in the authors' release.
* PKKD (Xu et al., "Kernel Based Progressive Distillation for Adder Neural Networks", NeurIPS
  2020): the CNN teacher has the same architecture as the adder student. An adder layer's output
  is a negative L1 distance, ``-||x - w||_1``, so ``exp(y / sigma)`` is a *Laplacian kernel* of
  input and weight; a conv output is an inner product, and the matching *Gaussian kernel*
  ``exp(-||x - w||^2 / (2 sigma^2))`` follows from it with the window norms ``||x||^2`` and
  ``||w||^2``. The student's kernel features go through a learned 1x1 map and are pulled towards
  the teacher's (mean squared error); the logits are distilled with KD. *Progressive*: the teacher
  keeps training on the labels at the same time, so the student follows a teacher that moves
  from its starting point towards the data, instead of a fixed one.

With ``kd`` and ``skd`` the teacher is frozen (eval mode, no gradient); the distillation term
reaches the student only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autochip.compress.adder import AdderConv2d, AdderLinear
from autochip.errors import CompressionError

__all__ = [
    "KD_LOSSES",
    "KD_TEMPERATURE",
    "SKD_MULTIPLIER",
    "SKD_TEMPERATURE",
    "Distiller",
    "Pkkd",
    "gaussian_kernel_features",
    "kd_loss",
    "laplace_features",
    "skd_loss",
    "spherical",
]

KD_LOSSES = ("kd", "skd", "pkkd")
KD_TEMPERATURE = 4.0
SKD_TEMPERATURE = 1.0
SKD_MULTIPLIER = 2.0
SPHERE_EPS = 1e-7


def kd_loss(student: Tensor, teacher: Tensor, temperature: float = KD_TEMPERATURE) -> Tensor:
    """``T^2 KL(p_t || p_s)`` with temperature-softened distributions."""
    t = temperature
    log_s = F.log_softmax(student / t, dim=1)
    p_t = F.softmax(teacher.detach() / t, dim=1)
    return F.kl_div(log_s, p_t, reduction="batchmean") * t * t


def spherical(z: Tensor, multiplier: float = SKD_MULTIPLIER) -> Tensor:
    """``m (z - mean z) / std z`` per row: the logits projected onto a sphere of radius
    ``m sqrt(C)`` (population standard deviation; ``eps`` keeps constant rows finite)."""
    centred = z - z.mean(dim=1, keepdim=True)
    std = centred.pow(2).mean(dim=1, keepdim=True).add(SPHERE_EPS).sqrt()
    return multiplier * centred / std


def skd_loss(
    student: Tensor,
    teacher: Tensor,
    temperature: float = SKD_TEMPERATURE,
    multiplier: float = SKD_MULTIPLIER,
) -> Tensor:
    """Spherical KD: :func:`kd_loss` of the sphere-projected student and teacher logits."""
    return kd_loss(
        spherical(student, multiplier), spherical(teacher.detach(), multiplier), temperature
    )


def laplace_features(y: Tensor) -> Tensor:
    """Laplacian kernel of an adder output ``y = -||x - w||_1``, bandwidth = its mean distance."""
    sigma = (-y).detach().mean().clamp_min(1e-6)
    return torch.exp(y / sigma)


def gaussian_kernel_features(conv: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Gaussian kernel ``exp(-||x - w||^2 / (2 sigma^2))`` of a conv/linear's input and weights.

    ``||x - w||^2 = ||x||^2 + ||w||^2 - 2 <x, w>``; ``<x, w>`` is the output without bias.
    """
    w: Tensor = conv.weight.detach()  # type: ignore[operator]
    bias = conv.bias.detach() if conv.bias is not None else None  # type: ignore[operator]
    ip = y if bias is None else y - (bias.reshape(1, -1, 1, 1) if y.dim() == 4 else bias)
    if isinstance(conv, nn.Conv2d):
        ones = torch.ones((1, w.shape[1], *w.shape[2:]), dtype=x.dtype)
        xx = torch.cat(
            [
                F.conv2d(
                    (x * x)[:, g * w.shape[1] : (g + 1) * w.shape[1]],
                    ones,
                    None,
                    conv.stride,
                    conv.padding,
                    conv.dilation,
                )
                for g in range(conv.groups)
            ],
            dim=1,
        )
        if conv.groups > 1:
            xx = xx.repeat_interleave(w.shape[0] // conv.groups, dim=1)
        ww = (w * w).sum(dim=(1, 2, 3)).reshape(1, -1, 1, 1)
    else:
        xx = (x * x).sum(dim=1, keepdim=True)
        ww = (w * w).sum(dim=1).reshape(1, -1)
    d2 = (xx + ww - 2 * ip).clamp_min(0)
    sigma2 = d2.detach().mean().clamp_min(1e-6)
    return torch.exp(-d2 / (2 * sigma2))


class Pkkd(nn.Module):
    """Feature-kernel distillation between matching adder (student) and conv (teacher) layers.

    Layers are matched by module name (the student was converted from the teacher's
    architecture). Call :meth:`loss` after a forward pass of both models on the same batch.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module) -> None:
        super().__init__()
        t_mods = dict(teacher.named_modules())
        self.pairs: list[tuple[str, nn.Module, nn.Module]] = []
        maps: dict[str, nn.Module] = {}
        for name, m in student.named_modules():
            if isinstance(m, AdderConv2d | AdderLinear) and name in t_mods:
                t = t_mods[name]
                if isinstance(t, nn.Conv2d | nn.Linear) and t.weight.shape == m.weight.shape:
                    self.pairs.append((name, m, t))
                    k = m.weight.shape[0]
                    lin = nn.Conv2d(k, k, 1) if isinstance(m, nn.Conv2d) else nn.Linear(k, k)
                    with torch.no_grad():
                        lin.weight.copy_(torch.eye(k).reshape(lin.weight.shape))
                        lin.bias.zero_()  # type: ignore[union-attr]
                    maps[name.replace(".", "_")] = lin
        self.maps = nn.ModuleDict(maps)
        self._s: dict[str, Tensor] = {}
        self._t: dict[str, tuple[Tensor, Tensor]] = {}
        self._hooks: list[Any] = []
        for name, s, t in self.pairs:
            self._hooks.append(s.register_forward_hook(self._save_s(name)))
            self._hooks.append(t.register_forward_hook(self._save_t(name)))

    def _save_s(self, name: str) -> Callable[..., None]:
        def hook(_m: nn.Module, _inp: Any, out: Tensor) -> None:
            self._s[name] = out

        return hook

    def _save_t(self, name: str) -> Callable[..., None]:
        def hook(_m: nn.Module, inp: Any, out: Tensor) -> None:
            self._t[name] = (inp[0], out)

        return hook

    def loss(self) -> Tensor:
        total = torch.zeros(())
        for name, _s, t in self.pairs:
            if name not in self._s or name not in self._t:
                continue
            fs = self.maps[name.replace(".", "_")](laplace_features(self._s[name]))
            x, y = self._t[name]
            ft = gaussian_kernel_features(t, x.detach(), y.detach())
            total = total + F.mse_loss(fs, ft)
        self._s.clear()
        self._t.clear()
        return total

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()


class Distiller:
    """The distillation term of one training run: ``kind`` is one of :data:`KD_LOSSES`.

    ``teacher_logits(x, y)`` runs the teacher on a batch: frozen for ``kd``/``skd``; for
    ``pkkd`` it also takes one optimiser step of the teacher on the labels (progressive).
    ``loss(student_out, teacher_out)`` is the term added to the student's cross-entropy.
    """

    def __init__(
        self,
        kind: str,
        student: nn.Module,
        teacher: nn.Module,
        kd_weight: float = 1.0,
        feature_weight: float = 1.0,
        teacher_lr: float = 3e-4,
    ) -> None:
        if kind not in KD_LOSSES:
            raise CompressionError(
                f"--kd-loss: expected one of {', '.join(KD_LOSSES)}, found '{kind}'"
            )
        self.kind = kind
        self.teacher = teacher
        self.kd_weight = kd_weight
        self.feature_weight = feature_weight
        self.features: Pkkd | None = None
        self._opt: torch.optim.Optimizer | None = None
        if kind == "pkkd":
            self.features = Pkkd(student, teacher)
            if not self.features.pairs:
                self.features.remove()
                raise CompressionError(
                    "--kd-loss pkkd: expected adder layers in the student with conv/linear "
                    "layers of the same name and shape in the teacher, found none (PKKD is for "
                    "--method adder with a teacher of MODEL's architecture; use kd or skd)"
                )
            self._opt = torch.optim.Adam(teacher.parameters(), lr=teacher_lr)
            teacher.train()
        else:
            teacher.eval()
            teacher.requires_grad_(False)

    def parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the distiller itself (PKKD's 1x1 feature maps)."""
        return list(self.features.parameters()) if self.features is not None else []

    def teacher_logits(self, x: Tensor, y: Tensor) -> Tensor:
        if self._opt is None:
            with torch.no_grad():
                return self.teacher(x)  # type: ignore[no-any-return]
        out: Tensor = self.teacher(x)
        self._opt.zero_grad()
        F.cross_entropy(out, y).backward()  # type: ignore[no-untyped-call]
        self._opt.step()
        return out.detach()

    def loss(self, student_out: Tensor, teacher_out: Tensor) -> Tensor:
        t = teacher_out.detach()
        if self.kind == "skd":
            total = self.kd_weight * skd_loss(student_out, t)
        else:
            total = self.kd_weight * kd_loss(student_out, t)
        if self.features is not None:
            total = total + self.feature_weight * self.features.loss()
        return total

    def remove(self) -> None:
        """Detach the feature hooks; a frozen teacher gets its gradients back."""
        if self.features is not None:
            self.features.remove()
        else:
            self.teacher.requires_grad_(True)

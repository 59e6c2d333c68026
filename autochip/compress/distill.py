"""Knowledge distillation: logit KD and PKKD for adder networks.

* Logit KD (Hinton et al. 2015): ``T^2 * KL(softmax(t / T) || softmax(s / T))``.
* PKKD (Xu et al., "Kernel Based Progressive Distillation for Adder Neural Networks", NeurIPS
  2020): the CNN teacher has the same architecture as the adder student. An adder layer's output
  is a negative L1 distance, ``-||x - w||_1``, so ``exp(y / sigma)`` is a *Laplacian kernel* of
  input and weight; a conv output is an inner product, and the matching *Gaussian kernel*
  ``exp(-||x - w||^2 / (2 sigma^2))`` follows from it with the window norms ``||x||^2`` and
  ``||w||^2``. The student's kernel features go through a learned 1x1 map and are pulled towards
  the teacher's (mean squared error); the logits are distilled with KD. *Progressive*: the teacher
  keeps training on the labels at the same time, so the student follows a teacher that moves
  from its starting point towards the data, instead of a fixed one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autochip.compress.adder import AdderConv2d, AdderLinear

__all__ = ["KD_TEMPERATURE", "Pkkd", "gaussian_kernel_features", "kd_loss", "laplace_features"]

KD_TEMPERATURE = 4.0


def kd_loss(student: Tensor, teacher: Tensor, temperature: float = KD_TEMPERATURE) -> Tensor:
    """``T^2 KL(p_t || p_s)`` with temperature-softened distributions."""
    t = temperature
    log_s = F.log_softmax(student / t, dim=1)
    p_t = F.softmax(teacher.detach() / t, dim=1)
    return F.kl_div(log_s, p_t, reduction="batchmean") * t * t


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

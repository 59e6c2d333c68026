"""Binarisation: ±1 weights and activations with selectable gradient estimators.

Forward: ``b(v) = +1 if v > 0 else -1`` (bit 1 encodes +1, so ``0`` binarises to ``-1``; a ReLU in
front of a binariser is therefore a no-op in the forward pass).

Backward, selectable per layer:

* ``ste``: clipped straight-through estimator (Courbariaux et al. / Hubara et al., BNN 2016):
  ``db/dv = 1 if |v| <= 1 else 0``.
* ``fda``: Fourier-series approximation of the sign (Xu et al., "Learning Frequency Domain
  Approximation for Binary Neural Networks", NeurIPS 2021). ``sign(v) = 4/pi * sum_i
  sin((2i+1) w v) / (2i+1)``; the gradient is the derivative of the series truncated to ``n``
  terms, ``db/dv = 4 w / pi * sum_{i<n} cos((2i+1) w v)``, zero for ``|v| > clip``. The
  noise-adaptation module (:class:`NoiseAdaptation`) learns the residual ``sign(v) - series(v)``
  as a small sine network ``e(v) = sum_j a_j sin(f_j v)``; it adds ``de/dv`` to the gradient and
  nothing to the forward value (the output stays exactly ±1); its gradient contribution is
  bounded to [-1, 1] so that it cannot take over the series.

Binary conv/linear layers use ``alpha_k * sign(w_k)`` with the per-output-channel scale
``alpha_k = mean |w_k|`` (XNOR-Net, Rastegari et al. 2016). Zero padding of a binary conv pads with
``-1`` (bit 0), because xnor-popcount hardware has no zero; the integer reference does the same.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autochip.compress._epilogue import grid_bias
from autochip.ir.node import Arithmetic

__all__ = [
    "ESTIMATORS",
    "BinaryAct",
    "BinaryConv2d",
    "BinaryLinear",
    "NoiseAdaptation",
    "binarize",
    "fda_grad",
    "sign_fda",
    "sign_ste",
]

ESTIMATORS = ("ste", "fda")
ACC_BITS = 32
FDA_OMEGA = 0.1  # FDA's frequency w (reference implementation of the paper)
FDA_TERMS = 10  # truncation of the sine series
FDA_CLIP = 1.0  # no gradient outside |v| <= clip
NAM_HIDDEN = 8  # sine units of the noise-adaptation module


def binarize(v: Tensor) -> Tensor:
    """``+1`` where ``v > 0``, else ``-1`` (same dtype as ``v``)."""
    return torch.where(v > 0, torch.ones_like(v), -torch.ones_like(v))


def fda_grad(v: Tensor, omega: float, terms: int, clip: float) -> Tensor:
    """Derivative of the ``terms``-term sine series of sign: ``4w/pi sum cos((2i+1) w v)``."""
    total = torch.zeros_like(v)
    for i in range(terms):
        total = total + torch.cos((2 * i + 1) * omega * v)
    g = (4.0 * omega / math.pi) * total
    return torch.where(v.abs() <= clip, g, torch.zeros_like(g))


class _SignSte(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, v: Tensor) -> Tensor:
        ctx.save_for_backward(v)
        return binarize(v)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (v,) = ctx.saved_tensors
        out: Tensor = grad * (v.abs() <= 1.0).to(grad.dtype)
        return out


class _SignFda(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, v: Tensor, omega: float, terms: int, clip: float) -> Tensor:
        ctx.save_for_backward(v)
        ctx.params = (omega, terms, clip)
        return binarize(v)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        (v,) = ctx.saved_tensors
        return grad * fda_grad(v, *ctx.params), None, None, None


def sign_ste(v: Tensor) -> Tensor:
    """Binarise with the clipped straight-through gradient."""
    out: Tensor = _SignSte.apply(v)  # type: ignore[no-untyped-call]
    return out


def sign_fda(
    v: Tensor, omega: float = FDA_OMEGA, terms: int = FDA_TERMS, clip: float = FDA_CLIP
) -> Tensor:
    """Binarise with FDA's truncated-sine-series gradient."""
    out: Tensor = _SignFda.apply(v, omega, terms, clip)  # type: ignore[no-untyped-call]
    return out


def _sign(v: Tensor, estimator: str) -> Tensor:
    if estimator == "ste":
        return sign_ste(v)
    if estimator == "fda":
        return sign_fda(v)
    raise ValueError(f"binary estimator must be one of {ESTIMATORS}, not {estimator!r}")


class NoiseAdaptation(nn.Module):
    """FDA's noise-adaptation module: a learned correction of the truncated series' gradient.

    ``e(v) = 1/h sum_j tanh(a_j) sin(f_j v) / f_j`` over ``h`` fixed frequencies ``f_j`` (the
    harmonics the truncation dropped live above the series' last one); its derivative
    ``1/h sum_j tanh(a_j) cos(f_j v)`` lies in [-1, 1]. It contributes ``e(v) - stopgrad(e(v))``
    to the activation: zero in the forward pass, ``de/dv`` (zero for ``|v| > clip``) in the
    backward pass. ``a`` starts at 0, so training starts from the pure series.
    """

    freq: Tensor

    def __init__(self, hidden: int = NAM_HIDDEN, clip: float = FDA_CLIP) -> None:
        super().__init__()
        self.clip = clip
        self.register_buffer("freq", torch.linspace(0.5, 3.0, hidden))
        self.amp = nn.Parameter(torch.zeros(hidden))

    def residual(self, v: Tensor) -> Tensor:
        w = torch.tanh(self.amp) / (self.freq * self.freq.numel())
        return (torch.sin(v.unsqueeze(-1) * self.freq) * w).sum(dim=-1)

    def forward(self, v: Tensor) -> Tensor:
        vc = v.clamp(-self.clip, self.clip)  # no gradient outside the clip range
        e = self.residual(vc)
        return e - e.detach()


class BinaryAct(nn.Module):
    """Binarises activations to ±1; a zero-cost leaf for the tracer."""

    autochip_identity = True

    def __init__(self, estimator: str = "ste") -> None:
        super().__init__()
        if estimator not in ESTIMATORS:
            raise ValueError(f"binary estimator must be one of {ESTIMATORS}, not {estimator!r}")
        self.estimator = estimator
        self.bits = 1
        self.nam = NoiseAdaptation() if estimator == "fda" else None
        self.autochip_arithmetic = Arithmetic(
            kind="xnor", dtype="int", w_bits=1, a_bits=1, acc_bits=ACC_BITS
        )

    def extra_repr(self) -> str:
        return f"estimator={self.estimator}"

    def forward(self, x: Tensor) -> Tensor:
        out = _sign(x, self.estimator)
        if self.nam is not None:
            out = out + self.nam(x)
        return out


def channel_scale(w: Tensor) -> Tensor:
    """XNOR-Net per-output-channel scale ``mean |w_k|`` (not differentiated)."""
    return w.detach().abs().reshape(w.shape[0], -1).mean(dim=1)


class BinaryConv2d(nn.Conv2d):
    """``alpha_k * conv(x, sign(w))`` on ±1 inputs; padding uses -1."""

    def __init__(self, *args: Any, estimator: str = "ste", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.estimator = estimator
        self.autochip_arithmetic = Arithmetic(
            kind="xnor", dtype="int", w_bits=1, a_bits=1, acc_bits=ACC_BITS
        )

    def forward(self, x: Tensor) -> Tensor:
        wb = _sign(self.weight, self.estimator)
        ph, pw = cast(tuple[int, int], self.padding)
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph), value=-1.0)
        acc = F.conv2d(x, wb, None, self.stride, 0, self.dilation, self.groups)
        alpha = channel_scale(self.weight)
        out = acc * alpha.reshape(1, -1, 1, 1)
        bias = grid_bias(self, alpha.double(), self.bias)
        return out if bias is None else out + bias.reshape(1, -1, 1, 1)


class BinaryLinear(nn.Linear):
    """``alpha_k * (x @ sign(w)^T)`` on ±1 inputs."""

    def __init__(self, *args: Any, estimator: str = "ste", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.estimator = estimator
        self.autochip_arithmetic = Arithmetic(
            kind="xnor", dtype="int", w_bits=1, a_bits=1, acc_bits=ACC_BITS
        )

    def forward(self, x: Tensor) -> Tensor:
        acc = F.linear(x, _sign(self.weight, self.estimator))
        alpha = channel_scale(self.weight)
        bias = grid_bias(self, alpha.double(), self.bias)
        out = acc * alpha
        return out if bias is None else out + bias

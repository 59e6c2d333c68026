"""Fake quantisation with learned step size (LSQ) and the quantised conv/linear/activation modules.

Integer semantics (``docs/compression.md``, DESIGN "Integer semantics"): zero-point 0 everywhere.
Weights are signed symmetric per output channel in ``[-(2^(b-1) - 1), 2^(b-1) - 1]``; activations
are signed per tensor in ``[-2^(b-1), 2^(b-1) - 1]``, or ``[0, 2^(b-1) - 1]`` when the tensor is
known to be non-negative (a ReLU output). Rounding is *round half up*, ``floor(v + 1/2)``, the same
rounding the integer requantisation ``(acc * M + 2^(s-1)) >> s`` performs, so the fake-quant model
and the exported integer model round alike.

LSQ (Esser et al., "Learned Step Size Quantization", ICLR 2020): ``q = clamp(round(v / s), Qn, Qp)
* s``; the gradient for ``v`` is passed straight through inside the range and is 0 outside; the
gradient for the step ``s`` is ``(-v/s + round(v/s))`` inside, ``Qn`` / ``Qp`` below / above, scaled
by ``g = 1 / sqrt(N * Qp)`` with ``N`` the number of elements one step size serves.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autochip.compress._epilogue import grid_bias, input_quant
from autochip.compress.policy import CALIBRATIONS
from autochip.ir.node import Arithmetic

__all__ = [
    "LsqFunction",
    "QuantAct",
    "QuantConv2d",
    "QuantLinear",
    "WeightQuantizer",
    "act_range",
    "calibrate_scale",
    "lsq_quantize",
    "round_half_up",
    "weight_range",
]

ACC_BITS = 32
CALIBRATION_MARGIN = 1.0 + 2.0**-7


def round_half_up(v: Tensor) -> Tensor:
    """``floor(v + 0.5)``: the rounding of the integer requantisation (ties go up)."""
    return torch.floor(v + 0.5)


def weight_range(bits: int) -> tuple[int, int]:
    """Signed symmetric weight range of ``bits`` bits: ``(-(2^(b-1) - 1), 2^(b-1) - 1)``."""
    qp = 2 ** (bits - 1) - 1
    return -qp, qp


def act_range(bits: int, signed: bool) -> tuple[int, int]:
    """Activation range: signed ``[-2^(b-1), 2^(b-1) - 1]`` or non-negative ``[0, 2^(b-1) - 1]``."""
    qp = 2 ** (bits - 1) - 1
    return (-(qp + 1) if signed else 0), qp


class LsqFunction(torch.autograd.Function):
    """LSQ fake quantiser; ``scale`` broadcasts against ``v`` (per tensor or per channel)."""

    @staticmethod
    def forward(ctx: Any, v: Tensor, scale: Tensor, qn: int, qp: int, grad_scale: float) -> Tensor:
        r = v / scale
        q = torch.clamp(round_half_up(r), qn, qp)
        ctx.save_for_backward(r, q)
        ctx.shape = scale.shape
        ctx.grad_scale = grad_scale
        ctx.qn, ctx.qp = qn, qp
        return q * scale

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None, None, None]:
        r, q = ctx.saved_tensors
        below = r < ctx.qn
        above = r > ctx.qp
        inside = ~(below | above)
        grad_v = grad * inside.to(grad.dtype)
        ds = torch.where(inside, q - r, q)  # q equals Qn / Qp outside the range
        grad_s = grad * ds * ctx.grad_scale
        # reduce to the scale's shape: a scalar, or per channel with size-1 broadcast dims
        shape = ctx.shape
        if len(shape) == 0:
            grad_s = grad_s.sum()
        else:
            dims = [i for i, n in enumerate(shape) if n == 1]
            grad_s = grad_s.sum(dim=dims, keepdim=True) if dims else grad_s
        return grad_v, grad_s, None, None, None


def lsq_quantize(v: Tensor, scale: Tensor, qn: int, qp: int, grad_scale: float) -> Tensor:
    """Fake-quantise ``v`` with step ``scale`` (LSQ gradients)."""
    out: Tensor = LsqFunction.apply(v, scale, qn, qp, grad_scale)  # type: ignore[no-untyped-call]
    return out


def calibrate_scale(
    v: Tensor, qp: int, method: str = "minmax", percentile: float = 99.99, qn: int | None = None
) -> float:
    """Post-training calibration of one step size from observed values ``v``.

    ``minmax``: ``max|v| / Qp``; ``percentile``: the ``percentile`` of ``|v|`` divided by ``Qp``
    (clips rare outliers); ``mse``: the clipping threshold ``t`` (of 100 evenly spaced in
    ``(0, max|v|]``) whose step ``t / Qp`` quantises ``v`` into ``[Qn, Qp]`` (``qn``, default
    ``-Qp - 1``) with the least mean squared error (at 2-6 bits it clips well below the
    maximum: the error of the many small values outweighs that of the few clipped ones). All
    times ``1 + 2^-7``. Returns a positive step even for an all-zero tensor.
    """
    a = v.detach().abs().flatten().float()
    if method == "minmax":
        top = float(a.max()) if a.numel() else 0.0
    elif method == "percentile":
        top = float(torch.quantile(a[: 1 << 24], percentile / 100.0)) if a.numel() else 0.0
    elif method == "mse":
        top = _mse_clip(v.detach().flatten().float(), -qp - 1 if qn is None else qn, qp)
    else:
        raise ValueError(f"calibration method must be one of {CALIBRATIONS}, not {method!r}")
    # slightly larger than top / Qp: with steps that are exact fractions of an observed value,
    # simple ratios of observed values would land exactly on rounding ties (k + 1/2), where the
    # float fake-quant and the integer requantisation may round apart
    return max(top, 1e-8) / qp * CALIBRATION_MARGIN


MSE_GRID = 100  # clipping thresholds tried by the ``mse`` calibration
MSE_SAMPLES = 1 << 20  # values it scores them on (an even stride through larger tensors)


@torch.no_grad()
def _mse_clip(x: Tensor, qn: int, qp: int) -> float:
    """The clipping threshold (of ``MSE_GRID``) with the least quantisation error on ``x``."""
    if x.numel() > MSE_SAMPLES:
        x = x[:: -(-x.numel() // MSE_SAMPLES)]
    if qn >= 0:
        x = x.clamp_min(0.0)  # what a non-negative quantiser can represent at all
    top = float(x.abs().max()) if x.numel() else 0.0
    if top <= 0.0:
        return 0.0
    best, best_err = top, math.inf
    for k in range(1, MSE_GRID + 1):
        t = top * k / MSE_GRID
        s = t / qp
        err = float(((torch.clamp(round_half_up(x / s), qn, qp) * s - x) ** 2).mean())
        if err < best_err:
            best, best_err = t, err
    return best


class WeightQuantizer(nn.Module):
    """Per-output-channel LSQ weight quantiser (step initialised from the weights)."""

    def __init__(self, out_channels: int, bits: int) -> None:
        super().__init__()
        self.bits = bits
        self.qn, self.qp = weight_range(bits)
        self.scale = nn.Parameter(torch.ones(out_channels))

    def init_from(self, w: Tensor) -> None:
        """LSQ initialisation ``2 <|w|> / sqrt(Qp)``, capped by the max-abs step per channel."""
        flat = w.detach().reshape(w.shape[0], -1).abs()
        lsq = 2 * flat.mean(dim=1) / math.sqrt(self.qp)
        maxabs = flat.max(dim=1).values / self.qp
        with torch.no_grad():
            self.scale.copy_(torch.minimum(lsq, maxabs).clamp_min(1e-8))

    def scale_view(self, w: Tensor) -> Tensor:
        return self.scale.reshape((-1,) + (1,) * (w.dim() - 1))

    def forward(self, w: Tensor) -> Tensor:
        g = 1.0 / math.sqrt(w[0].numel() * self.qp)
        return lsq_quantize(w, self.scale_view(w), self.qn, self.qp, g)

    def integer(self, w: Tensor) -> Tensor:
        """The integer weights (as float tensor) the export writes."""
        r = w.detach() / self.scale_view(w).detach()
        return torch.clamp(round_half_up(r), self.qn, self.qp)


class QuantAct(nn.Module):
    """Per-tensor LSQ activation fake-quantiser; a zero-cost leaf for the tracer.

    ``signed=False`` uses the non-negative half ``[0, 2^(b-1) - 1]`` (ReLU outputs).
    """

    autochip_identity = True

    def __init__(self, bits: int, signed: bool = True) -> None:
        super().__init__()
        self.bits = bits
        self.signed = signed
        self.qn, self.qp = act_range(bits, signed)
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.autochip_arithmetic = Arithmetic(
            kind="mac", dtype="int", w_bits=bits, a_bits=bits, acc_bits=ACC_BITS
        )

    def extra_repr(self) -> str:
        return f"bits={self.bits}, signed={self.signed}"

    def forward(self, x: Tensor) -> Tensor:
        g = 1.0 / math.sqrt(x[0].numel() * self.qp)
        return lsq_quantize(x, self.scale, self.qn, self.qp, g)


class QuantConv2d(nn.Conv2d):
    """Conv2d with LSQ per-channel fake-quant weights; its input comes from a :class:`QuantAct`."""

    def __init__(self, *args: Any, w_bits: int = 8, a_bits: int = 8, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.w_quant = WeightQuantizer(self.out_channels, w_bits)
        self.autochip_arithmetic = Arithmetic(
            kind="mac", dtype="int", w_bits=w_bits, a_bits=a_bits, acc_bits=ACC_BITS
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self._conv_forward(x, self.w_quant(self.weight), None)
        bias = _bias(self, self.w_quant, self.bias)
        return out if bias is None else out + bias.reshape(1, -1, 1, 1)


class QuantLinear(nn.Linear):
    """Linear with LSQ per-output fake-quant weights; its input comes from a :class:`QuantAct`."""

    def __init__(self, *args: Any, w_bits: int = 8, a_bits: int = 8, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.w_quant = WeightQuantizer(self.out_features, w_bits)
        self.autochip_arithmetic = Arithmetic(
            kind="mac", dtype="int", w_bits=w_bits, a_bits=a_bits, acc_bits=ACC_BITS
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = F.linear(x, self.w_quant(self.weight), _bias(self, self.w_quant, self.bias))
        return out


def _bias(layer: nn.Module, wq: WeightQuantizer, bias: Tensor | None) -> Tensor | None:
    q = input_quant(layer)
    if q is None or layer.training:
        return bias
    scale = q.scale.detach().double() * wq.scale.detach().double()  # type: ignore[operator]
    return grid_bias(layer, scale, bias)

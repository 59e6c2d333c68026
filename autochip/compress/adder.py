"""AdderNet layers (Chen et al., "AdderNet: Do We Really Need Multiplications in Deep Learning?",
CVPR 2020): ``Y = -sum |X - W|`` over the same window a convolution would multiply.

Gradients, as in the paper:

* weights get the full-precision gradient ``dY/dW = X - W`` (not ``sign(X - W)``);
* inputs get the HardTanh-clipped gradient ``dY/dX = HT(W - X)``, ``HT(z) = clamp(z, -1, 1)``;
* the adaptive learning-rate scaling multiplies a layer's weight gradient by
  ``eta * sqrt(k) / ||dL/dW||_2`` (``k`` = number of weights), see :func:`scale_adder_gradients`.

Quantised adder layers share one step size between input and weights (so ``|a - w|`` is an integer
subtraction): the step of the :class:`~autochip.compress.quant.QuantAct` that feeds the layer.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autochip.compress._epilogue import grid_bias, input_quant
from autochip.compress.quant import QuantAct, lsq_quantize, weight_range
from autochip.ir.node import Arithmetic

__all__ = [
    "ADDER_ETA",
    "AdderConv2d",
    "AdderLinear",
    "adder_matmul",
    "scale_adder_gradients",
]

ADDER_ETA = 0.1  # eta of the adaptive learning-rate scaling (AdderNet paper's CIFAR setting)
_CHUNK_ELEMS = 1 << 22  # elements of the |x - w| intermediate per chunk
ACC_BITS = 32


class _AdderFunction(torch.autograd.Function):
    """``out[n, k, l] = -sum_c |x[n, c, l] - w[k, c]|`` with AdderNet's gradients."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor) -> Tensor:
        ctx.save_for_backward(x, w)
        n, c, l = x.shape
        k = w.shape[0]
        step = max(1, _CHUNK_ELEMS // max(1, k * c * l))
        outs = []
        for i in range(0, n, step):
            xi = x[i : i + step]
            outs.append(-(xi.unsqueeze(1) - w.unsqueeze(0).unsqueeze(-1)).abs().sum(dim=2))
        return torch.cat(outs, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        x, w = ctx.saved_tensors
        # dY/dW = X - W, summed over batch and positions
        grad_w = torch.einsum("nkl,ncl->kc", grad, x) - w * grad.sum(dim=(0, 2)).unsqueeze(1)
        n, c, l = x.shape
        k = w.shape[0]
        step = max(1, _CHUNK_ELEMS // max(1, k * c * l))
        gx = []
        for i in range(0, n, step):
            xi = x[i : i + step]
            ht = (w.unsqueeze(0).unsqueeze(-1) - xi.unsqueeze(1)).clamp(-1.0, 1.0)
            gx.append((grad[i : i + step].unsqueeze(2) * ht).sum(dim=1))
        return torch.cat(gx, dim=0), grad_w


def adder_matmul(x: Tensor, w: Tensor) -> Tensor:
    """``-sum_c |x[n, c, l] - w[k, c]|`` for ``x`` [N, C, L] and ``w`` [K, C] -> [N, K, L]."""
    out: Tensor = _AdderFunction.apply(x, w)
    return out


class _SharedScale:
    """Mixin: quantise weights with the step of the QuantAct that feeds the layer."""

    bits: int
    weight: nn.Parameter

    @property
    def input_quant(self) -> QuantAct | None:
        q = input_quant(self)  # type: ignore[arg-type]
        return q if isinstance(q, QuantAct) else None

    def _bias(self, bias: Tensor | None) -> Tensor | None:
        q = self.input_quant
        if q is None:
            return bias
        k = self.weight.shape[0]
        return grid_bias(self, q.scale.detach().double().expand(k), bias)  # type: ignore[arg-type]

    def quantized_weight(self) -> Tensor:
        q = self.input_quant
        if q is None:
            return self.weight
        qn, qp = weight_range(self.bits)
        g = 1.0 / math.sqrt(self.weight.numel() * qp)
        return lsq_quantize(self.weight, q.scale, qn, qp, g)

    def integer_weight(self) -> Tensor:
        """Integer weights in units of the shared step (as a float tensor)."""
        q = self.input_quant
        if q is None:
            raise ValueError("adder layer has no input quantiser; convert() sets one")
        qn, qp = weight_range(self.bits)
        r = self.weight.detach() / q.scale.detach()
        return torch.clamp(torch.floor(r + 0.5), qn, qp)


class AdderConv2d(_SharedScale, nn.Conv2d):
    """2-D adder layer: ``-sum |x - w|`` over each window (zero padding, groups supported)."""

    def __init__(self, *args: Any, bits: int = 8, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bits = bits
        self.autochip_arithmetic = Arithmetic(
            kind="adder", dtype="int", w_bits=bits, a_bits=bits, acc_bits=ACC_BITS
        )

    def forward(self, x: Tensor) -> Tensor:
        w = self.quantized_weight()
        n, _, h, wd = x.shape
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph, pw = self.padding  # type: ignore[misc]
        dh, dw = self.dilation
        p = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        q = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        cols = F.unfold(x, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))
        g = self.groups
        cols = cols.reshape(n, g, -1, p * q)
        wg = w.reshape(g, self.out_channels // g, -1)
        out = torch.cat([adder_matmul(cols[:, i], wg[i]) for i in range(g)], dim=1)
        out = out.reshape(n, self.out_channels, p, q)
        bias = self._bias(self.bias)
        return out if bias is None else out + bias.reshape(1, -1, 1, 1)


class AdderLinear(_SharedScale, nn.Linear):
    """Fully connected adder layer: ``y[n, k] = -sum_c |x[n, c] - w[k, c]|``."""

    def __init__(self, *args: Any, bits: int = 8, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bits = bits
        self.autochip_arithmetic = Arithmetic(
            kind="adder", dtype="int", w_bits=bits, a_bits=bits, acc_bits=ACC_BITS
        )

    def forward(self, x: Tensor) -> Tensor:
        w = self.quantized_weight()
        out = adder_matmul(x.unsqueeze(-1), w).squeeze(-1)
        bias = self._bias(self.bias)
        return out if bias is None else out + bias


def scale_adder_gradients(model: nn.Module, eta: float = ADDER_ETA) -> None:
    """AdderNet's adaptive learning rate: ``grad_W *= eta * sqrt(k) / ||grad_W||_2`` per layer.

    Call after ``backward()`` and before ``optimizer.step()``.
    """
    for m in model.modules():
        if isinstance(m, AdderConv2d | AdderLinear) and m.weight.grad is not None:
            g = m.weight.grad
            norm = g.norm(p=2)
            if float(norm) > 0:
                g.mul_(eta * math.sqrt(g.numel()) / norm)

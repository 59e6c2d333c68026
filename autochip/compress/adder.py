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
from typing import Any, cast

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
    "shared_input_quant",
    "shared_integer_weight",
    "shared_quantized_weight",
    "template_weights",
]

TEMPLATE_BETA = 1.0  # spread of the template weights, in input standard deviations
ADDER_ETA = 0.1  # eta of the adaptive learning-rate scaling (AdderNet paper's CIFAR setting)
_CHUNK_ELEMS = 1 << 22  # elements of the |x - w| intermediate per chunk
ACC_BITS = 32


class _AdderFunction(torch.autograd.Function):
    """``out[n, k, l] = -sum_c |x[n, c, l] - w[k, c]|`` with AdderNet's gradients."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor) -> Tensor:
        ctx.save_for_backward(x, w)
        # torch.cdist(p=1) is sum_c |x - w| without the [N, K, C, L] intermediate
        return -torch.cdist(x.transpose(1, 2), w.unsqueeze(0), p=1.0).transpose(1, 2)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        x, w = ctx.saved_tensors
        grad = grad.contiguous()
        # dY/dW = X - W, summed over batch and positions
        grad_w = torch.einsum("nkl,ncl->kc", grad, x) - w * grad.sum(dim=(0, 2)).unsqueeze(1)
        n, c, l = x.shape
        k = w.shape[0]
        step = max(1, _CHUNK_ELEMS // max(1, k * c * l))
        gx = []
        for i in range(0, n, step):
            # dY/dX = HT(W - X), in place on one chunk's [n, K, C, L] differences
            ht = w.unsqueeze(0).unsqueeze(-1) - x[i : i + step].unsqueeze(1)
            ht.clamp_(-1.0, 1.0).mul_(grad[i : i + step].unsqueeze(2))
            gx.append(ht.sum(dim=1))
        return torch.cat(gx, dim=0), grad_w


def adder_matmul(x: Tensor, w: Tensor) -> Tensor:
    """``-sum_c |x[n, c, l] - w[k, c]|`` for ``x`` [N, C, L] and ``w`` [K, C] -> [N, K, L]."""
    out: Tensor = _AdderFunction.apply(x, w)  # type: ignore[no-untyped-call]
    return out


def shared_input_quant(layer: nn.Module) -> QuantAct | None:
    """The QuantAct feeding an adder layer (``convert`` links it); its step is shared."""
    q = input_quant(layer)
    return q if isinstance(q, QuantAct) else None


def _shared_bias(layer: nn.Module, weight: Tensor, bias: Tensor | None) -> Tensor | None:
    q = shared_input_quant(layer)
    if q is None:
        return bias
    return grid_bias(layer, q.scale.detach().double().expand(weight.shape[0]), bias)


def shared_quantized_weight(layer: nn.Module, weight: Tensor, bits: int) -> Tensor:
    """Fake-quantised weights on the input quantiser's step (LSQ gradient to that step)."""
    q = shared_input_quant(layer)
    if q is None:
        return weight
    qn, qp = weight_range(bits)
    g = 1.0 / math.sqrt(weight.numel() * qp)
    return lsq_quantize(weight, q.scale, qn, qp, g)


def shared_integer_weight(layer: nn.Module, weight: Tensor, bits: int) -> Tensor:
    """Integer weights in units of the shared step (as a float tensor)."""
    q = shared_input_quant(layer)
    if q is None:
        raise ValueError("adder layer has no input quantiser; convert() links one")
    qn, qp = weight_range(bits)
    r = weight.detach() / q.scale.detach()
    return torch.clamp(torch.floor(r + 0.5), qn, qp)


class AdderConv2d(nn.Conv2d):
    """2-D adder layer: ``-sum |x - w|`` over each window (zero padding, groups supported)."""

    def __init__(self, *args: Any, bits: int = 8, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bits = bits
        self.autochip_arithmetic = Arithmetic(
            kind="adder", dtype="int", w_bits=bits, a_bits=bits, acc_bits=ACC_BITS
        )

    def forward(self, x: Tensor) -> Tensor:
        w = shared_quantized_weight(self, self.weight, self.bits)
        n, _, h, wd = x.shape
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph, pw = cast(tuple[int, int], self.padding)
        dh, dw = self.dilation
        p = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        q = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        cols = F.unfold(x, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))
        g = self.groups
        cols = cols.reshape(n, g, -1, p * q)
        wg = w.reshape(g, self.out_channels // g, -1)
        out = torch.cat([adder_matmul(cols[:, i], wg[i]) for i in range(g)], dim=1)
        out = out.reshape(n, self.out_channels, p, q)
        bias = _shared_bias(self, self.weight, self.bias)
        return out if bias is None else out + bias.reshape(1, -1, 1, 1)


class AdderLinear(nn.Linear):
    """Fully connected adder layer: ``y[n, k] = -sum_c |x[n, c] - w[k, c]|``."""

    def __init__(self, *args: Any, bits: int = 8, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bits = bits
        self.autochip_arithmetic = Arithmetic(
            kind="adder", dtype="int", w_bits=bits, a_bits=bits, acc_bits=ACC_BITS
        )

    def forward(self, x: Tensor) -> Tensor:
        w = shared_quantized_weight(self, self.weight, self.bits)
        out = adder_matmul(x.unsqueeze(-1), w).squeeze(-1)
        bias = _shared_bias(self, self.weight, self.bias)
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


@torch.no_grad()
def template_weights(layer: nn.Module, x: Tensor, beta: float = TEMPLATE_BETA) -> Tensor:
    """Weights for an adder layer converted from a conv/linear layer, from its input ``x``.

    ``-sum |x - w|`` is largest where the input window equals ``w``: an adder weight is a
    template in the input's own range. The float layer's weights are not (after a ReLU the
    features are ~0..5, the conv weights ~0.1), and copied as they are every output channel
    computes about ``-sum |x|``, the same for all channels. So each output channel's template is
    the mean input window plus ``beta`` standard deviations along the float filter's direction:
    ``w[k, i] = mean_i + beta * std_i * u[k, i]``, ``u`` the filter scaled to unit RMS.
    """
    assert isinstance(layer, AdderConv2d | AdderLinear)
    if isinstance(layer, AdderConv2d):
        cols = F.unfold(
            x,
            layer.kernel_size,
            dilation=layer.dilation,
            padding=cast(tuple[int, int], layer.padding),
            stride=layer.stride,
        )  # N, C*kh*kw, L
        g = layer.groups
        n, _, l = cols.shape
        cols = cols.reshape(n, g, -1, l).permute(1, 0, 3, 2)  # G, N, L, C/G*kh*kw
        flat = cols.reshape(g, n * l, -1)
    else:
        flat = x.reshape(1, x.shape[0], -1)
    mean, std = flat.mean(dim=1), flat.std(dim=1)  # G, C'
    k = layer.weight.shape[0]
    w = layer.weight.detach().reshape(flat.shape[0], k // flat.shape[0], -1)  # G, K/G, C'
    u = w / w.pow(2).mean(dim=2, keepdim=True).sqrt().clamp_min(1e-12)
    out = mean.unsqueeze(1) + beta * std.unsqueeze(1) * u
    return out.reshape(layer.weight.shape).to(layer.weight.dtype)

"""Links from a compressed layer to its input quantiser and following batch-norm.

In eval mode a layer whose output is requantised to integers adds its bias *on the accumulator
grid*: the export folds bias and batch-norm into ``bias_int = round(B / A)`` (``y = A * acc + B``,
DESIGN "Integer semantics"), and the fake-quant forward adds exactly that rounded value, so the
fake-quant model and the integer model compute the same affine map of the accumulator.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["folded_affine", "grid_bias", "input_quant", "link"]


def link(layer: nn.Module, quant: nn.Module | None, bn: nn.Module | None, grid: bool) -> None:
    """Remember (outside the module tree) the quantiser feeding ``layer`` and its batch-norm."""
    layer.__dict__["_input_quant"] = quant
    layer.__dict__["_next_bn"] = bn
    layer.__dict__["_grid_bias"] = grid


def input_quant(layer: nn.Module) -> nn.Module | None:
    q: nn.Module | None = layer.__dict__.get("_input_quant")
    return q


def folded_affine(
    a_unit: Tensor, bias: Tensor | None, bn: nn.Module | None
) -> tuple[Tensor, Tensor, Tensor]:
    """``(A, B, k)`` in float64: ``y = A * acc + B`` after the batch-norm, ``k`` its scale."""
    a = a_unit.detach().double()
    b = bias.detach().double() if bias is not None else torch.zeros_like(a)
    if bn is None:
        return a, b, torch.ones_like(a)
    assert isinstance(bn, nn.BatchNorm2d | nn.BatchNorm1d)
    assert bn.running_var is not None and bn.running_mean is not None
    mean = bn.running_mean.detach().double()
    g = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(a)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(a)
    k = g / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    return a * k, (b - mean) * k + beta, k


def grid_bias(layer: nn.Module, a_unit: Tensor, bias: Tensor | None) -> Tensor | None:
    """The bias the layer adds: ``bias`` while training, the grid-rounded one in eval mode."""
    if layer.training or not layer.__dict__.get("_grid_bias", False):
        return bias
    bn: nn.Module | None = layer.__dict__.get("_next_bn")
    a, b, k = folded_affine(a_unit, bias, bn)
    if bool((a == 0).any()):
        return bias
    bias_int = torch.floor(b / a + 0.5)
    if bn is None:
        c = a * bias_int
    else:
        assert isinstance(bn, nn.BatchNorm2d | nn.BatchNorm1d) and bn.running_mean is not None
        beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(a)
        c = (a * bias_int - beta) / k + bn.running_mean.detach().double()
    return c.to(torch.get_default_dtype())

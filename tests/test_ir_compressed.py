"""The compressed-module contract (docs/CONTRACTS.md), with stand-in modules written here.

A module carrying ``autochip_arithmetic`` is a tracing leaf: an ``nn.Conv2d`` subclass becomes a
conv2d node and an ``nn.Linear`` subclass a linear node with that arithmetic (and optional
``autochip_sparsity``); ``autochip_identity = True`` marks a zero-cost activation quantiser.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import autochip.ir as ir
from autochip.errors import TraceError, UnsupportedOpError
from autochip.ir import Arithmetic, OpKind

INT4 = Arithmetic(kind="mac", dtype="int", w_bits=4, a_bits=8, acc_bits=24)
XNOR = Arithmetic(kind="xnor", dtype="int", w_bits=1, a_bits=1, acc_bits=16)


class MaskedConv(nn.Conv2d):
    """Data-dependent Python in forward: fx could not trace into it, so it must be a leaf."""

    autochip_arithmetic = INT4
    autochip_sparsity = 0.75

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.threshold = nn.Parameter(torch.zeros(self.out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if w.abs().max() > 0:  # data-dependent
            w = w * (w.abs() > 0.01)
        return F.conv2d(x, w, self.bias, self.stride, self.padding) - self.threshold.view(
            1, -1, 1, 1
        )


class SignLinear(nn.Linear):
    autochip_arithmetic = XNOR

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(torch.sign(x), torch.sign(self.weight), self.bias)


class Act8(nn.Module):
    autochip_identity = True
    autochip_arithmetic = Arithmetic(dtype="int", w_bits=8, a_bits=8)

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(16.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * self.scale).clamp(-128, 127) / self.scale


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_in = Act8()
        self.conv = MaskedConv(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.q = Act8()
        self.fc = SignLinear(8 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.q(self.relu(self.conv(self.q_in(x))))
        return self.fc(x.flatten(1))


def test_compressed_layers_become_nodes_with_their_arithmetic() -> None:
    model = Net()
    raw = ir.trace(model, torch.randn(2, 3, 6, 6))
    conv, fc = raw["conv"], raw["fc"]
    assert conv.kind is OpKind.CONV2D and conv.arithmetic == INT4 and conv.sparsity == 0.75
    assert conv.macs == 2 * 8 * 6 * 6 * 3 * 9
    assert conv.params == 8 * 3 * 9 + 8 + 8  # weight, bias and the leaf's own threshold
    assert fc.kind is OpKind.LINEAR and fc.arithmetic == XNOR and fc.macs == 2 * 5 * 288
    assert fc.arithmetic.label == "xnor" and conv.arithmetic.label == "w4a8"
    assert [n.attrs.get("op") for n in raw if n.kind is OpKind.RESHAPE] == [
        "quant_identity", "quant_identity", "flatten",
    ]  # fmt: skip


def test_activation_quantisers_are_zero_cost_and_record_bits() -> None:
    graph = ir.run_passes(ir.trace(Net(), torch.randn(1, 3, 6, 6)))
    assert [n.kind.value for n in graph] == ["input", "conv2d", "reshape", "linear", "output"]
    assert graph["x"].attrs["out_bits"] == 8  # the input quantiser
    # inputs are not layers: the input quantiser's scale goes to the conv it feeds
    assert graph["x"].params == 0
    assert graph["conv"].params == 8 * 3 * 9 + 8 + 8 + 1 + 1
    assert sum(n.params for n in graph) == graph.total_params
    assert graph["conv"].attrs == {"activation": "relu", "fused_activation": "relu", "out_bits": 8}
    assert sum(n.macs for n in graph) == graph.total_macs == 8 * 36 * 27 + 5 * 288


def test_other_modules_with_arithmetic_are_refused() -> None:
    class Odd(nn.Module):
        autochip_arithmetic = INT4

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2

    with pytest.raises(
        UnsupportedOpError,
        match=r"unsupported operator '.*Odd' at node 'odd' .*: a module with autochip_arithmetic "
        r"must be an nn.Conv2d or nn.Linear",
    ):
        ir.trace(_wrap(Odd()), torch.randn(2))


def _wrap(module: nn.Module) -> nn.Module:
    seq = nn.Sequential()
    seq.add_module("odd", module)
    return seq


def test_bad_arithmetic_attribute_is_reported() -> None:
    conv = nn.Conv2d(1, 1, 1)
    conv.autochip_arithmetic = "int8"  # type: ignore[assignment]
    with pytest.raises(
        TraceError,
        match=r"module '0' \(nn.Conv2d\): expected autochip_arithmetic to be an "
        r"autochip.ir.node.Arithmetic, found str",
    ):
        ir.trace(nn.Sequential(conv), torch.randn(1, 1, 2, 2))

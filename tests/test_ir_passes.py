"""Pass contracts: what each pass removes, what it records and what it keeps; validation."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

import autochip.ir as ir
from autochip.errors import GraphError
from autochip.ir import Arithmetic, OpKind
from autochip.ir.passes import rebuild


class ActQuant(nn.Module):
    """Stands in for a compression fake-quantiser: a zero-cost leaf recording 4-bit outputs."""

    autochip_identity = True

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.autochip_arithmetic = Arithmetic(dtype="int", w_bits=4, a_bits=4, acc_bits=16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x / self.scale).clamp(-8, 7) * self.scale


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.quant = ActQuant()
        self.branch = nn.Conv2d(8, 8, 1)
        self.bn_shared = nn.BatchNorm2d(8)  # its conv also feeds the residual: not foldable
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(self.relu(self.bn(self.conv(x))))
        y = self.branch(x)
        x = torch.relu(self.bn_shared(y) + y)
        x = torch.relu(self.pool(x))  # after a pooling: stays a separate node
        x = self.drop(x).contiguous().flatten(1)
        return self.fc(x)


@pytest.fixture(scope="module")
def raw() -> ir.AccelGraph:
    return ir.validate(ir.trace(Net(), torch.randn(1, 3, 8, 8), "net"))


def kinds(graph: ir.AccelGraph) -> list[str]:
    return [n.kind.value for n in graph]


def test_fold_batchnorm_keeps_macs_and_moves_params(raw: ir.AccelGraph) -> None:
    folded = ir.FoldBatchNorm().run(raw)
    assert "bn" not in folded and "bn_shared" in folded
    assert folded["conv"].params == raw["conv"].params + raw["bn"].params == 224 + 16
    assert folded["conv"].attrs["folded_batchnorm"] == "bn"
    assert folded.total_macs == raw.total_macs
    assert sum(n.params for n in folded) == sum(n.params for n in raw)
    assert folded["relu"].inputs == ("conv",)  # the consumer now reads the conv
    ir.validate(folded)


def test_fuse_activation_records_it_on_the_producer(raw: ir.AccelGraph) -> None:
    fused = ir.FuseActivation().run(ir.FoldBatchNorm().run(raw))
    conv = fused["conv"]
    assert "relu" not in fused
    assert conv.attrs["activation"] == "relu" and conv.attrs["fused_activation"] == "relu"
    assert conv.ops == raw["conv"].ops + raw["relu"].ops
    add = next(n for n in fused if n.kind is OpKind.ADD)
    assert add.attrs["activation"] == "relu"
    # the ReLU after the max-pool has no compute producer and stays
    assert [n.attrs["function"] for n in fused if n.kind is OpKind.ACTIVATION] == ["relu"]
    assert fused.total_macs == raw.total_macs


def test_drop_noops_records_the_quantiser_bits(raw: ir.AccelGraph) -> None:
    dropped = ir.DropNoOps().run(raw)
    ops = [n.attrs.get("op") for n in dropped if n.kind is OpKind.RESHAPE]
    assert ops == ["flatten"]  # dropout, contiguous and the quantiser are gone
    assert dropped["relu"].attrs["out_bits"] == 4
    assert dropped["relu"].params == 1  # the quantiser's scale moved with it
    assert sum(n.params for n in dropped) == sum(n.params for n in raw)


def test_default_flow_and_bits_survive_fusion(raw: ir.AccelGraph) -> None:
    final = ir.run_passes(raw)
    assert kinds(final) == [
        "input", "conv2d", "conv2d", "batchnorm", "add", "maxpool", "activation", "reshape",
        "linear", "output",
    ]  # fmt: skip
    assert final["conv"].attrs["out_bits"] == 4
    assert final.total_macs == raw.total_macs
    assert sum(n.params for n in final) == raw.total_params


def test_passes_do_not_mutate_their_input(raw: ir.AccelGraph) -> None:
    before = raw.nodes()
    ir.run_passes(raw)
    assert raw.nodes() == before


def test_a_pass_that_breaks_the_graph_is_caught(raw: ir.AccelGraph) -> None:
    class DropFlatten(ir.Pass):
        name = "broken"

        def run(self, graph: ir.AccelGraph) -> ir.AccelGraph:
            flat = next(n for n in graph if n.attrs.get("op") == "flatten")
            return rebuild(graph, {flat.name: flat.inputs[0]}, {})

    with pytest.raises(GraphError, match=r"node 'fc': input '\w+' has shape \[1, 8, 4, 4\], "
                       r"recorded as \[1, 128\]"):  # fmt: skip
        ir.run_passes(raw, [ir.DropNoOps, DropFlatten])


def _broken(graph: ir.AccelGraph, name: str, **changes: object) -> ir.AccelGraph:
    node = dataclasses.replace(graph[name], **changes)  # type: ignore[arg-type]
    return rebuild(graph, {}, {name: node})


def test_validate_reports_every_problem_at_once(raw: ir.AccelGraph) -> None:
    bad = _broken(raw, "conv", macs=5, params=-1)
    bad = _broken(bad, "fc", attrs={"x": (1, 2)})
    with pytest.raises(GraphError) as info:
        ir.validate(bad)
    text = str(info.value)
    assert text.startswith("graph 'net': 3 problems:")
    assert "node 'conv': params must be a non-negative integer, not -1" in text
    assert "node 'conv': macs 5 differ from the loop nest's 13824" in text
    assert "node 'fc': attrs must hold JSON values" in text


def test_validate_checks_shapes_against_dims(raw: ir.AccelGraph) -> None:
    dims = raw["conv"].dims
    assert dims is not None
    bad = _broken(raw, "conv", dims=dataclasses.replace(dims, pad_h=0, pad_w=0),
                  macs=dims.macs)  # fmt: skip
    with pytest.raises(GraphError, match=r"node 'conv' \(conv2d\): output 8x8 does not follow "
                       r"from input 8x8, kernel 3x3, stride 1, padding 0, dilation 1"):  # fmt: skip
        ir.validate(bad)
    with pytest.raises(GraphError, match=r"only conv2d/linear/matmul count MACs, found 7"):
        ir.validate(_broken(raw, "pool", macs=7))


def test_batchnorm_folds_only_over_output_channels() -> None:
    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(6, 5)
            self.bn = nn.BatchNorm1d(5)  # (N, 5): the linear's output features -> folds
            self.seq = nn.Linear(6, 5)
            self.bn_seq = nn.BatchNorm1d(4)  # (N, 4 tokens, 5): normalises tokens -> stays

        def forward(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.bn(self.fc(x)), self.bn_seq(self.seq(t))

    graph = ir.run_passes(ir.trace(Heads(), (torch.randn(2, 6), torch.randn(2, 4, 6))))
    assert "bn" not in graph and graph["fc"].attrs["folded_batchnorm"] == "bn"
    assert "bn_seq" in graph and "folded_batchnorm" not in graph["seq"].attrs

"""Zoo totals against published figures.

Reference figures: ``../shared/REFERENCE.md`` ("Published model sizes", ImageNet 224x224 unless
noted; the torchvision variants of AlexNet, VGG-16, ResNet-18/50, MobileNet-V2 and SqueezeNet
1.1, the MobileNet paper's Table 8 for V1, He et al. 2016 section 4.2 for ResNet-20). MACs count
conv, linear and matmul layers; parameters are the PyTorch model's before batch-norm folding.
The small models without a published figure are checked against counts worked out by hand from
their architecture.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import autochip.ir as ir
from autochip.ir.loader import zoo_names

# name: (parameters, MACs) from REFERENCE.md
PUBLISHED = {
    "alexnet": (61.10e6, 0.714e9),
    "vgg16": (138.36e6, 15.47e9),
    "resnet18": (11.69e6, 1.814e9),
    "resnet50": (25.56e6, 4.09e9),
    "mobilenet_v1": (4.2e6, 0.569e9),
    "mobilenet_v2": (3.50e6, 0.300e9),
    "squeezenet1_1": (1.24e6, 0.35e9),
    "resnet20": (0.27e6, 41e6),
}


# Half a unit in the last printed digit of a figure: "41 M" stands for [40.5 M, 41.5 M).
ROUNDING = {"resnet20": (0.005e6, 0.5e6)}


@pytest.fixture(scope="module")
def zoo() -> dict[str, tuple[ir.AccelGraph, int]]:
    """Each zoo model traced once, with its parameter count read from PyTorch directly.

    Built on the ``meta`` device: counts depend on shapes only, and skipping the weights'
    initialisation and the real forward keeps VGG-16 & co. fast. That the real-tensor path gives
    the same graph is checked below for ResNet-18 (and throughout the other test files).
    """
    out = {}
    for name in zoo_names():
        with torch.device("meta"):
            loaded = ir.load_model(name)
        params = sum(p.numel() for p in loaded.model.parameters())
        graph = ir.run_passes(ir.trace(loaded.model, loaded.example_input, name))
        out[name] = (graph, params)
    return out


@pytest.fixture(scope="module")
def zoo_graphs(zoo: dict[str, tuple[ir.AccelGraph, int]]) -> dict[str, ir.AccelGraph]:
    return {name: graph for name, (graph, _) in zoo.items()}


def test_zoo_has_every_network_of_the_issue() -> None:
    assert set(zoo_names()) >= {*PUBLISHED, "lenet_digits", "mlp", "vit_tiny"}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_totals_within_one_percent(
    name: str, zoo_graphs: dict[str, ir.AccelGraph]
) -> None:
    params, macs = PUBLISHED[name]
    graph = zoo_graphs[name]
    abs_params, abs_macs = ROUNDING.get(name, (0.0, 0.0))
    assert graph.total_params == pytest.approx(params, rel=0.01, abs=abs_params)
    assert graph.total_macs == pytest.approx(macs, rel=0.01, abs=abs_macs)


def test_resnet20_exact_count(zoo_graphs: dict[str, ir.AccelGraph]) -> None:
    """REFERENCE.md's 41 M for ResNet-20 is rounded; the exact count of the 6n+2 = 20 layers
    (3x3 convs on 32x32, 16x16, 8x8 maps with 16/32/64 channels, option-A shortcuts) is
    40,551,040 MACs, 1.1 % under the rounded figure."""
    graph = zoo_graphs["resnet20"]
    stem = 32 * 32 * 16 * 3 * 9
    full = 2_359_296  # one 3x3 conv whose input and output have the stage's width and size
    stage1 = 6 * full
    stage2 = 5 * full + 16 * 16 * 32 * 16 * 9
    stage3 = 5 * full + 8 * 8 * 64 * 32 * 9
    assert 32 * 32 * 16 * 16 * 9 == 16 * 16 * 32 * 32 * 9 == 8 * 8 * 64 * 64 * 9 == full
    assert graph.total_macs == stem + stage1 + stage2 + stage3 + 64 * 10 == 40_551_040


def test_total_params_is_the_pytorch_count(zoo: dict[str, tuple[ir.AccelGraph, int]]) -> None:
    for name, (graph, params) in zoo.items():
        assert graph.total_params == params, name
        # every parameter is attributed to exactly one layer (batch-norm to its conv)
        assert sum(n.params for n in graph) == graph.total_params, name


def test_small_models_by_hand(zoo_graphs: dict[str, ir.AccelGraph]) -> None:
    # LeNet-300-100: 784*300 + 300*100 + 100*10 MACs, plus 410 biases
    mlp = zoo_graphs["mlp"]
    assert mlp.total_macs == 784 * 300 + 300 * 100 + 100 * 10 == 266_200
    assert mlp.total_params == 266_610
    # LeNet for 8x8 digits: 3x3 convs (pad 1) on 8x8 and 4x4 maps, then 64-120-84-10
    lenet = zoo_graphs["lenet_digits"]
    conv = 6 * 8 * 8 * 1 * 9 + 16 * 4 * 4 * 6 * 9
    fc = 64 * 120 + 120 * 84 + 84 * 10
    assert lenet.total_macs == conv + fc
    assert lenet.total_params == (6 * 9 + 6) + (16 * 6 * 9 + 16) + fc + 120 + 84 + 10


def test_vit_tiny_by_hand(zoo_graphs: dict[str, ir.AccelGraph]) -> None:
    """ViT: width 64, depth 4, 4 heads, MLP 128, 4x4 patches of 32x32 -> 64 tokens + class."""
    d, depth, mlp, t, patches = 64, 4, 128, 65, 64
    embed = patches * d * 3 * 4 * 4
    per_block = t * d * 3 * d + 2 * t * t * d + t * d * d + t * d * mlp + t * mlp * d
    assert zoo_graphs["vit_tiny"].total_macs == embed + depth * per_block + d * 10
    params = (
        (3 * 16 * d + d)
        + d
        + t * d
        + depth * (4 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * mlp + mlp) + (mlp * d + d))
        + 2 * d
        + (d * 10 + 10)
    )
    assert zoo_graphs["vit_tiny"].total_params == params
    kinds = {n.kind for n in zoo_graphs["vit_tiny"]}
    assert {ir.OpKind.MATMUL, ir.OpKind.LAYERNORM, ir.OpKind.SOFTMAX, ir.OpKind.CONCAT} <= kinds


def test_zoo_outputs_match_the_model(zoo_graphs: dict[str, ir.AccelGraph]) -> None:
    for name in ("resnet20", "lenet_digits", "vit_tiny"):
        loaded = ir.load_model(name)
        out = loaded.model.eval()(loaded.example_input)
        (output,) = zoo_graphs[name].outputs()
        assert output.output_shape == tuple(out.shape)
        assert math.prod(output.output_shape) == out.numel()


def test_meta_and_real_tensors_give_the_same_graph(zoo_graphs: dict[str, ir.AccelGraph]) -> None:
    real = ir.graph_for("resnet18")
    assert real.nodes() == zoo_graphs["resnet18"].nodes()
    assert real.total_params == zoo_graphs["resnet18"].total_params


def test_names_follow_the_module_hierarchy(zoo_graphs: dict[str, ir.AccelGraph]) -> None:
    resnet = zoo_graphs["resnet18"]
    assert "layer1.0.conv1" in resnet and "layer1.0.add" in resnet  # the residual add
    assert resnet["layer1.0.conv1"].attrs["folded_batchnorm"] == "layer1.0.bn1"
    vit = zoo_graphs["vit_tiny"]
    assert vit["blocks.0.attn.matmul"].kind is ir.OpKind.MATMUL
    assert vit["blocks.3.attn.matmul_1"].kind is ir.OpKind.MATMUL


def test_macs_equal_pytorchs_flop_counter(zoo_graphs: dict[str, ir.AccelGraph]) -> None:
    """PyTorch's own counter (``torch.utils.flop_counter``: 2 FLOPs per multiply-accumulate of
    conv, mm, addmm, bmm, attention) agrees exactly with every zoo model's total MACs."""
    for name, graph in zoo_graphs.items():
        with torch.device("meta"):
            loaded = ir.load_model(name)
        with FlopCounterMode(display=False) as counter:
            loaded.model.eval()(loaded.example_input)
        assert counter.get_total_flops() == 2 * graph.total_macs, name

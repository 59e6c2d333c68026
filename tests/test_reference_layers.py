"""The integer reference executor against the fake-quant PyTorch model, layer by layer.

Random layers of every kind (mac at 8/4/2 bits, adder at 8/4 bits, xnor with STE and FDA) with odd
channel counts, stride 2, padding, dilation, groups and depthwise, with and without bias,
batch-norm and ReLU; plus average pooling and a residual add. The fake-quant model (eval mode)
and :func:`autochip.reference.run` must produce the same integers. One layer is also recomputed
here with plain loops from the exported parameters (an independent reading of the semantics).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from autochip.compress.convert import convert
from autochip.compress.export import export_integer, fixed_point
from autochip.compress.policy import LayerPolicy, Policy
from autochip.compress.train import calibrate
from autochip.errors import CompressionError
from autochip.reference import (
    ComputeOp,
    IntegerModel,
    RescaleOp,
    load_integer_model,
    quantize_input,
    run,
    save_integer_model,
)

STEM = LayerPolicy("mac", 8, 8)


class OneLayer(nn.Module):
    """stem (int8 1x1 conv + BN + ReLU or not) -> the layer under test -> [BN] -> [ReLU]."""

    def __init__(self, layer: nn.Module, cin: int, bn: bool, relu: bool, stem_relu: bool) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, cin, 1) if isinstance(layer, nn.Conv2d) else nn.Linear(3, cin)
        self.stem_bn = nn.BatchNorm2d(cin) if isinstance(layer, nn.Conv2d) else nn.BatchNorm1d(cin)
        self.stem_relu = stem_relu
        self.layer = layer
        k = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
        self.bn = (
            (nn.BatchNorm2d(k) if isinstance(layer, nn.Conv2d) else nn.BatchNorm1d(k))
            if bn
            else nn.Identity()
        )
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_bn(self.stem(x))
        if self.stem_relu:
            x = torch.relu(x)
        x = self.bn(self.layer(x))
        return torch.relu(x) if self.relu else x


def _randomise_bn(model: nn.Module, gen: torch.Generator) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            k = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(k, generator=gen) * 1.5 + 0.25)
                m.weight[0] = -m.weight[0]  # one negative scale: threshold flip, negative M
                m.bias.copy_(torch.randn(k, generator=gen) * 0.3)


def _compare(model: nn.Module, policy: Policy, x: torch.Tensor, seed: int) -> tuple[int, float]:
    gen = torch.Generator().manual_seed(seed)
    gm = convert(model, policy)
    _randomise_bn(gm, gen)
    calibrate(gm, x)
    gm.eval()
    with torch.no_grad():
        y = gm(x).numpy()
    im = export_integer(gm, x[:1])
    out, dump = run(im, quantize_input(im, x.numpy()), dump=True)
    fq = np.rint(y / im.output_scale).astype(np.int64)
    assert np.allclose(y / im.output_scale, fq, atol=1e-3)  # fake-quant output is on the grid
    assert any(k.endswith(".acc") for k in dump)
    return int(np.abs(out - fq).max()), float((out == fq).mean())


CONVS = [
    # cin, cout, k, stride, pad, dilation, groups, bias, bn, relu
    (3, 5, 3, 1, 1, 1, 1, True, False, True),
    (5, 7, 3, 2, 1, 1, 1, False, True, True),
    (6, 9, 3, 2, 0, 1, 3, True, True, False),
    (7, 7, 3, 1, 1, 1, 7, False, True, True),  # depthwise, odd channels
    (4, 5, 3, 1, 2, 2, 1, True, True, True),  # dilation 2
    (3, 11, 1, 1, 0, 1, 1, True, False, False),  # 1x1
    (5, 3, 5, 2, 2, 1, 1, False, True, False),  # 5x5 stride 2
]
KINDS = [
    LayerPolicy("mac", 8, 8),
    LayerPolicy("mac", 4, 4),
    LayerPolicy("mac", 2, 3),
    LayerPolicy("adder", 8, 8),
    LayerPolicy("adder", 4, 4),
    LayerPolicy("binary", 1, 1),
]


def _policy(lp: LayerPolicy, estimator: str = "ste") -> Policy:
    return Policy(default=lp, first=None, last=None, layers=(("stem", STEM),), estimator=estimator)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: f"{k.kind}{k.w_bits}{k.a_bits}")
@pytest.mark.parametrize("cfg", CONVS, ids=lambda c: "c{}-{}k{}s{}p{}d{}g{}".format(*c[:7]))
def test_conv_fake_quant_equals_integer(kind: LayerPolicy, cfg: tuple[int, ...]) -> None:
    cin, cout, k, stride, pad, dil, groups, bias, bn, relu = cfg
    torch.manual_seed(zlib.crc32(repr((cfg, kind)).encode()))
    layer = nn.Conv2d(cin, cout, k, stride, pad, dil, groups, bias=bool(bias))
    # a ReLU before an xnor layer is dropped by convert; before mac/adder it sets lo = 0
    model = OneLayer(layer, cin, bool(bn), bool(relu), stem_relu=kind.kind != "binary")
    x = torch.randn(6, 3, 9, 9)
    diff, equal = _compare(model, _policy(kind), x, seed=3)
    assert diff == 0, f"max difference {diff} LSB, {equal:.4f} equal"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: f"{k.kind}{k.w_bits}{k.a_bits}")
@pytest.mark.parametrize("bias_bn_relu", [(True, False, True), (False, True, False)])
def test_linear_fake_quant_equals_integer(
    kind: LayerPolicy, bias_bn_relu: tuple[bool, bool, bool]
) -> None:
    bias, bn, relu = bias_bn_relu
    torch.manual_seed(7)
    model = OneLayer(nn.Linear(13, 7, bias=bias), 13, bn, relu, stem_relu=True)
    diff, _ = _compare(model, _policy(kind), torch.randn(16, 3), seed=4)
    assert diff == 0


def test_binary_fda_layer_fake_quant_equals_integer() -> None:
    torch.manual_seed(8)
    model = OneLayer(nn.Conv2d(5, 6, 3, 2, 1), 5, True, True, stem_relu=False)
    diff, _ = _compare(model, _policy(LayerPolicy("binary"), "fda"), torch.randn(8, 3, 7, 7), 5)
    assert diff == 0


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn0 = nn.BatchNorm2d(6)
        self.conv1 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(24, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn0(self.conv0(x)))
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        x = torch.relu(x + y)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


@pytest.mark.parametrize("kind", ["mac", "adder"])
def test_residual_add_and_average_pool(kind: str) -> None:
    torch.manual_seed(9)
    policy = Policy(default=LayerPolicy(kind, 6, 6))
    diff, equal = _compare(Residual(), policy, torch.randn(8, 3, 8, 8), seed=6)
    assert diff <= 1 and equal >= 0.99, (diff, equal)


def test_global_mean_pool() -> None:
    class MeanNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 5, 3, padding=1)
            self.fc = nn.Linear(5, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

    torch.manual_seed(10)
    diff, equal = _compare(MeanNet(), Policy(), torch.randn(8, 3, 6, 6), seed=7)
    assert diff <= 1 and equal >= 0.99


def test_one_conv_recomputed_with_loops_from_exported_parameters() -> None:
    """An independent reading of the integer semantics from the exported numbers only."""
    torch.manual_seed(11)
    model = OneLayer(nn.Conv2d(4, 3, 3, 2, 1), 4, True, True, stem_relu=True)
    gm = convert(model, _policy(LayerPolicy("mac", 8, 8)))
    _randomise_bn(gm, torch.Generator().manual_seed(1))
    x = torch.randn(2, 3, 5, 5)
    calibrate(gm, x)
    im = export_integer(gm, x[:1])
    _, dump = run(im, quantize_input(im, x.numpy()), dump=True)
    op = next(o for o in im.ops if isinstance(o, ComputeOp) and o.name == "layer")
    assert op.requant is not None
    a = dump[op.input]
    n, c, h, w = a.shape
    out = np.zeros((n, 3, 3, 3), dtype=np.int64)
    for b in range(n):
        for k in range(3):
            m, s = int(op.requant.multiplier[k]), int(op.requant.shift[k])
            for p in range(3):
                for q in range(3):
                    acc = int(op.bias[k])
                    for ci in range(c):
                        for r in range(3):
                            for t in range(3):
                                i, j = p * 2 + r - 1, q * 2 + t - 1
                                if 0 <= i < h and 0 <= j < w:
                                    acc += int(a[b, ci, i, j]) * int(op.weight[k, ci, r, t])
                    v = (acc * m + (1 << (s - 1))) >> s  # Python ints: exact, floor shift
                    out[b, k, p, q] = min(max(v, op.requant.lo), op.requant.hi)
    assert op.requant.lo == 0  # fused ReLU
    assert np.array_equal(out, dump[op.output])


@pytest.mark.parametrize(
    ("a_max", "w_max", "channels", "regime"),
    [
        (127, 127, 8, "float32"),  # 127 * 127 * 72 < 2^24
        (128, 127, 1024, "float64"),  # 128 * 127 * 9216 > 2^24
        (2**26, 2**26, 4, "int64"),  # beyond 2^53 (below 2^63): int64 einsum
    ],
)
def test_window_product_is_exact_in_every_regime(
    a_max: int, w_max: int, channels: int, regime: str
) -> None:
    """The conv/linear sums (a float32 or float64 BLAS product where every partial sum is an
    integer the format holds, int64 beyond) equal Python-integer sums exactly, with the
    extreme values that would round first if the bound were wrong."""
    from autochip.reference import _F32_EXACT, _F64_EXACT, _dot, _windows

    g = np.random.default_rng(channels)
    x = g.integers(-a_max, a_max + 1, size=(3, channels, 5, 5), dtype=np.int64)
    w = g.integers(-w_max, w_max + 1, size=(4, channels, 3, 3), dtype=np.int64)
    x[0] = a_max  # one image and one filter at the extremes: the largest sums
    w[0] = w_max
    w[1] = -w_max
    x[1, :, ::2] = -a_max
    bound = a_max * w_max * channels * 9
    assert {"float32": bound < _F32_EXACT, "float64": _F32_EXACT <= bound < _F64_EXACT,
            "int64": bound >= _F64_EXACT}[regime]  # fmt: skip
    win = _windows(x, (3, 3), (1, 1), (1, 1))
    got = _dot(win, w, a_max)
    want = np.zeros((3, 4, 3, 3), dtype=object)
    xo, wo = x.astype(object), w.astype(object)
    for p in range(3):
        for q in range(3):
            want[:, :, p, q] = np.tensordot(
                xo[:, :, p : p + 3, q : q + 3], wo, ((1, 2, 3), (1, 2, 3))
            )
    assert got.dtype == np.int64
    assert (got.astype(object) == want).all()
    assert int(got[0, 0, 0, 0]) == a_max * w_max * channels * 9


def test_fixed_point_precision() -> None:
    ratios = np.array([0.3, 1.7e-4, 5.0])
    m, s = fixed_point(ratios)
    assert s >= 1
    assert np.allclose(m / 2.0**s, ratios, rtol=2e-6, atol=2.0**-s)
    with pytest.raises(CompressionError, match="requantisation ratio must be finite and non-zero"):
        fixed_point(np.array([0.0]))


def test_integer_model_npz_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(12)
    gm = convert(Residual(), Policy())
    x = torch.randn(8, 3, 8, 8)
    calibrate(gm, x)
    im = export_integer(gm, x[:1])
    path = tmp_path / "m.npz"
    save_integer_model(im, path)
    back = load_integer_model(path)
    assert isinstance(back, IntegerModel)
    assert [type(o) for o in back.ops] == [type(o) for o in im.ops]
    assert any(isinstance(o, RescaleOp) and len(o.inputs) == 2 for o in back.ops)
    xi = quantize_input(im, x.numpy())
    assert np.array_equal(run(im, xi)[0], run(back, xi)[0])


def test_reference_rejects_bad_input(tmp_path: Path) -> None:
    gm = convert(Residual(), Policy())
    im = export_integer(gm, torch.randn(1, 3, 8, 8))
    with pytest.raises(CompressionError, match=r"expected an integer input tensor"):
        run(im, np.zeros((1, 3, 8, 8), dtype=np.float32))
    with pytest.raises(CompressionError, match=r"expected input shape \(N, 3, 8, 8\), found"):
        run(im, np.zeros((1, 3, 9, 8), dtype=np.int64))
    bad = tmp_path / "x.npz"
    bad.write_text("not a zip")
    with pytest.raises(CompressionError, match="is not an autochip integer model"):
        load_integer_model(bad)
    with pytest.raises(CompressionError, match="found no file at"):
        load_integer_model(tmp_path / "missing.npz")


def test_export_names_unsupported_operators() -> None:
    class Sig(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(1, 2, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.c(x)).flatten(1)

    gm = convert(Sig(), Policy())
    with pytest.raises(
        CompressionError,
        match=r"node 'sigmoid' \(call_function sigmoid\) at test_reference_layers\.py:\d+: "
        r"'sigmoid' has no integer implementation",
    ):
        export_integer(gm, torch.randn(1, 1, 5, 5))
    fp = torch.fx.symbolic_trace(Sig())
    with pytest.raises(
        CompressionError, match=r"node 'c'.*a float layer; compress the model with convert"
    ):
        export_integer(fp, torch.randn(1, 1, 5, 5))


class OptionA(nn.Module):
    """A ResNet basic block with an option-A shortcut: subsample and zero-pad channels."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        s = torch.nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 1, 1))
        x = torch.relu(y + s)
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


def test_option_a_shortcut_subsample_and_channel_pad() -> None:
    torch.manual_seed(13)
    diff, equal = _compare(
        OptionA(), Policy(default=LayerPolicy("mac", 6, 6)), torch.randn(8, 3, 8, 8), 8
    )
    assert diff <= 1 and equal >= 0.99, (diff, equal)


@pytest.mark.parametrize("estimator", ["ste", "fda"])
def test_binary_bn_lenet5_folds_into_thresholds(estimator: str) -> None:
    """``Policy.binary_bn``: a batch-norm after each layer whose output is binarised (through
    ReLU, max pooling and flatten), folded into thresholds with flips: integer == fake-quant."""
    from autochip.compress.policy import policy_for_method
    from models.lenet5_fashion import build_model

    torch.manual_seed(10)
    model = build_model()
    policy = policy_for_method("binary", estimator=estimator)
    assert policy.binary_bn
    gm = convert(model, policy)
    bns = {
        n.args[0].target: n.target
        for n in gm.graph.nodes
        if n.op == "call_module"
        and isinstance(gm.get_submodule(str(n.target)), nn.BatchNorm2d | nn.BatchNorm1d)
    }
    # the binarised outputs: features.0 (int8) -> features.3 (xnor) -> classifier.1 (xnor)
    assert sorted(bns) == ["classifier.1", "features.0", "features.3"]
    plain = convert(model, policy_for_method("binary", estimator=estimator, binary_bn=False))
    assert not any(isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) for m in plain.modules())
    x = torch.rand(16, 1, 28, 28)
    diff, _ = _compare(model, policy, x, seed=11)
    assert diff == 0


class BinaryResidual(nn.Module):
    """Binary layers that read a residual sum (4-D: a depthwise 1x1 sign layer) and a pooled,
    flattened tensor (2-D: an identity linear sign layer); the stem's output feeds both the add
    (int8) and a binary layer (a threshold), so the stem is exported twice."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(6)
        self.conv1 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.down = nn.Conv2d(6, 8, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn0(self.stem(x)))
        x = torch.relu(x + self.bn1(self.conv1(x)))
        x = self.bn2(self.down(x))
        x = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.fc2(self.fc1(x))


def test_binarised_sum_and_pooled_tensor_are_stored_then_signed(tmp_path: Path) -> None:
    """``bit = x > 0`` of a stored integer tensor: convert puts an int quantiser before the
    binariser of a sum or a pooled tensor, the export a sign layer (MAC, weight 1, threshold
    ``acc >= 1``); integer == fake-quant, and the model saves and loads (op names)."""
    torch.manual_seed(14)
    policy = Policy(default=LayerPolicy("binary", 1, 1), first=STEM, last=STEM)
    gm = convert(BinaryResidual(), policy)
    chains = [
        (n.args[0].target, n.target)
        for n in gm.graph.nodes
        if n.op == "call_module" and str(n.target).startswith("bq_")
    ]
    # the add's and the pooled tensor's binarisers read int quantisers; the stem's does not
    assert sum(str(src).startswith("aq_") for src, _ in chains) == 2, chains
    x = torch.randn(16, 3, 8, 8)
    diff, equal = _compare(BinaryResidual(), policy, x, seed=15)
    assert diff <= 1 and equal >= 0.99, (diff, equal)
    gm = convert(BinaryResidual(), policy)
    calibrate(gm, x)
    im = export_integer(gm.eval(), x[:1])
    signs = [op for op in im.ops if isinstance(op, ComputeOp) and op.name.endswith(".sign")]
    assert [op.layer for op in signs] == ["conv", "linear"], [op.name for op in im.ops]
    for op in signs:
        assert op.kind == "mac" and op.threshold is not None and op.requant is None
        assert np.all(op.threshold.threshold == 1) and not np.any(op.threshold.flip)
        assert op.groups == (op.weight.shape[0] if op.layer == "conv" else 1)
    _, dump = run(im, quantize_input(im, x.numpy()), dump=True)
    for op in signs:
        src = dump[op.input]
        assert src.min() < 0 or op.layer == "conv"  # the pooled tensor is signed
        np.testing.assert_array_equal(dump[op.output], np.where(src > 0, 1, -1))
    assert any("+" in op.name for op in im.ops)  # the stem, exported twice
    path = tmp_path / "m.npz"
    save_integer_model(im, path)
    again = load_integer_model(path)
    np.testing.assert_array_equal(
        run(again, quantize_input(again, x.numpy()))[0], run(im, quantize_input(im, x.numpy()))[0]
    )

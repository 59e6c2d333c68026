"""Per-op counts of the tracer against counts taken independently of it.

The oracle runs the real forward pass: forward hooks on every ``nn.Conv2d`` / ``nn.Linear``
give per-layer MACs (out.numel() * C/groups * R * S, out.numel() * in_features) and parameter
counts, and a ``TorchFunctionMode`` sees every conv2d / linear / matmul call (including functional
ones and ``@``) to total the MACs. The networks below are written here, outside the zoo, and use
grouped, depthwise, dilated and asymmetric convs, residual adds, concat, ceil-mode pooling,
views, linear layers over 3-D tensors, layer-norm and matmuls of two activations.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

import autochip.ir as ir
from autochip.errors import UnsupportedOpError
from autochip.ir import OpKind
from autochip.ir.tracer import trace_exported


class MacCounter(TorchFunctionMode):
    """Totals MACs of conv2d / linear / matmul calls as they execute."""

    def __init__(self) -> None:
        super().__init__()
        self.macs = 0

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: Any = (), kwargs: Any = None
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        if func in (F.conv2d, torch.conv2d, F.conv1d, torch.conv1d):
            w = args[1] if len(args) > 1 else kwargs["weight"]
            self.macs += out.numel() * math.prod(w.shape[1:])
        elif func is F.linear:
            w = args[1] if len(args) > 1 else kwargs["weight"]
            self.macs += out.numel() * w.shape[1]
        elif getattr(func, "__name__", "") in ("matmul", "__matmul__", "bmm", "mm"):
            self.macs += out.numel() * args[0].shape[-1]
        return out


def oracle(
    model: nn.Module, x: torch.Tensor
) -> tuple[int, dict[str, tuple[int, int, tuple[int, ...]]]]:
    """(total MACs, {module name: (MACs, params, output shape)}) from a real forward."""
    per_layer: dict[str, tuple[int, int, tuple[int, ...]]] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d | nn.Conv1d | nn.Linear):

            def hook(mod: nn.Module, inp: Any, out: torch.Tensor, name: str = name) -> None:
                if isinstance(mod, nn.Conv2d | nn.Conv1d):
                    window = math.prod(mod.kernel_size)
                    macs = out.numel() * (mod.in_channels // mod.groups) * window
                else:
                    macs = out.numel() * mod.in_features
                params = sum(p.numel() for p in mod.parameters())
                per_layer[name] = (macs, params, tuple(out.shape))

            handles.append(m.register_forward_hook(hook))
    counter = MacCounter()
    model.eval()
    with torch.no_grad(), counter:
        model(x)
    for h in handles:
        h.remove()
    return counter.macs, per_layer


# -- networks written outside the project ------------------------------------------------------
class ConvZoo(nn.Module):
    """Grouped, depthwise, dilated, strided, asymmetric and 'same' convolutions, residual add,
    concat, SE-style channel scaling, ceil-mode max and avg pooling, non-divisible adaptive
    pooling, flatten and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 24, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(24)
        self.grouped = nn.Conv2d(24, 48, 3, padding=1, groups=4)
        self.dw = nn.Conv2d(48, 48, 5, padding=4, dilation=2, groups=48, bias=False)
        self.pw = nn.Conv2d(48, 24, 1)
        self.asym = nn.Conv2d(24, 16, (3, 1), padding=(1, 0))
        self.same = nn.Conv2d(24, 16, 3, padding="same", dilation=3)
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.avg = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.se = nn.Linear(32, 32)
        self.adapt = nn.AdaptiveAvgPool2d((3, 3))
        self.head = nn.Linear(32 * 9, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.stem(x)))
        y = self.pw(self.dw(F.relu6(self.grouped(x))))
        x = x + y
        x = torch.cat([self.asym(x), self.same(x)], dim=1)
        x = self.avg(self.pool(x))
        s = torch.sigmoid(self.se(x.mean((2, 3))))
        x = x * s.view(s.shape[0], -1, 1, 1)
        return self.head(self.adapt(x).reshape(x.size(0), -1))


class TokenNet(nn.Module):
    """Linear over 3-D tensors, layer-norm, two-activation matmuls, functional conv and
    x @ W with a parameter, chunk, permute/transpose, GELU, a learned token and position
    embedding."""

    def __init__(self, d: int = 32) -> None:
        super().__init__()
        self.embed = nn.Parameter(torch.randn(d, 3, 2, 2))
        self.token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, 17, d))
        self.norm = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.w_out = nn.Parameter(torch.randn(d, d))
        self.mlp = nn.Sequential(
            nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(0.1), nn.Linear(2 * d, d)
        )
        self.head = nn.Linear(d, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.embed, stride=2)  # (B, d, 4, 4)
        x = x.flatten(2).permute(0, 2, 1)
        x = torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        attn = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1)
        x = x + torch.matmul(attn, v) @ self.w_out
        x = x + self.mlp(x)
        return self.head(x[:, 0])


class BatchedMLP(nn.Module):
    """Linear layers over (B, T, C) inputs, batch-norm over features, PReLU, bmm."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(12, 20)
        self.act = nn.PReLU()
        self.fc2 = nn.Linear(20, 12, bias=False)
        self.bn = nn.BatchNorm1d(7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc2(self.act(self.fc1(x)))
        h = self.bn(h)
        return torch.bmm(h, h.transpose(1, 2)).view(x.shape[0], -1)


class KeywordSpotter(nn.Module):
    """1-D convolutions (strided, dilated depthwise, pointwise), batch-norm over channels,
    1-D max/avg/adaptive pooling with ceil mode."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(10, 32, 5, stride=2, padding=2)
        self.bn = nn.BatchNorm1d(32)
        self.dw = nn.Conv1d(32, 32, 3, padding=2, dilation=2, groups=32)
        self.pw = nn.Conv1d(32, 48, 1)
        self.pool = nn.MaxPool1d(3, 2, ceil_mode=True)
        self.avg = nn.AvgPool1d(2)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(48, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.c1(x)))
        x = self.avg(self.pool(self.pw(self.dw(x))))
        return self.fc(self.gap(F.max_pool1d(x, 1)).flatten(1))


class ShuffleConvNeXt(nn.Module):
    """ConvNeXt-style block (7x7 depthwise, channels-last layer-norm and linears on 4-D
    tensors, layer scale), channel shuffle by view/transpose and by module, roll, pixel
    shuffle, L2 normalisation, a head called twice (shared weights) and a tuple output."""

    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv2d(16, 16, 7, padding=3, groups=16)
        self.ln = nn.LayerNorm(16)
        self.pw1 = nn.Linear(16, 64)
        self.pw2 = nn.Linear(64, 16)
        self.gamma = nn.Parameter(torch.ones(16) * 1e-6)
        self.ps = nn.PixelShuffle(2)
        self.cs = nn.ChannelShuffle(2)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(F.gelu(self.pw1(self.ln(y))))
        x = x + (self.gamma * y).permute(0, 3, 1, 2)
        b, c, h, w = x.shape
        x = x.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, c, h, w)
        x = self.ps(self.cs(torch.roll(x, shifts=1, dims=2)))
        v = F.normalize(x.mean((2, 3)), dim=-1)
        return self.head(v).argmax(-1), self.head(v)


# -- a mix of published architectures' building blocks ------------------------------------------
class Inception(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.b1 = nn.Conv2d(c, 16, 1)
        self.b2 = nn.Sequential(nn.Conv2d(c, 8, 1), nn.ReLU(True), nn.Conv2d(8, 16, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(c, 4, 1), nn.ReLU(True), nn.Conv2d(4, 8, 5, padding=2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), nn.Conv2d(c, 8, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class Dense(nn.Module):
    def __init__(self, c, g=8, n=3):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.BatchNorm2d(c + i * g),
                nn.ReLU(),
                nn.Conv2d(c + i * g, g, 3, padding=1, bias=False),
            )
            for i in range(n)
        )

    def forward(self, x):
        feats = [x]
        for l in self.layers:
            feats.append(l(torch.cat(feats, 1)))
        return torch.cat(feats, 1)


class Shuffle(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c // 2
        self.branch = nn.Sequential(
            nn.Conv2d(h, h, 1, bias=False),
            nn.BatchNorm2d(h),
            nn.ReLU(True),
            nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False),
            nn.BatchNorm2d(h),
            nn.Conv2d(h, h, 1, bias=False),
            nn.BatchNorm2d(h),
            nn.ReLU(True),
        )

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        out = torch.cat((a, self.branch(b)), 1)
        n, c, h, w = out.size()
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class MBv3(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.exp = nn.Conv2d(c, 4 * c, 1, bias=False)
        self.bn = nn.BatchNorm2d(4 * c)
        self.dw = nn.Conv2d(4 * c, 4 * c, 5, 2, 2, groups=4 * c, bias=False)
        self.se1 = nn.Conv2d(4 * c, c, 1)
        self.se2 = nn.Conv2d(c, 4 * c, 1)
        self.proj = nn.Conv2d(4 * c, c, 1, bias=False)

    def forward(self, x):
        y = F.hardswish(self.bn(self.exp(x)))
        y = F.hardswish(self.dw(y))
        w = F.hardsigmoid(self.se2(F.relu(self.se1(F.adaptive_avg_pool2d(y, 1)))))
        return self.proj(y * w)


class UNetish(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(32, 32, 3, 2, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse = nn.Conv2d(64, 16, 3, padding=1)

    def forward(self, x):
        return self.fuse(torch.cat([x, self.up(self.down(x))], 1))


class Mixer(nn.Module):
    def __init__(self, t=16, c=32):
        super().__init__()
        self.n1 = nn.LayerNorm(c)
        self.tok = nn.Sequential(nn.Linear(t, 2 * t), nn.GELU(), nn.Linear(2 * t, t))
        self.n2 = nn.LayerNorm(c)
        self.ch = nn.Sequential(nn.Linear(c, 2 * c), nn.GELU(), nn.Linear(2 * c, c))

    def forward(self, x):
        x = x + self.tok(self.n1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.ch(self.n2(x))


class Zoo2(nn.Module):
    """Inception (4 branches, ceil-mode 3x3/1 pool), DenseNet concat growth, ShuffleNet-V2
    unit (chunk, channel shuffle), MobileNet-V3 block (hardswish, SE with hardsigmoid),
    nearest upsampling + skip concat, MLP-Mixer block (token mixing over transposed tensors)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.inc = Inception(32)
        self.dense = Dense(48)
        self.red = nn.Conv2d(72, 32, 1)
        self.shuf = Shuffle(32)
        self.mb = MBv3(32)
        self.unet = UNetish()
        self.pool = nn.AvgPool2d(2, ceil_mode=True)
        self.proj = nn.Conv2d(32, 32, 2, stride=2)
        self.mix = Mixer()
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = self.inc(x)
        x = self.red(self.dense(x))
        x = self.shuf(x)
        y = self.mb(x)  # 32 x 8 x 8
        x = self.unet(x)  # 16 ch, 16x16
        x = torch.cat([x, x], 1)  # 32
        x = self.proj(x) + y  # 32 x 8 x 8 -> 32x 8 x8
        t = self.pool(x).flatten(2).transpose(1, 2)  # (b, 16, 32)
        t = self.mix(t)
        return self.head(t.mean(1))


class CropPad(nn.Module):
    """Padding by negative amounts (PyTorch crops), mixed grow/crop, after dilated grouped convs,
    a depthwise residual and a ceil-mode pool; a linear over the cropped 3-D token tensor."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 12, 5, stride=2, padding=2)
        self.g = nn.Conv2d(12, 24, 3, padding=2, dilation=2, groups=4)
        self.dw = nn.Conv2d(24, 24, 3, padding=1, groups=24, bias=False)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.fc = nn.Linear(40, 17)

    def forward(self, x):
        z = self.g(torch.relu(self.c1(x)))
        z = self.pool(z + self.dw(z))
        z = F.pad(z, (-1, 2, 1, -2))  # crop and grow in one call
        t = F.pad(z.flatten(2), (0, 40 - z.shape[2] * z.shape[3]))  # negative: crop to 40
        return self.fc(t)


CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "croppad": (CropPad, (2, 3, 29, 31)),
    "zoo2": (Zoo2, (2, 3, 16, 16)),
    "shuffleconvnext": (ShuffleConvNeXt, (2, 16, 8, 8)),
    "keywordspotter": (KeywordSpotter, (2, 10, 49)),
    "convzoo": (ConvZoo, (2, 3, 33, 29)),
    "tokennet": (TokenNet, (2, 3, 8, 8)),
    "batchedmlp": (BatchedMLP, (3, 7, 12)),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[nn.Module, torch.Tensor, ir.AccelGraph]:
    torch.manual_seed(0)
    build, shape = CASES[request.param]
    model = build()
    x = torch.randn(*shape)
    return model, x, ir.trace(model, x, request.param)


def test_total_macs_match_the_executed_ops(case: Any) -> None:
    model, x, graph = case
    total, _ = oracle(model, x)
    assert graph.total_macs == total > 0


def test_per_layer_macs_params_and_shapes(case: Any) -> None:
    model, x, graph = case
    _, per_layer = oracle(model, x)
    assert per_layer
    for name, (macs, params, shape) in per_layer.items():
        node = graph[name]
        assert (node.macs, node.params, node.output_shape) == (macs, params, shape), name


def test_params_add_up_to_the_model(case: Any) -> None:
    model, _, graph = case
    total = sum(p.numel() for p in model.parameters())
    assert graph.total_params == total
    assert sum(n.params for n in graph) == total
    assert sum(n.params for n in ir.run_passes(graph)) == total


def test_output_shape_matches_pytorch(case: Any) -> None:
    model, x, graph = case
    with torch.no_grad():
        out = model.eval()(x)
    outs = out if isinstance(out, tuple) else (out,)
    assert [n.output_shape for n in graph.outputs()] == [tuple(o.shape) for o in outs]


def test_macs_equal_pytorchs_flop_counter(case: Any) -> None:
    """``torch.utils.flop_counter`` counts 2 FLOPs per MAC of conv/mm/bmm/addmm/attention."""
    model, x, graph = case
    with FlopCounterMode(display=False) as counter:
        model.eval()(x)
    assert counter.get_total_flops() == 2 * graph.total_macs


def test_export_path_agrees_with_fx(case: Any) -> None:
    model, x, graph = case
    exported = trace_exported(torch.export.export(model.eval(), (x,)), "exported")
    assert exported.total_macs == graph.total_macs
    assert exported.total_params == graph.total_params
    assert sum(n.params for n in exported) == graph.total_params


def test_convzoo_loop_dimensions() -> None:
    model = ConvZoo()
    graph = ir.trace(model, torch.randn(2, 3, 33, 29))
    grouped = graph["grouped"].dims
    assert grouped is not None and (grouped.groups, grouped.C, grouped.K) == (4, 24, 48)
    dw = graph["dw"]
    assert dw.dims is not None and dw.attrs["depthwise"] is True
    assert (dw.dims.groups, dw.dims.R, dw.dims.dil_h, dw.dims.pad_h) == (48, 5, 2, 4)
    asym = graph["asym"].dims
    assert asym is not None and (asym.R, asym.S, asym.pad_h, asym.pad_w) == (3, 1, 1, 0)
    stem = graph["stem"].dims
    assert stem is not None and (stem.N, stem.H, stem.W, stem.P, stem.Q, stem.stride_h) == (
        2,
        33,
        29,
        17,
        15,
        2,
    )
    pool = graph["pool"]
    assert pool.kind is OpKind.MAXPOOL and pool.attrs["ceil_mode"] is True
    # ceil mode: floor((17 - 3) / 2) + 1 = 8 without it, 8 with it; for 15: 7 -> 7 ... and the
    # avg pool after it pads 1: (8 + 2 - 3) / 2 ceil -> 5 (4 without ceil mode)
    assert graph["avg"].output_shape[2:] == (5, 4)
    adapt = graph["adapt"]
    assert adapt.attrs == {"ceil_mode": False, "adaptive": True, "regular": False}
    se_mul = next(n for n in graph if n.kind is OpKind.MUL)
    assert se_mul.input_shapes == ((2, 32, 5, 4), (2, 32, 1, 1))


def test_tokennet_kinds_and_dims() -> None:
    graph = ir.trace(TokenNet(), torch.randn(2, 3, 8, 8))
    matmuls = [n for n in graph if n.kind is OpKind.MATMUL]
    assert len(matmuls) == 2 and all(n.dims and n.dims.dynamic_weights for n in matmuls)
    qk = matmuls[0]
    assert qk.dims is not None and (qk.dims.N, qk.dims.K, qk.dims.C) == (2 * 17, 17, 32)
    qkv = graph["qkv"].dims
    assert qkv is not None and (qkv.N, qkv.K, qkv.C) == (2 * 17, 96, 32)
    w_out = next(n for n in graph if n.kind is OpKind.LINEAR and n.attrs.get("op") == "matmul")
    assert w_out.params == 32 * 32
    embed = next(n for n in graph if n.kind is OpKind.CONV2D)
    assert embed.params == 32 * 3 * 2 * 2
    cat = next(n for n in graph if n.kind is OpKind.CONCAT)
    assert cat.params == 32 and cat.attrs["const_shapes"] == [[2, 1, 32]]
    assert {n.kind for n in graph} >= {OpKind.LAYERNORM, OpKind.SOFTMAX, OpKind.RESHAPE}


def test_batch_dimension_scales_macs_linearly() -> None:
    model = ConvZoo()
    one = ir.trace(model, torch.randn(1, 3, 33, 29)).total_macs
    four = ir.trace(model, torch.randn(4, 3, 33, 29)).total_macs
    assert four == 4 * one


class Transformerish(nn.Module):
    """torch.nn attention modules (traced through, via torch.export) and a direct
    scaled_dot_product_attention call."""

    def __init__(self) -> None:
        super().__init__()
        self.att = nn.MultiheadAttention(32, 4, batch_first=True)
        self.enc = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.att(x, x, x)
        y = self.enc(y)
        q = y.view(2, 10, 4, 8).transpose(1, 2)
        return F.scaled_dot_product_attention(q, q, q)


def test_attention_modules_and_sdpa() -> None:
    """Hand count for batch 2, 10 tokens, width 32, 4 heads of 8: per attention block the
    in-projection 20*96*32, q@k^T and attn@v 2*4*10*10*8 each, the out-projection 20*32*32;
    the encoder adds its 32-64-32 MLP; the last SDPA is the two matmuls again."""
    model = Transformerish()
    graph = ir.run_passes(ir.trace(model, torch.randn(2, 10, 32)))
    attention = 20 * 96 * 32 + 2 * (2 * 4 * 10 * 10 * 8) + 20 * 32 * 32
    mlp = 20 * 64 * 32 + 20 * 32 * 64
    assert graph.total_macs == 2 * attention + mlp + 2 * (2 * 4 * 10 * 10 * 8)
    assert graph.total_params == sum(p.numel() for p in model.parameters())
    assert sum(n.params for n in graph) == graph.total_params
    sdpa = [n for n in graph if n.name.startswith("scaled_dot_product_attention")]
    assert [n.kind for n in sdpa] == [OpKind.MATMUL, OpKind.SOFTMAX, OpKind.MATMUL]
    assert sdpa[0].output_shape == (2, 4, 10, 10) and sdpa[0].attrs == {"transpose_b": True}


def test_direct_sdpa_in_fx_matches_explicit_attention() -> None:
    class Sdpa(nn.Module):
        def forward(self, q: torch.Tensor) -> torch.Tensor:
            return F.scaled_dot_product_attention(q, q[:, :, :6], q[:, :, :6])

    graph = ir.trace(Sdpa(), torch.randn(2, 3, 7, 5))
    assert graph.attrs["frontend"] == "fx"
    assert graph.total_macs == 2 * 3 * 7 * 6 * 5 * 2
    assert graph.outputs()[0].output_shape == (2, 3, 7, 5)


def test_norms_padding_and_resizing() -> None:
    class Img(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gn = nn.GroupNorm(4, 8)
            self.inorm = nn.InstanceNorm2d(8, affine=True)
            self.up = nn.Upsample(scale_factor=2)
            self.pad = nn.ZeroPad2d((1, 0, 2, 1))
            self.conv = nn.Conv2d(8, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.pad(self.up(self.inorm(self.gn(x))))
            return self.conv(F.interpolate(F.pad(x, (1, 1, 1, 1)), scale_factor=0.5))

    model = Img()
    x = torch.randn(2, 8, 4, 5)
    graph = ir.trace(model, x)
    total, per_layer = oracle(model, x)
    assert graph.total_macs == total == per_layer["conv"][0]
    assert graph["gn"].attrs == {"norm": "group", "groups": 4}
    assert graph["gn"].params == graph["inorm"].params == 16
    assert graph["pad"].output_shape == (2, 8, 11, 11)
    assert graph["up"].attrs == {"op": "upsample", "mode": "nearest"}


def test_bilinear_resize_is_refused() -> None:
    class Bilinear(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, scale_factor=2, mode="bilinear")

    with pytest.raises(
        UnsupportedOpError,
        match=r"unsupported operator 'torch.nn.functional.interpolate' at node 'interpolate' "
        r"\(.*\): 'bilinear' interpolation \(nearest-neighbour upsampling is mapped\)",
    ):
        ir.trace(Bilinear(), torch.randn(1, 2, 3, 3))


class HandWritten(nn.Module):
    """A layer-norm written out by hand, a causal mask, comparisons, max/min reductions,
    ``.values``, ``where``, ``zeros_like`` and clamp as ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(16))
        self.b = nn.Parameter(torch.zeros(16))
        self.fc = nn.Linear(16, 16)
        self.register_buffer("mask", torch.tril(torch.ones(5, 5)).bool())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        y = (x - mu) / torch.sqrt(var + 1e-5) * self.w + self.b
        a = (y @ y.transpose(-1, -2)).masked_fill(~self.mask, float("-inf")).softmax(-1)
        z = torch.clamp(self.fc(torch.zeros_like(y) + a @ y), min=0)
        m = z.max(dim=1).values + torch.max(z, z).amax(1) + z.std(1)
        return torch.where(m > 0, m, m.exp())


def test_hand_written_ops(tmp_path: Path) -> None:
    model = HandWritten()
    x = torch.randn(2, 5, 16)
    graph = ir.trace(model, x)
    total, _ = oracle(model, x)
    assert graph.total_macs == total == 2 * (2 * 5 * 5 * 16) + 2 * 5 * 16 * 16
    assert sum(n.params for n in graph) == graph.total_params == 16 + 16 + 272
    final = ir.run_passes(graph)
    assert final["fc"].attrs["activation"] == "relu"  # clamp(min=0)
    masked = next(n for n in final if n.attrs.get("op") == "masked_fill")
    assert masked.kind is OpKind.ADD and masked.attrs["const_shapes"] == [[5, 5]]
    assert masked.attrs["scalar"] == "-inf"  # kept as standard JSON
    assert ir.load_graph(ir.save_graph(final, tmp_path / "g.json")).nodes() == final.nodes()
    reductions = [n.attrs["op"] for n in final if n.kind is OpKind.MEAN]
    assert reductions == ["mean", "mean", "max", "amax", "std"]
    assert final.outputs()[0].output_shape == (2, 16)


def test_einsum_contractions() -> None:
    """Hand count, and the export path (where ATen decomposes einsum into bmm) agrees."""

    class Einsum(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(16, 8))

        def forward(self, q: torch.Tensor) -> torch.Tensor:
            k = torch.einsum("bhid,de->bhie", q, self.w)
            a = torch.einsum("bhid,bhjd->bhij", q, q).softmax(-1)
            return torch.einsum("bhij,bhje->bhie", a, k)

    model, x = Einsum(), torch.randn(2, 3, 5, 16)
    graph = ir.trace(model, x)
    expected = 2 * 3 * 5 * 8 * 16 + 2 * 3 * 5 * 5 * 16 + 2 * 3 * 5 * 8 * 5
    assert graph.total_macs == expected
    assert trace_exported(torch.export.export(model, (x,))).total_macs == expected
    assert [n.kind for n in graph if n.macs] == [OpKind.LINEAR, OpKind.MATMUL, OpKind.MATMUL]
    assert graph["einsum"].params == 16 * 8


def test_embedding_and_whole_splits() -> None:
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(100, 16)
            self.fc = nn.Linear(16, 4)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            x = self.emb(tokens)
            x = torch.cat(x.chunk(2, dim=-1), dim=1)  # the split used whole
            return self.fc(x.reshape(2, -1, 16))

    model, tokens = Tagger(), torch.randint(0, 100, (2, 7))
    graph = ir.run_passes(ir.trace(model, tokens))
    assert graph.total_macs == 2 * 7 * 16 * 4
    assert graph["emb"].params == 1600 and sum(n.params for n in graph) == 1600 + 68
    assert [n.name for n in graph if n.attrs.get("op") == "chunk"] == ["emb.chunk0", "emb.chunk1"]


def test_an_unmapped_argument_pattern_is_a_clean_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    from autochip.ir import _ops

    def broken(lo: object, call: object) -> None:
        raise ValueError("pattern never seen\nsecond line")

    monkeypatch.setitem(_ops._FUNCTIONS, "cat", broken)
    with pytest.raises(
        UnsupportedOpError,
        match=r"^unsupported operator 'torch.cat' at node 'cat' \(.*test_ir_ops.py:\d+: .*\): "
        r"this use of it is not mapped \(ValueError: pattern never seen\); autochip maps",
    ):
        ir.trace(TokenNet(), torch.randn(1, 3, 8, 8))


@pytest.mark.parametrize("name", ["resnet20", "vit_tiny"])
def test_core_aten_program_matches_fx(name: str, tmp_path: Path) -> None:
    """A ``.pt2`` saved after ``run_decompositions()`` (core ATen: convolution, addmm,
    _native_batch_norm_legit_no_training, native_layer_norm, _softmax ...) gives the same
    totals as tracing the module with fx."""
    loaded = ir.load_model(name)
    model = loaded.model.eval()
    program = torch.export.export(model, (loaded.example_input,))
    with warnings.catch_warnings():  # torch's own pytree deprecation inside run_decompositions
        warnings.simplefilter("ignore", FutureWarning)
        program = program.run_decompositions()
    path = tmp_path / f"{name}.pt2"
    torch.export.save(program, str(path))
    from_file = ir.graph_for(str(path))
    from_fx = ir.run_passes(ir.trace(model, loaded.example_input, name))
    assert (from_file.total_macs, from_file.total_params) == (
        from_fx.total_macs,
        from_fx.total_params,
    )
    assert sum(n.params for n in from_file) == from_fx.total_params


POOL_CONFIGS = [
    (size, kernel, stride, pad, dil, ceil)
    for size in (5, 6, 7)
    for kernel in (2, 3)
    for stride in (1, 2, 3)
    for pad in (0, 1)
    for dil in (1, 2)
    for ceil in (False, True)
    if pad <= kernel // 2
]


def test_pool_windows_agree_with_pytorch_output_sizes() -> None:
    """Every pooling configuration traces to a node whose window arithmetic (checked by
    ``validate``) reproduces PyTorch's output size, ceil mode included."""

    class Pools(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pools = nn.ModuleList(
                nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=c) for _, k, s, p, d, c in POOL_CONFIGS
            )

        def forward(self, xs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
            return tuple(
                pool(xs[cfg[0] - 5]) for pool, cfg in zip(self.pools, POOL_CONFIGS, strict=True)
            )

    model = Pools()
    # meta tensors: PyTorch's own shape functions, without 144 tiny kernels on a busy CPU
    xs = [torch.randn(1, 2, size, size + 1, device="meta") for size in (5, 6, 7)]
    graph = ir.validate(ir.trace(model, (xs,)))
    outs = model(xs)
    for i, (cfg, out) in enumerate(zip(POOL_CONFIGS, outs, strict=True)):
        node = graph[f"pools.{i}"]
        assert node.output_shape == tuple(out.shape), cfg
        assert node.ops == out.numel() * cfg[1] ** 2, cfg


CONV_CONFIGS = [
    (size, kernel, stride, pad, dil, groups)
    for size in (7, 8)
    for kernel in (1, 3, (3, 5))
    for stride in (1, 2, 3)
    for pad in (0, 1, "same")
    for dil in (1, 2)
    for groups in (1, 2, 4)
    if not (pad == "same" and stride > 1)
]


def test_conv_dims_agree_with_pytorch_over_configurations() -> None:
    """Every configuration: output shape as PyTorch computes it, MACs = out.numel() x
    C/groups x R x S from the module's own attributes, and ``validate`` accepts the dims."""

    class Convs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.convs = nn.ModuleList(
                nn.Conv2d(8, 4, k, s, p, dilation=d, groups=g) for _, k, s, p, d, g in CONV_CONFIGS
            )

        def forward(self, xs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
            return tuple(c(xs[cfg[0] - 7]) for c, cfg in zip(self.convs, CONV_CONFIGS, strict=True))

    with torch.device("meta"):  # shapes only: PyTorch's shape functions, no kernels
        model = Convs()
        xs = [torch.randn(2, 8, size, size + 2) for size in (7, 8)]
    graph = ir.validate(ir.trace(model, (xs,)))
    outs = model(xs)
    for i, (conv, out) in enumerate(zip(model.convs, outs, strict=True)):
        node = graph[f"convs.{i}"]
        window = conv.kernel_size[0] * conv.kernel_size[1]
        assert node.output_shape == tuple(out.shape), CONV_CONFIGS[i]
        assert node.macs == out.numel() * (8 // conv.groups) * window, CONV_CONFIGS[i]
        assert node.params == 4 * (8 // conv.groups) * window + 4

"""The ONNX front end against the PyTorch tracer.

Authority: the PyTorch trace of the same model. Zoo models are exported with the TorchScript
exporter (``torch.onnx.export(..., dynamo=False)``; batch-norm kept as a node) at small input
sizes, and the ONNX graph must have the same total MACs and parameters, and the same MACs per
named layer, as the PyTorch trace after the same passes. Parameters are randomised before export
so that the exporter cannot merge identical tensors (untrained batch-norms are all ones and
zeros). Unsupported operators are refused by op type and node name.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from torch import nn

from autochip.cli import main
from autochip.errors import AutochipError, ModelLoadError, TraceError, UnsupportedOpError
from autochip.ir import graph_for, load_model, run_passes, trace
from autochip.ir.node import OpKind


def _randomised(model: nn.Module) -> nn.Module:
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model.eval()


def _export(model: nn.Module, x: torch.Tensor, path: Path, **kwargs: object) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (x,), str(path), dynamo=False, **kwargs)  # type: ignore[arg-type]
    return path


def _small_vgg16() -> nn.Module:
    """VGG-16's 13 convolutions and 5 max-pools at 32x32, with a CIFAR-sized classifier (the
    ImageNet classifier's 7x7 adaptive pool does not export below 224x224)."""
    m = load_model("vgg16").model
    m.avgpool = nn.AdaptiveAvgPool2d(1)  # type: ignore[assignment]
    m.classifier = nn.Sequential(  # type: ignore[assignment]
        nn.Linear(512, 256), nn.ReLU(), nn.Dropout(), nn.Linear(256, 10)
    )
    return m


CASES = {  # model -> input height/width (None: the zoo's example input)
    "lenet_digits": None,
    "resnet20": None,
    "squeezenet1_1": 64,
    "mobilenet_v2": 32,
    "resnet18": 32,
    "vgg16": 32,
    "vit_tiny": None,
}


@pytest.mark.parametrize("name", list(CASES))
def test_onnx_export_costs_like_the_pytorch_trace(name: str, tmp_path: Path) -> None:
    loaded = load_model(name)
    model = _randomised(_small_vgg16() if name == "vgg16" else loaded.model)
    x = loaded.example_input
    if CASES[name]:
        x = torch.zeros(1, x.shape[1], CASES[name], CASES[name])
    want = run_passes(trace(model, x, name))
    got = graph_for(str(_export(model, x, tmp_path / f"{name}.onnx", do_constant_folding=False)))
    assert got.attrs["frontend"] == "onnx"
    assert got.total_macs == want.total_macs > 0
    assert got.total_params == want.total_params
    assert sum(n.params for n in got) == sum(n.params for n in want)
    if name != "vit_tiny":  # its attention is functional code: the exporter names it otherwise
        layers = {n.name: n.macs for n in want if n.macs}
        assert {n.name: n.macs for n in got if n.macs} == layers
    kinds = sorted(n.kind.value for n in want if n.is_compute)
    assert sorted(n.kind.value for n in got if n.is_compute) == kinds


def test_exporter_folded_batchnorm_keeps_the_macs(tmp_path: Path) -> None:
    """The exporter's default constant folding merges batch-norm into the convolution (whose
    new bias is then a parameter of the file): same MACs, no batch-norm node."""
    loaded = load_model("resnet20")
    model = _randomised(loaded.model)
    want = run_passes(trace(model, loaded.example_input, "resnet20"))
    got = graph_for(str(_export(model, loaded.example_input, tmp_path / "r20.onnx")))
    assert got.total_macs == want.total_macs
    assert not [n for n in got if n.kind is OpKind.BATCHNORM]
    convs = [n for n in got if n.kind is OpKind.CONV2D]
    assert len(convs) == 19 and all(n.params == n.dims.K * (n.dims.C * 9 + 1) for n in convs[1:2])


def _model(nodes: list[onnx.NodeProto], inits: list[TensorProto] | None = None) -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=inits or [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


def test_unsupported_operator_is_refused_by_type_and_node(tmp_path: Path) -> None:
    k = onnx.numpy_helper.from_array(__import__("numpy").array([2], dtype="int64"), "k")
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="act"),
        helper.make_node("TopK", ["r", "k"], ["y", "idx"], name="my_topk", axis=3),
    ]
    path = tmp_path / "topk.onnx"
    path.write_bytes(_model(nodes, [k]))
    with pytest.raises(
        UnsupportedOpError,
        match=r"unsupported operator 'ONNX TopK' at node 'my_topk' \(ONNX file 'topk.onnx'\): "
        r"sorting has no hardware mapping",
    ):
        graph_for(str(path))

    custom = tmp_path / "custom.onnx"
    custom.write_bytes(
        _model([helper.make_node("FusedThing", ["x"], ["y"], name="f0", domain="com.vendor")])
    )
    with pytest.raises(UnsupportedOpError, match=r"'ONNX FusedThing' at node 'f0'.*'com.vendor'"):
        graph_for(str(custom))


def test_recurrent_export_is_refused_by_name(tmp_path: Path) -> None:
    class Rnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lstm(x)[0]

    path = _export(Rnn().eval(), torch.zeros(4, 1, 8), tmp_path / "rnn.onnx")
    with pytest.raises(UnsupportedOpError, match=r"'ONNX LSTM' at node '/lstm/LSTM'.*recurrent"):
        graph_for(str(path))


def test_handler_refusal_names_the_onnx_node(tmp_path: Path) -> None:
    """A mapped operator used in a way the op table refuses (a transposed convolution) is
    reported with the ONNX op type and node name too; so is a non-nearest resize."""
    w = onnx.numpy_helper.from_array(__import__("numpy").ones((3, 2, 3, 3), "float32"), "w")
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="deconv", strides=[2, 2])
    path = tmp_path / "deconv.onnx"
    path.write_bytes(_model([node], [w]))
    with pytest.raises(
        UnsupportedOpError, match=r"'ONNX ConvTranspose' at node 'deconv'.*transposed convolution"
    ):
        graph_for(str(path))
    scales = onnx.numpy_helper.from_array(
        __import__("numpy").array([1, 1, 2, 2], dtype="float32"), "scales"
    )
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="linear")
    path = tmp_path / "resize.onnx"
    path.write_bytes(_model([node], [scales]))
    with pytest.raises(UnsupportedOpError, match=r"'ONNX Resize' at node 'up'.*'linear'"):
        graph_for(str(path))


def test_external_data_is_never_read(tmp_path: Path) -> None:
    """Weights in an external file are not opened: shapes are in the model (the file here is
    deleted before loading, and a path outside the folder cannot be used to read anything)."""
    model = _randomised(load_model("lenet_digits").model)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), buf, dynamo=False)
    proto = onnx.load_from_string(buf.getvalue())
    path = tmp_path / "ext.onnx"
    onnx.save_model(proto, str(path), save_as_external_data=True, location="ext.bin",
                    size_threshold=0)  # fmt: skip
    (tmp_path / "ext.bin").unlink()
    for t in proto.graph.initializer:
        t.ClearField("raw_data")
    graph = graph_for(str(path))
    assert graph.total_macs == run_passes(trace(model, torch.zeros(1, 1, 8, 8))).total_macs


def test_bad_onnx_files_give_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage that is not a protobuf \xff\xff\xff")
    with pytest.raises(ModelLoadError, match=r"junk.onnx': expected an ONNX model"):
        graph_for(str(junk))
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="expected an ONNX model with a graph"):
        graph_for(str(empty))
    spatial = tmp_path / "dyn.onnx"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    spatial.write_bytes(helper.make_model(g).SerializeToString())
    with pytest.raises(TraceError, match=r"fixed size in dimension 2.*found 'h'"):
        graph_for(str(spatial))
    assert main(["inspect", str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("autochip inspect: error: ") and err.count("\n") == 1


def test_crafted_shape_arithmetic_is_not_evaluated_into_a_memory_bomb(tmp_path: Path) -> None:
    """Folding shape arithmetic never builds a large tensor: a ConstantOfShape of 10^15
    elements and a Range to 10^12 stay unevaluated (the Reshape then fails validation)."""
    import numpy as np

    big = onnx.numpy_helper.from_array(np.array([10**5] * 3, dtype=np.int64), "big")
    one = helper.make_tensor("v", TensorProto.INT64, [1], [1])
    bomb = tmp_path / "bomb.onnx"
    bomb.write_bytes(
        _model(
            [
                helper.make_node("ConstantOfShape", ["big"], ["c"], value=one),
                helper.make_node("Shape", ["c"], ["s"]),
                helper.make_node("Reshape", ["x", "s"], ["y"]),
            ],
            [big],
        )
    )
    with pytest.raises(AutochipError, match="must keep 192 elements"):
        graph_for(str(bomb))
    ints = [onnx.numpy_helper.from_array(np.array(v, dtype=np.int64), k)
            for k, v in (("a", 0), ("b", 10**12), ("c", 1))]  # fmt: skip
    ranged = tmp_path / "range.onnx"
    ranged.write_bytes(
        _model(
            [
                helper.make_node("Range", ["a", "b", "c"], ["r"]),
                helper.make_node("Shape", ["r"], ["s"]),
                helper.make_node("Reshape", ["x", "s"], ["y"]),
            ],
            ints,
        )
    )
    with pytest.raises(AutochipError, match=r"\[1000000000000\]"):
        graph_for(str(ranged))


def test_corrupted_files_give_a_graph_or_one_error(tmp_path: Path) -> None:
    """200 byte-level corruptions of a valid export (seeded): each one loads or raises an
    AutochipError, never another exception (measured: 448 of 448 such files, 0 tracebacks)."""
    import random

    model = _randomised(load_model("lenet_digits").model)
    good = _export(model, torch.zeros(1, 1, 8, 8), tmp_path / "good.onnx").read_bytes()
    rng = random.Random(12)
    outcomes = {"graph": 0, "error": 0}
    for i in range(200):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / f"bad{i}.onnx"
        path.write_bytes(bytes(data))
        try:
            graph_for(str(path))
            outcomes["graph"] += 1
        except AutochipError:
            outcomes["error"] += 1
    assert outcomes["graph"] > 0 and outcomes["error"] > 0, outcomes


def test_tensorflow_style_same_padding(tmp_path: Path) -> None:
    """NHWC input transposed to NCHW, stride-2 convolutions and a max-pool with auto_pad SAME
    (asymmetric: the extra padding row is at the end): shapes from ONNX, MACs by hand count
    (out.numel() x C/groups x R x S)."""
    import numpy as np

    w = onnx.numpy_helper.from_array(np.ones((8, 3, 3, 3), "float32"), "w")
    dw = onnx.numpy_helper.from_array(np.ones((8, 1, 3, 3), "float32"), "dw")
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t", "w"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("Conv", ["c", "dw"], ["d"], group=8, auto_pad="SAME_LOWER"),
        helper.make_node("MaxPool", ["d"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                         auto_pad="SAME_UPPER"),
    ]  # fmt: skip
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "tf", [x], [y], initializer=[w, dw])
    path = tmp_path / "tf.onnx"
    path.write_bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    )
    g = graph_for(str(path))
    convs = [n for n in g if n.kind is OpKind.CONV2D]
    assert [n.output_shape for n in convs] == [(1, 8, 4, 4), (1, 8, 4, 4)]
    assert [n.macs for n in convs] == [8 * 16 * 3 * 9, 8 * 16 * 1 * 9]
    assert convs[1].attrs["depthwise"] is True
    (pool,) = [n for n in g if n.kind is OpKind.MAXPOOL]
    assert pool.output_shape == (1, 8, 2, 2) and pool.ops == 8 * 4 * 9


# -- building blocks of networks outside the zoo ---------------------------------------------
class _SqueezeExcite(nn.Module):  # EfficientNet / MobileNet-V3: SiLU, global pool, sigmoid gate
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 16, 3, padding=1)
        self.reduce, self.expand, self.act = nn.Conv2d(16, 4, 1), nn.Conv2d(4, 16, 1), nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv(x))
        gate = torch.sigmoid(self.expand(self.act(self.reduce(F.adaptive_avg_pool2d(y, 1)))))
        return y * gate


class _ChannelShuffle(nn.Module):  # ShuffleNet: chunk, concat, view-transpose-reshape
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        n, _, h, w = x.shape
        y = torch.cat([a, self.conv(b)], 1)
        return y.view(n, 2, 4, h, w).transpose(1, 2).reshape(n, 8, h, w)


class _ConvNeXtBlock(nn.Module):  # depthwise 7x7, channels-last LayerNorm and MLP, layer scale
    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv2d(8, 8, 7, padding=3, groups=8)
        self.norm, self.fc1, self.fc2 = nn.LayerNorm(8), nn.Linear(8, 32), nn.Linear(32, 8)
        self.scale = nn.Parameter(torch.ones(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc2(F.gelu(self.fc1(self.norm(self.dw(x).permute(0, 2, 3, 1)))))
        return x + (y * self.scale).permute(0, 3, 1, 2)


class _Activations(nn.Module):  # MobileNet-V3's hard activations, PReLU, LeakyReLU, ELU
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.acts = nn.Sequential(nn.Hardswish(), nn.Hardsigmoid(), nn.PReLU(8),
                                  nn.LeakyReLU(0.2), nn.ELU())  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.acts(self.conv(x))


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


class _UNetStep(nn.Module):  # stride-2 conv, nearest upsampling (module and F.interpolate), pools
    def __init__(self) -> None:
        super().__init__()
        self.down, self.up = nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.Upsample(scale_factor=2)
        self.merge = nn.Conv2d(16, 8, 3, padding=1)
        self.mp = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.ap = nn.AvgPool2d(3, 2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.down(x)
        y = self.merge(torch.cat([x, F.interpolate(d, scale_factor=2.0) + self.up(d)], 1))
        return self.mp(y) + self.ap(y)


class _Conv1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv1d(8, 16, 5, stride=2, padding=2), nn.BatchNorm1d(16)
        self.pool, self.drop, self.fc = nn.MaxPool1d(2), nn.Dropout(0.3), nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(torch.flatten(self.pool(F.relu(self.bn(self.conv(x)))), 1)))


class _Norms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.gn, self.inorm = nn.GroupNorm(2, 8), nn.InstanceNorm2d(8, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inorm(self.gn(self.conv(x))).mean(dim=(2, 3))


BLOCKS = {
    "squeeze_excite": (_SqueezeExcite, (1, 8, 8, 8)),
    "channel_shuffle": (_ChannelShuffle, (1, 8, 6, 6)),
    "convnext_block": (_ConvNeXtBlock, (1, 8, 8, 8)),
    "activations": (_Activations, (1, 8, 8, 8)),
    "attention": (_Attention, (1, 5, 16)),
    "unet_step": (_UNetStep, (1, 8, 8, 8)),
    "conv1d": (_Conv1d, (1, 8, 16)),
    "norms": (_Norms, (1, 8, 8, 8)),
}


@pytest.mark.parametrize("name", list(BLOCKS))
def test_onnx_building_blocks_cost_like_the_pytorch_trace(name: str, tmp_path: Path) -> None:
    cls, shape = BLOCKS[name]
    model = _randomised(cls())
    x = torch.zeros(shape)
    want = run_passes(trace(model, x, name))
    got = graph_for(str(_export(model, x, tmp_path / f"{name}.onnx", do_constant_folding=False)))
    assert got.total_macs == want.total_macs
    assert got.total_params == want.total_params == sum(n.params for n in got)
    kinds = sorted(n.kind.value for n in want if n.is_compute)
    assert sorted(n.kind.value for n in got if n.is_compute) == kinds

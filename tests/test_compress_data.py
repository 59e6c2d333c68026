"""Dataset loaders (on fixtures written here, no downloads), policies and conversion errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from autochip.compress.binary import BinaryAct, BinaryConv2d
from autochip.compress.convert import convert
from autochip.compress.data import load_cifar10, load_data, load_digits, load_image_folder
from autochip.compress.policy import LayerPolicy, Policy, parse_bits, policy_for_method
from autochip.compress.quant import QuantAct, QuantConv2d
from autochip.errors import CompressionError


def test_digits_split_is_fixed_and_stratified() -> None:
    a, b = load_digits(), load_digits()
    assert a.x_train.shape == (1437, 1, 8, 8) and a.x_test.shape == (360, 1, 8, 8)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)
    assert float(a.x_train.max()) == 1.0 and float(a.x_train.min()) == 0.0
    assert sorted(torch.bincount(a.y_test).tolist())[0] >= 35  # every class in the test split


def _cifar_batch(path: Path, n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    with path.open("wb") as f:
        pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, f)
    return data, labels


def test_cifar10_python_batches(tmp_path: Path) -> None:
    d1, l1 = _cifar_batch(tmp_path / "data_batch_1", 5, 1)
    _cifar_batch(tmp_path / "data_batch_2", 4, 2)
    _, lt = _cifar_batch(tmp_path / "test_batch", 3, 3)
    with (tmp_path / "batches.meta").open("wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)
    ds = load_cifar10(tmp_path)
    assert ds.x_train.shape == (9, 3, 32, 32) and ds.x_test.shape == (3, 3, 32, 32)
    assert ds.classes[3] == "c3"
    # channel-major layout of the python batches: the first 1024 values are the red plane
    assert ds.x_train[0, 0, 0, 1].item() == pytest.approx(d1[0, 1] / 255.0)
    assert ds.x_train[0, 1, 0, 0].item() == pytest.approx(d1[0, 1024] / 255.0)
    assert ds.y_train[:5].tolist() == l1 and ds.y_test.tolist() == lt
    assert load_data(str(tmp_path), (3, 32, 32)).name == "cifar10"
    with pytest.raises(CompressionError, match=r"samples have shape \(3, 32, 32\), but the model"):
        load_data(str(tmp_path), (1, 8, 8))


def test_cifar10_refuses_foreign_pickles(tmp_path: Path) -> None:
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(Path("x")))
    _cifar_batch(tmp_path / "test_batch", 2, 0)
    with pytest.raises(CompressionError, match="is not a python-pickle batch"):
        load_cifar10(tmp_path)


def _images(root: Path, classes: dict[str, int], size: int = 12) -> None:
    for i, (cls, n) in enumerate(classes.items()):
        (root / cls).mkdir(parents=True)
        for j in range(n):
            img = Image.new("RGB", (size, size), color=(40 * i, 10 * j, 200))
            img.save(root / cls / f"{j}.png")


def test_image_folder_with_train_and_val(tmp_path: Path) -> None:
    _images(tmp_path / "train", {"cat": 3, "dog": 2})
    _images(tmp_path / "val", {"cat": 1, "dog": 1})
    (tmp_path / "train" / "cat" / "notes.txt").write_text("ignored")
    ds = load_image_folder(tmp_path, (3, 8, 8))
    assert ds.classes == ("cat", "dog")
    assert ds.x_train.shape == (5, 3, 8, 8) and ds.x_test.shape == (2, 3, 8, 8)
    assert ds.y_train.tolist() == [0, 0, 0, 1, 1]
    assert ds.x_train[0, 2].mean().item() == pytest.approx(200 / 255, abs=1e-3)


def test_image_folder_split_and_grey(tmp_path: Path) -> None:
    _images(tmp_path, {"a": 5, "b": 5})
    ds = load_image_folder(tmp_path, (1, 6, 6))
    assert ds.x_train.shape == (8, 1, 6, 6) and ds.x_test.shape == (2, 1, 6, 6)


def test_data_errors(tmp_path: Path) -> None:
    with pytest.raises(CompressionError, match="expected 'digits' or a dataset folder"):
        load_data(str(tmp_path / "nope"), (1, 8, 8))
    with pytest.raises(CompressionError, match="expected class sub-folders"):
        load_data(str(tmp_path), (3, 8, 8))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_text("not an image")
    with pytest.raises(CompressionError, match=r"cannot read image '.*x\.png'"):
        load_data(str(tmp_path), (3, 8, 8))


def test_policy_validation_collects_every_problem() -> None:
    with pytest.raises(
        CompressionError, match=r"(?s)kind must be one of.*w_bits must be an integer"
    ):
        Policy(default=LayerPolicy("ternary"), first=LayerPolicy("mac", 9, 8))
    with pytest.raises(CompressionError, match="adder layers share one scale"):
        Policy(default=LayerPolicy("adder", 4, 8))
    with pytest.raises(CompressionError, match="estimator must be one of ste, fda"):
        Policy(estimator="magic")
    p = Policy(default=LayerPolicy("mac", 4, 4), layers=(("conv2", LayerPolicy("mac", 6, 8)),))
    assert Policy.from_dict(p.to_dict()) == p


def test_parse_bits() -> None:
    assert parse_bits("4/4") == (4, 4) and parse_bits("6") == (6, 6) and parse_bits("2/8") == (2, 8)
    for bad in ("9/9", "1/4", "a/b", "4/4/4", ""):
        with pytest.raises(CompressionError, match=r"--bits: expected W/A with integers 2\.\.8"):
            parse_bits(bad)
    with pytest.raises(CompressionError, match="W must equal A"):
        policy_for_method("adder", (4, 8))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        return self.fc(torch.flatten(x, 1))


def test_convert_mixed_precision_and_first_last_int8() -> None:
    policy = Policy(default=LayerPolicy("binary"), layers=(("c1", LayerPolicy("mac", 5, 6)),))
    gm = convert(_Net(), policy)
    c1, c2, fc = gm.get_submodule("c1"), gm.get_submodule("c2"), gm.get_submodule("fc")
    assert isinstance(c1, QuantConv2d) and c1.autochip_arithmetic.label == "w5a6"
    assert isinstance(c2, BinaryConv2d) and c2.autochip_arithmetic.kind == "xnor"
    assert fc.autochip_arithmetic.label == "int8"  # last layer stays int8
    kinds = [type(m).__name__ for m in gm.modules() if isinstance(m, QuantAct | BinaryAct)]
    assert kinds == ["QuantAct", "BinaryAct", "QuantAct", "QuantAct"]
    # the ReLU before the binariser is gone; the one before the int8 fc stays
    assert sum(1 for n in gm.graph.nodes if n.target is torch.relu) == 1
    out = gm(torch.randn(2, 1, 4, 4))
    assert out.shape == (2, 3)


def test_convert_errors() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(3, 1, 3, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.conv2d(x, self.w)

    with pytest.raises(CompressionError, match="calls conv2d directly"):
        convert(Functional(), Policy())

    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(2, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.c(self.c(x))

    with pytest.raises(CompressionError, match="layer\\(s\\) c are called more than once"):
        convert(Shared(), Policy())
    with pytest.raises(CompressionError, match="policy names layer\\(s\\) nope"):
        convert(_Net(), Policy(layers=(("nope", LayerPolicy()),)))

    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(2, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.c(x) if x.sum() > 0 else x

    with pytest.raises(CompressionError, match=r"could not be traced with torch\.fx"):
        convert(Branchy(), Policy())


def test_static_steps_keep_calibrated_scales() -> None:
    from autochip.compress.data import Dataset
    from autochip.compress.train import TrainConfig, calibrate, train

    torch.manual_seed(0)
    gm = convert(
        nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)),
        Policy(steps="static"),
    )
    x, y = torch.randn(32, 1, 4, 4), torch.randint(0, 3, (32,))
    calibrate(gm, x)
    steps = {n: p.detach().clone() for n, p in gm.named_parameters() if n.endswith("scale")}
    w0 = gm.get_submodule("1").weight.detach().clone()
    train(gm, Dataset("t", x, y, x, y, ("a", "b", "c")), TrainConfig(epochs=2), progress=False)
    assert steps and all(torch.equal(p, steps[n]) for n, p in gm.named_parameters() if n in steps)
    assert not torch.equal(gm.get_submodule("1").weight, w0)

"""Fashion-MNIST: the Debian idx files read (small slices), idx validation, errors, zoo models."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from autochip.compress.data import (
    FASHION_MNIST_DIR,
    IDX_MAX_BYTES,
    load_data,
    load_fashion_mnist,
    read_idx,
)
from autochip.errors import CompressionError
from autochip.ir import load_model


def _idx(path: Path, a: np.ndarray, zipped: bool = True) -> None:
    head = bytes([0, 0, 8, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    data = head + a.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if zipped else data)


def test_reads_the_debian_files_in_slices() -> None:
    ds = load_fashion_mnist(limit=50)
    assert ds.x_train.shape == (50, 1, 28, 28) and ds.x_test.shape == (50, 1, 28, 28)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    # the first training labels of Fashion-MNIST (as published: 9 0 0 3 0 2 7 2 5 5)
    assert ds.y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
    raw = read_idx(FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz", 3, max_items=2)
    assert torch.equal(ds.x_test[:2, 0], torch.from_numpy(raw.astype(np.float32) / 255.0))
    labels = read_idx(FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz", 1)
    assert labels.shape == (10000,) and np.bincount(labels).tolist() == [1000] * 10


def test_folder_spec_plain_and_gzipped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    xs = rng.integers(0, 256, (7, 28, 28))
    ys = rng.integers(0, 10, 7)
    _idx(tmp_path / "train-images-idx3-ubyte", xs, zipped=False)
    _idx(tmp_path / "train-labels-idx1-ubyte.gz", ys)
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", xs[:3])
    _idx(tmp_path / "t10k-labels-idx1-ubyte", ys[:3], zipped=False)
    for spec in (f"fashion-mnist:{tmp_path}", str(tmp_path)):
        ds = load_data(spec, (1, 28, 28))
        assert ds.name == "fashion-mnist" and ds.x_train.shape == (7, 1, 28, 28)
        assert ds.x_train[2, 0, 5, 6].item() == pytest.approx(xs[2, 5, 6] / 255.0)
        assert ds.y_test.tolist() == ys[:3].tolist()
    with pytest.raises(CompressionError, match=r"samples have shape \(1, 28, 28\)"):
        load_data(f"fashion-mnist:{tmp_path}", (1, 8, 8))


def test_missing_files_name_the_package(tmp_path: Path) -> None:
    with pytest.raises(CompressionError, match="apt-get install dataset-fashion-mnist"):
        load_data(f"fashion-mnist:{tmp_path / 'nowhere'}", (1, 28, 28))
    _idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((2, 28, 28)))
    with pytest.raises(CompressionError, match=r"t10k-labels-idx1-ubyte\[\.gz\]"):
        load_fashion_mnist(tmp_path)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "found an empty file"),
        (bytes([0, 0, 9, 3]) + bytes(12), "expected magic 00 00 08 03"),
        (bytes([0, 0, 8, 1]) + bytes(4), "expected magic 00 00 08 03"),
        (bytes([0, 0, 8, 3, 0, 0]), "header ends before"),
        (bytes([0, 0, 8, 3]) + (0).to_bytes(4, "big") + bytes(8), "sizes >= 1"),
        (bytes([0, 0, 8, 3]) + b"\xff\xff\xff\xff" * 3, "over the limit"),
        (bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (2, 28, 28)), "fewer"),
        (
            bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (1, 2, 2)) + bytes(5),
            "more",
        ),
    ],
)
def test_idx_validated_before_allocation(tmp_path: Path, payload: bytes, message: str) -> None:
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(payload))
    with pytest.raises(CompressionError, match=message):
        read_idx(p, 3)
    assert IDX_MAX_BYTES < 2**32


def test_truncated_gzip_is_one_error(tmp_path: Path) -> None:
    p = tmp_path / "x.gz"
    _idx(p, np.zeros((5, 28, 28)))
    p.write_bytes(p.read_bytes()[:40])
    with pytest.raises(CompressionError, match="idx file"):
        read_idx(p, 3)


@pytest.mark.parametrize(
    ("name", "macs"), [("lenet5_fashion", 416_520), ("resnet8_fashion", 9_345_920)]
)
def test_zoo_models_take_28x28(name: str, macs: int) -> None:
    from autochip.ir import trace

    loaded = load_model(name)
    assert tuple(loaded.example_input.shape) == (1, 1, 28, 28)
    out = loaded.model.eval()(loaded.example_input)
    assert tuple(out.shape) == (1, 10)
    g = trace(loaded.model, loaded.example_input)
    assert g.total_macs == macs

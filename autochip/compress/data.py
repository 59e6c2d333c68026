"""Datasets for compression training, all read from disk (never downloaded).

* ``digits``: scikit-learn's 8x8 handwritten digits (1,797 images, ships inside scikit-learn),
  pixels scaled from 0..16 to 0..1, a fixed stratified 80/20 train/test split (seed 0).
* CIFAR-10: a directory with the python-pickle batches ``data_batch_1`` .. ``data_batch_5`` and
  ``test_batch`` (the ``cifar-10-batches-py`` folder), pixels scaled to 0..1.
* Fashion-MNIST: the four idx files (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
  ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``, gzipped or not) in
  ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package) or a folder
  the user names: 60,000 training and 10,000 test images [N, 1, 28, 28], pixels scaled to 0..1,
  the official split.
* ImageNet-style folders: ``ROOT/train/<class>/*.png|jpg`` and ``ROOT/val/<class>/...`` (or only
  ``ROOT/<class>/...``, then split 80/20 with seed 0), resized to the model's input size.
"""

from __future__ import annotations

import gzip
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from autochip.errors import CompressionError

__all__ = [
    "FASHION_MNIST_DIR",
    "Dataset",
    "load_cifar10",
    "load_data",
    "load_digits",
    "load_fashion_mnist",
    "load_image_folder",
    "read_idx",
]

SPLIT_SEED = 0
TEST_FRACTION = 0.2
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_INSTALL = "apt-get install dataset-fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IDX_MAX_BYTES = 1 << 28  # 256 MiB of payload: far above Fashion-MNIST's 47 MB, far below harm
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class Dataset:
    """Train and test tensors: images [N, C, H, W] float32 in 0..1, labels [N] int64."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    classes: tuple[str, ...]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _split(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    parts: list[np.ndarray] = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    return tuple(parts)


def _dataset(name: str, parts: tuple[np.ndarray, ...], classes: tuple[str, ...]) -> Dataset:
    xtr, xte, ytr, yte = parts
    return Dataset(
        name,
        torch.from_numpy(np.ascontiguousarray(xtr, dtype=np.float32)),
        torch.from_numpy(np.asarray(ytr, dtype=np.int64)),
        torch.from_numpy(np.ascontiguousarray(xte, dtype=np.float32)),
        torch.from_numpy(np.asarray(yte, dtype=np.int64)),
        classes,
    )


def load_digits() -> Dataset:
    """scikit-learn's digits, [N, 1, 8, 8] in 0..1, fixed stratified split."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    return _dataset("digits", _split(x, d.target), tuple(str(c) for c in range(10)))


class _CifarUnpickler(pickle.Unpickler):
    """Only what the CIFAR-10 python batches contain: builtins and numpy arrays."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as f:
            d = _CifarUnpickler(f, encoding="bytes").load()
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, EOFError, TypeError, ValueError) as exc:
        raise CompressionError(
            f"CIFAR-10: '{path}' is not a python-pickle batch with 'data' and 'labels' ({exc})"
        ) from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise CompressionError(
            f"CIFAR-10: '{path}': expected data [N, 3072] and N labels, found data "
            f"{list(data.shape)} and {len(labels)} labels"
        )
    return data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0, labels


def load_cifar10(root: str | Path) -> Dataset:
    """The CIFAR-10 python batches in ``root`` (``data_batch_*`` for training, ``test_batch``)."""
    r = Path(root)
    train_files = sorted(r.glob("data_batch_*"))
    test = r / "test_batch"
    if not train_files or not test.is_file():
        raise CompressionError(
            f"CIFAR-10: expected data_batch_1..5 and test_batch in '{r}', found "
            f"{sorted(p.name for p in r.iterdir()) if r.is_dir() else 'no directory'}"
        )
    xs, ys = zip(*(_cifar_batch(p) for p in train_files), strict=True)
    xte, yte = _cifar_batch(test)
    names = [str(i) for i in range(10)]
    meta = r / "batches.meta"
    if meta.is_file():
        try:
            with meta.open("rb") as f:
                m = _CifarUnpickler(f, encoding="bytes").load()
            names = [n.decode() for n in m[b"label_names"]]
        except (OSError, pickle.UnpicklingError, KeyError, EOFError, AttributeError):
            pass
    parts = (np.concatenate(xs), xte, np.concatenate(ys), yte)
    return _dataset("cifar10", parts, tuple(names))


def read_idx(path: str | Path, ndim: int, max_items: int | None = None) -> np.ndarray:
    """An unsigned-byte idx array (LeCun's MNIST format), gzipped or not, validated before reading.

    The header (magic ``00 00 08 ndim``, then ``ndim`` big-endian 32-bit sizes) is checked first:
    type 0x08 (unsigned byte), the expected number of dimensions, sizes >= 1 and a payload of at
    most :data:`IDX_MAX_BYTES`; only then is the payload read, and it must have exactly that size.
    ``max_items`` reads only the first items (a slice along the first dimension).
    """
    p = Path(path)
    try:
        with p.open("rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
        with gzip.open(p, "rb") if gz else p.open("rb") as f:
            head = f.read(4)
            if len(head) != 4 or head[:3] != b"\x00\x00\x08" or head[3] != ndim:
                raise CompressionError(
                    f"idx file '{p}': expected magic 00 00 08 {ndim:02x} (unsigned bytes, {ndim} "
                    f"dimensions), found {head.hex(' ') or 'an empty file'}"
                )
            dims_raw = f.read(4 * ndim)
            if len(dims_raw) != 4 * ndim:
                raise CompressionError(f"idx file '{p}': the header ends before its {ndim} sizes")
            dims = [int.from_bytes(dims_raw[4 * i : 4 * i + 4], "big") for i in range(ndim)]
            if min(dims) < 1:
                raise CompressionError(f"idx file '{p}': expected sizes >= 1, found {dims}")
            per_item = math.prod(dims[1:])
            total = dims[0] * per_item
            if total > IDX_MAX_BYTES:
                raise CompressionError(
                    f"idx file '{p}': sizes {dims} mean {total} bytes, over the limit of "
                    f"{IDX_MAX_BYTES} (IDX_MAX_BYTES)"
                )
            n = dims[0] if max_items is None else min(dims[0], max_items)
            payload = f.read(n * per_item)
            if len(payload) != n * per_item or (n == dims[0] and f.read(1)):
                raise CompressionError(
                    f"idx file '{p}': header sizes {dims} promise {total} bytes of data, the "
                    "file holds " + ("fewer" if len(payload) != n * per_item else "more")
                )
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise CompressionError(f"idx file '{p}': cannot read it ({exc})") from None
    return np.frombuffer(payload, dtype=np.uint8).reshape([n, *dims[1:]])


def _idx_file(root: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    return None


def load_fashion_mnist(root: str | Path | None = None, limit: int | None = None) -> Dataset:
    """Fashion-MNIST's idx files in ``root`` (default :data:`FASHION_MNIST_DIR`).

    ``limit`` reads only the first ``limit`` images of each split (for quick tests).
    """
    r = FASHION_MNIST_DIR if root is None else Path(root)
    files = {k: _idx_file(r, stem) for k, stem in _FASHION_FILES.items()}
    missing = [_FASHION_FILES[k] + "[.gz]" for k, f in files.items() if f is None]
    if missing:
        hint = (
            f"; install Debian's package: {FASHION_MNIST_INSTALL}"
            if root is None
            else f", or install Debian's package ({FASHION_MNIST_INSTALL}) and use "
            "--data fashion-mnist"
        )
        raise CompressionError(
            f"Fashion-MNIST: expected the idx files {', '.join(missing)} in '{r}', found "
            f"{'no directory' if not r.is_dir() else 'them missing'}{hint}"
        )
    x: dict[str, np.ndarray] = {}
    for k, f in files.items():
        assert f is not None
        x[k] = read_idx(f, 3 if k.startswith("x") else 1, limit)
    for split in ("train", "test"):
        xs, ys = x["x_" + split], x["y_" + split]
        if xs.shape[1:] != (28, 28) or len(xs) != len(ys):
            raise CompressionError(
                f"Fashion-MNIST in '{r}': expected {split} images [N, 28, 28] and N labels, found "
                f"images {list(xs.shape)} and {len(ys)} labels"
            )
        if int(ys.max()) >= len(FASHION_MNIST_CLASSES):
            raise CompressionError(
                f"Fashion-MNIST in '{r}': expected {split} labels 0..9, found {int(ys.max())}"
            )
    parts = tuple(
        (x[k].astype(np.float32)[:, None] / 255.0) if k.startswith("x") else x[k]
        for k in ("x_train", "x_test", "y_train", "y_test")
    )
    return _dataset("fashion-mnist", parts, FASHION_MNIST_CLASSES)


def _read_images(
    folder: Path, classes: list[str], size: tuple[int, int], channels: int
) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    xs: list[np.ndarray] = []
    ys: list[int] = []
    mode = "L" if channels == 1 else "RGB"
    for label, cls in enumerate(classes):
        d = folder / cls
        files = (
            sorted(p for p in d.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
            if (d.is_dir())
            else []
        )
        for f in files:
            try:
                with Image.open(f) as im:
                    img = im.convert(mode).resize((size[1], size[0]), Image.Resampling.BILINEAR)
            except (OSError, UnidentifiedImageError) as exc:
                raise CompressionError(f"image folder: cannot read image '{f}': {exc}") from None
            a = np.asarray(img, dtype=np.float32) / 255.0
            xs.append(a[None] if channels == 1 else a.transpose(2, 0, 1))
            ys.append(label)
    if not xs:
        raise CompressionError(f"image folder: found no images under '{folder}'")
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def load_image_folder(root: str | Path, sample_shape: tuple[int, int, int]) -> Dataset:
    """Class folders of images, resized to ``sample_shape`` = (C, H, W)."""
    r = Path(root)
    c, h, w = sample_shape
    if c not in (1, 3):
        raise CompressionError(f"image folder: the model must take 1 or 3 channels, found {c}")
    train, val = r / "train", r / "val"
    base = train if train.is_dir() else r
    classes = sorted(p.name for p in base.iterdir() if p.is_dir())
    if not classes:
        raise CompressionError(
            f"image folder: expected class sub-folders in '{base}' (ROOT/train/<class>/*.png or "
            "ROOT/<class>/*.png), found none"
        )
    parts: tuple[np.ndarray, ...]
    if train.is_dir() and val.is_dir():
        xtr, ytr = _read_images(train, classes, (h, w), c)
        xte, yte = _read_images(val, classes, (h, w), c)
        parts = (xtr, xte, ytr, yte)
    else:
        x, y = _read_images(base, classes, (h, w), c)
        parts = _split(x, y)
    return _dataset(r.name, parts, tuple(classes))


def load_data(spec: str, sample_shape: tuple[int, ...]) -> Dataset:
    """``digits``, ``fashion-mnist[:DIR]``, or a folder (CIFAR-10 batches, Fashion-MNIST idx
    files or image classes), for a model input shape."""
    if spec == "digits":
        data = load_digits()
    elif spec == "fashion-mnist" or spec.startswith("fashion-mnist:"):
        _, _, folder = spec.partition(":")
        data = load_fashion_mnist(folder or None)
    elif Path(spec).is_dir() and _idx_file(Path(spec), _FASHION_FILES["x_train"]) is not None:
        data = load_fashion_mnist(spec)
    else:
        p = Path(spec)
        if not p.is_dir():
            raise CompressionError(
                f"--data: expected 'digits' or a dataset folder (CIFAR-10 python batches, "
                f"Fashion-MNIST idx files or class folders of images) or 'fashion-mnist[:DIR]', "
                f"found no directory at '{spec}'"
            )
        if any(p.glob("data_batch_*")) or (p / "test_batch").exists():
            data = load_cifar10(p)
        else:
            if len(sample_shape) != 3:
                raise CompressionError(
                    f"--data: image folders need a model with (C, H, W) input, found {sample_shape}"
                )
            data = load_image_folder(p, (sample_shape[0], sample_shape[1], sample_shape[2]))
    if data.sample_shape != tuple(sample_shape):
        raise CompressionError(
            f"--data {spec}: samples have shape {data.sample_shape}, but the model expects "
            f"{tuple(sample_shape)}"
        )
    return data

"""Datasets for compression training, all read from disk (never downloaded).

* ``digits``: scikit-learn's 8x8 handwritten digits (1,797 images, ships inside scikit-learn),
  pixels scaled from 0..16 to 0..1, a fixed stratified 80/20 train/test split (seed 0).
* CIFAR-10: a directory with the python-pickle batches ``data_batch_1`` .. ``data_batch_5`` and
  ``test_batch`` (the ``cifar-10-batches-py`` folder), pixels scaled to 0..1.
* ImageNet-style folders: ``ROOT/train/<class>/*.png|jpg`` and ``ROOT/val/<class>/...`` (or only
  ``ROOT/<class>/...``, then split 80/20 with seed 0), resized to the model's input size.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from autochip.errors import CompressionError

__all__ = ["Dataset", "load_cifar10", "load_data", "load_digits", "load_image_folder"]

SPLIT_SEED = 0
TEST_FRACTION = 0.2
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
    """``digits``, a CIFAR-10 batches folder, or an image-class folder, for a model input shape."""
    if spec == "digits":
        data = load_digits()
    else:
        p = Path(spec)
        if not p.is_dir():
            raise CompressionError(
                f"--data: expected 'digits' or a dataset folder (CIFAR-10 python batches or "
                f"class folders of images), found no directory at '{spec}'"
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

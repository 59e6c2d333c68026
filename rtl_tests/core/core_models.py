"""Integer models for the core's tests, made fast and deterministically.

``integer_model(spec, method)`` trains the float model briefly on the digits set (so the
activations are realistic, not random), converts it with ``autochip.compress``'s policy for
``method`` (first and last layers int8), calibrates and exports it: the same path as
``autochip compress``, with fewer epochs. Bit-exactness does not depend on accuracy.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import torch

from autochip.compress.convert import convert
from autochip.compress.data import load_digits
from autochip.compress.export import export_integer
from autochip.compress.policy import policy_for_method
from autochip.compress.train import TrainConfig, calibrate, seed_everything, train
from autochip.ir import load_model
from autochip.reference import (
    ComputeOp,
    FlattenOp,
    IntegerModel,
    MaxPoolOp,
    PadOp,
    Requant,
    RescaleOp,
    SubsampleOp,
    SumPoolOp,
    quantize_input,
)

__all__ = [
    "digits_inputs",
    "integer_model",
    "narrow_model",
    "prefetch_model",
    "random_inputs",
    "random_model",
    "resident_model",
    "short_tile_model",
    "vector_model",
]


@cache
def integer_model(spec: str, method: str, epochs: int = 2) -> IntegerModel:
    seed_everything(0)
    torch.set_num_threads(1)
    loaded = load_model(spec)
    data = load_digits()
    model = loaded.model
    train(model, data, TrainConfig(epochs=epochs, lr=3e-3), progress=False)
    seed_everything(0)
    student = convert(model.eval(), policy_for_method(method))
    calibrate(student, data.x_train[:256])
    train(student, data, TrainConfig(epochs=1, lr=1e-3), progress=False)
    return export_integer(student, loaded.example_input)


def digits_inputs(model: IntegerModel, n: int, offset: int = 0) -> np.ndarray:
    """``n`` quantised digits test images."""
    x = load_digits().x_test[offset : offset + n].numpy()
    return quantize_input(model, x)


def _requant(rng: np.random.Generator, k: int, relu: bool) -> Requant:
    mult = rng.integers(2**14, 2**16, size=k)
    shift = rng.integers(23, 26, size=k)
    return Requant(mult.astype(np.int64), shift.astype(np.int64), 0 if relu else -128, 127)


def _conv(
    rng: np.random.Generator, name: str, src: str, shape: tuple[int, int, int, int], **kw_: Any
) -> ComputeOp:
    """A random int8 mac convolution of ``shape`` (K, C, KH, KW) with its requantisation."""
    k, c, kh, kw = shape
    groups = kw_.pop("groups", 1)
    w = rng.integers(-127, 128, size=(k, c // groups, kh, kw)).astype(np.int64)
    b = rng.integers(-2000, 2000, size=k).astype(np.int64)
    return ComputeOp(name, src, name, "mac", "conv", w, b, groups=groups,
                     requant=_requant(rng, k, kw_.pop("relu", True)), **kw_)  # fmt: skip


def random_model(seed: int = 0) -> IntegerModel:
    """A hand-made integer network of awkward shapes with random parameters: odd channel
    counts, a 5x5 stride-2 convolution with padding 2, a grouped convolution (groups 3), a
    depthwise 3x3 stride-2, max pooling 3x3 stride 2 padding 1, a residual add, a 1x1
    convolution, a non-square input (3 x 11 x 9) and a linear layer."""
    rng = np.random.default_rng(seed)

    def conv(name: str, src: str, k: int, c: int, kh: int, kw: int, **kw_: Any) -> ComputeOp:
        return _conv(rng, name, src, (k, c, kh, kw), **kw_)

    ops: list[Any] = [
        conv("c5", "input", 6, 3, 5, 5, stride=(2, 2), padding=(2, 2)),  # 6 x 6 x 5
        conv("grp", "c5", 9, 6, 3, 3, padding=(1, 1), groups=3),  # 9 x 6 x 5
        conv("dw", "grp", 9, 9, 3, 3, stride=(2, 1), padding=(1, 1), groups=9),  # 9 x 3 x 5
        conv("pw", "dw", 9, 9, 1, 1, relu=False),
        RescaleOp("add", ("dw", "pw"), "add", (3 << 20, 5 << 19), 22, 0, 127),
        MaxPoolOp("mp", "add", "mp", (3, 3), (2, 2), (1, 1)),  # 9 x 2 x 3
        FlattenOp("flat", "mp", "flat"),
    ]
    w = rng.integers(-127, 128, size=(7, 54)).astype(np.int64)
    ops.append(ComputeOp("fc", "flat", "fc", "mac", "linear", w,
                         rng.integers(-500, 500, size=7).astype(np.int64),
                         requant=_requant(rng, 7, False)))  # fmt: skip
    return IntegerModel("input", (1, 3, 11, 9), 1 / 64, -128, 127, tuple(ops), "fc", 1.0)


def narrow_model(w_bits: int, a_bits: int, seed: int = 0) -> IntegerModel:
    """``random_model`` narrowed to ``w_bits``-bit weights and ``a_bits``-bit activations where
    a PE reads them (the input, the requantised and rescaled outputs that feed a later layer),
    for a core whose PEs are that narrow: the network of a whole-network low-bit policy. The
    tensors no PE reads keep int8 ranges (stored as bytes): the 1x1 convolution read only by
    the residual add, and the logits."""
    from dataclasses import replace

    wide = random_model(seed)
    ws, a_lo, a_hi = 8 - w_bits, -(2 ** (a_bits - 1)), 2 ** (a_bits - 1) - 1
    ops: list[Any] = []
    for op in wide.ops:
        if isinstance(op, ComputeOp):
            rq = op.requant
            assert rq is not None
            # weights >> ws: products ws + (8 - a_bits) bits smaller, so is the shift
            shift = rq.shift - ws - (8 - a_bits)
            if op.name not in ("pw", "fc"):  # read by PEs: narrow (ReLU clamps kept)
                rq = Requant(rq.multiplier, shift, 0 if rq.lo == 0 else a_lo, a_hi)
            else:  # read by the add / the logits: bytes, scaled into the byte range
                rq = Requant(rq.multiplier, shift - (a_bits - 8), rq.lo, rq.hi)
            op = replace(op, weight=op.weight >> ws, requant=rq)
        elif isinstance(op, RescaleOp):
            op = replace(op, lo=0 if op.lo == 0 else a_lo, hi=a_hi)
        ops.append(op)
    return replace(wide, input_lo=a_lo, input_hi=a_hi, ops=tuple(ops))


def resident_model(seed: int = 3) -> IntegerModel:
    """Feature-map residency (``autochip/builder/residency.py``) on ``core_resident4x4.yaml``:
    a chain of 3x3 convolutions (3 x 12 x 12 input, 8 channels: each output forwarded into the
    ifmap copies and read from there), a residual add whose first input stays resident across
    two layers and whose second is loaded (no room for a third tensor), computed in place; a
    stride-2 convolution in three weight passes; an option-A shortcut (a subsample written
    inside a channel-padded tensor: not forwarded, loaded by the add that reads it); max
    pooling, a 1x1 convolution of 9 pixels (not a multiple of R: not forwarded), a linear layer
    and a global average pooling of the add that no later layer reads (checked all the
    same)."""
    rng = np.random.default_rng(seed)

    def conv(name: str, src: str, k: int, c: int, kh: int, kw: int, **kw_: Any) -> ComputeOp:
        return _conv(rng, name, src, (k, c, kh, kw), **kw_)

    ops: list[Any] = [
        conv("c1", "input", 8, 3, 3, 3, padding=(1, 1)),  # 8 x 12 x 12
        conv("c2", "c1", 8, 8, 3, 3, padding=(1, 1)),
        conv("c3", "c2", 8, 8, 3, 3, padding=(1, 1), relu=False),
        RescaleOp("add1", ("c1", "c3"), "add1", (3 << 20, 5 << 19), 22, 0, 127),
        conv("c4", "add1", 12, 8, 3, 3, stride=(2, 2), padding=(1, 1)),  # 12 x 6 x 6
        SubsampleOp("sub", "add1", "sub", (2, 2)),  # 8 x 6 x 6
        PadOp("pad", "sub", "pad", (2, 2, 0, 0, 0, 0)),  # 12 x 6 x 6
        RescaleOp("add2", ("c4", "pad"), "add2", (5 << 19, 3 << 20), 22, 0, 127),
        SumPoolOp("gsum", "add2", "gsum", (6, 6), (6, 6)),  # 12 x 1 x 1
        RescaleOp("gap", ("gsum",), "gap", (13 << 16,), 22, -128, 127),
        MaxPoolOp("mp", "add2", "mp", (2, 2), (2, 2), (0, 0)),  # 12 x 3 x 3
        conv("c5", "mp", 8, 12, 1, 1),  # 8 x 3 x 3
        FlattenOp("flat", "c5", "flat"),
    ]
    w = rng.integers(-127, 128, size=(16, 72)).astype(np.int64)
    ops.append(ComputeOp("fc", "flat", "fc", "mac", "linear", w,
                         rng.integers(-500, 500, size=16).astype(np.int64),
                         requant=_requant(rng, 16, False)))  # fmt: skip
    return IntegerModel("input", (1, 3, 12, 12), 1 / 64, -128, 127, tuple(ops), "fc", 1.0)


def tiled_model(seed: int = 2) -> IntegerModel:
    """Feature maps larger than the tiny buffers of ``core_small8x8.yaml`` (320 bytes per ifmap
    copy, 512 ofmap bytes): every layer is split into bands. A 5x5 stride-2 padding-2
    convolution of a 3 x 21 x 19 input (row bands of one output row: halos, padding at the top
    and bottom bands only, odd sizes, two weight tiles), a depthwise 3x3 (merged into two groups
    of 8: row and group bands), a 1x1 convolution (row bands), the residual add of the two
    (channel bands), max pooling 3x3/2 padding 1 and global average pooling (channel
    bands)."""
    rng = np.random.default_rng(seed)

    def conv(name: str, src: str, k: int, c: int, kh: int, kw: int, **kw_: Any) -> ComputeOp:
        return _conv(rng, name, src, (k, c, kh, kw), **kw_)

    ops: list[Any] = [
        conv("c5", "input", 16, 3, 5, 5, stride=(2, 2), padding=(2, 2)),  # 16 x 11 x 10
        conv("dw", "c5", 16, 16, 3, 3, padding=(1, 1), groups=16),
        conv("pw", "dw", 16, 16, 1, 1, relu=False),
        RescaleOp("add", ("dw", "pw"), "add", (3 << 20, 5 << 19), 22, -128, 127),
        MaxPoolOp("mp", "add", "mp", (3, 3), (2, 2), (1, 1)),  # 16 x 6 x 5
        SumPoolOp("gsum", "mp", "gsum", (6, 5), (6, 5)),  # 16 x 1 x 1
        RescaleOp("gap", ("gsum",), "gap", (13 << 16,), 24, -128, 127),
    ]
    return IntegerModel("input", (1, 3, 21, 19), 1 / 64, -128, 127, tuple(ops), "gap", 1.0)


def short_tile_model(seed: int = 1) -> IntegerModel:
    """Layers whose reduction is shorter than an 8 x 8 array, both reading the input: a 1 x 1
    convolution of 3 input channels (T = 3; 11 output channels of 7 x 5 pixels: two weight
    tiles, one pass each on the small core, 5 pixel tiles a pass) and, after a global max
    pooling, a linear layer of 3 inputs and 40 outputs (T = 3, 5 weight tiles in one pass).
    Tiles follow each other closer than the array's read-out allows."""
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-127, 128, size=(11, 3, 1, 1)).astype(np.int64)
    w2 = rng.integers(-127, 128, size=(40, 3)).astype(np.int64)
    ops: list[Any] = [
        ComputeOp("pw3", "input", "pw3", "mac", "conv", w1,
                  rng.integers(-2000, 2000, size=11).astype(np.int64),
                  requant=_requant(rng, 11, True)),  # 11 x 7 x 5
        MaxPoolOp("mp", "input", "mp", (7, 5), (7, 5)),  # 3 x 1 x 1
        FlattenOp("flat", "mp", "flat"),
        ComputeOp("fc", "flat", "fc", "mac", "linear", w2,
                  rng.integers(-500, 500, size=40).astype(np.int64),
                  requant=_requant(rng, 40, False)),
    ]  # fmt: skip
    return IntegerModel("input", (1, 3, 7, 5), 1 / 64, -128, 127, tuple(ops), "fc", 1.0)


def random_inputs(model: IntegerModel, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(model.input_lo, model.input_hi + 1, size=(n, *model.input_shape[1:]))


def vector_model(seed: int = 1) -> IntegerModel:
    """Every vector mode on odd shapes (5 x 7 x 9 input; R-lane groups with a partial last
    group for most R): a 1x1 convolution to 7 channels, max pooling 3x3/2 padding 1, ceil-mode
    max pooling 2x2/2, their residual add, a strided subsample written inside a channel-padded
    tensor (from byte 20: inside a bus word), average pooling 3x3/2, global average pooling of
    the add, one-input rescales of the padded tensor (x 1.5 into [-128, 127], x 5 into
    [-20, 100]: results past 9 bits, both clamps)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, size=(7, 5, 1, 1)).astype(np.int64)
    b = rng.integers(-2000, 2000, size=7).astype(np.int64)
    ops: list[Any] = [
        ComputeOp("c", "input", "c", "mac", "conv", w, b, requant=_requant(rng, 7, False)),
        MaxPoolOp("mp", "c", "mp", (3, 3), (2, 2), (1, 1)),  # 7 x 4 x 5
        MaxPoolOp("mpc", "c", "mpc", (2, 2), (2, 2), (0, 0), ceil_mode=True),  # 7 x 4 x 5
        RescaleOp("add", ("mp", "mpc"), "add", (3 << 20, 5 << 19), 22, -128, 127),
        SubsampleOp("sub", "c", "sub", (2, 2)),  # 7 x 4 x 5
        SumPoolOp("sp", "c", "sp", (3, 3), (2, 2)),  # 7 x 3 x 4
        RescaleOp("avg", ("sp",), "avg", (7 << 18,), 24, -128, 127),
        SumPoolOp("gsum", "add", "gsum", (4, 5), (4, 5)),  # 7 x 1 x 1
        RescaleOp("gap", ("gsum",), "gap", (13 << 16,), 24, -128, 127),
        PadOp("pad", "sub", "pad", (1, 2, 0, 0, 0, 0)),  # 10 x 4 x 5: sub at byte 20
        RescaleOp("r1", ("pad",), "r1", (3 << 19,), 20, -128, 127),
        RescaleOp("r5", ("pad",), "r5", (5 << 20,), 20, -20, 100),  # x5: past 9 bits, clamped
    ]
    return IntegerModel("input", (1, 5, 7, 9), 1 / 64, -128, 127, tuple(ops), "gap", 1.0)


def prefetch_model(seed: int = 4) -> IntegerModel:
    """Weight prefetch (descriptor op bit 12) on ``core_prefetch4x4.yaml`` (192 weight rows):
    a 3x3 convolution 8 -> 16 channels (72-row tiles: two per pass without prefetch, so one
    per pass in two slots, four passes), a 1x1 convolution 16 -> 40 (10 tiles: 6 per pass
    with prefetch, then a partial pass of 4), one 40 -> 4 whose global average pooling feeds
    a linear layer 4 -> 96 (24 four-row tiles, 8 per pass: each pass's loads take longer than
    its compute, so its write-back waits for the prefetch), and a 3x3 convolution of one pass
    (no prefetch)."""
    rng = np.random.default_rng(seed)

    def conv(name: str, src: str, k: int, c: int, kh: int, kw: int, **kw_: Any) -> ComputeOp:
        return _conv(rng, name, src, (k, c, kh, kw), **kw_)

    ops: list[Any] = [
        conv("c1", "input", 16, 8, 3, 3, padding=(1, 1)),  # 16 x 8 x 8, 4 passes
        conv("c2", "c1", 40, 16, 1, 1),  # 40 x 8 x 8, passes of 6 and 4 tiles
        conv("c3", "c2", 4, 40, 1, 1),  # 4 x 8 x 8, one pass
        SumPoolOp("gsum", "c3", "gsum", (8, 8), (8, 8)),  # 4 x 1 x 1
        RescaleOp("gap", ("gsum",), "gap", (13 << 16,), 22, -128, 127),
        FlattenOp("flat", "gap", "flat"),
    ]
    w = rng.integers(-127, 128, size=(96, 4)).astype(np.int64)
    ops.append(ComputeOp("fc", "flat", "fc", "mac", "linear", w,
                         rng.integers(-500, 500, size=96).astype(np.int64),
                         requant=_requant(rng, 96, False)))  # fmt: skip
    return IntegerModel("input", (1, 8, 8, 8), 1 / 64, -128, 127, tuple(ops), "fc", 1.0)

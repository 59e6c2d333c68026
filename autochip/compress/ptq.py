"""Post-training quantisation (PTQ): a float model -> an int8 :class:`IntegerModel`, no training.

PTQ is the compression library's quantisation path without the training step:
:func:`~autochip.compress.convert.convert` with an int8 :class:`~autochip.compress.policy.Policy`
(per-output-channel weights, per-tensor activations, zero-point 0: DESIGN "Integer semantics"),
then one calibration pass over inputs that sets every activation step
(:func:`~autochip.compress.quant.calibrate_scale`, ``minmax`` by default), then
:func:`~autochip.compress.export.export_integer`.

Unlike :func:`autochip.compress.train.calibrate` (which prepares quantisation-aware training and
re-estimates batch-norm statistics), PTQ keeps the float model as it is: its batch-norms stay in
eval mode with their running statistics, so the integer model approximates exactly the float
model the user gave.

Calibration inputs (:func:`calibration_inputs`): ``digits``, ``cifar10:PATH`` (the python
batches), ``fashion-mnist`` and dataset folders through :func:`autochip.compress.data.load_data`,
an ``.npy`` of float inputs ``[N, *input shape]``, or, without data, seeded synthetic inputs
(uniform in [0, 1), the range of the loaders' images).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from autochip.compress.convert import convert
from autochip.compress.data import load_cifar10, load_data
from autochip.compress.export import export_integer
from autochip.compress.policy import Policy
from autochip.compress.quant import QuantAct, calibrate_scale
from autochip.errors import CompressionError
from autochip.reference import IntegerModel

__all__ = [
    "CALIBRATION_SAMPLES",
    "SYNTHETIC_SEED",
    "Calibration",
    "calibration_inputs",
    "ptq",
]

CALIBRATION_SAMPLES = 512  # inputs of the calibration pass (as `autochip compress`)
SYNTHETIC_SEED = 0


@dataclass(frozen=True)
class Calibration:
    """Calibration inputs and where they came from (stated in build reports).

    ``x`` feeds the calibration pass; ``x_test`` / ``y_test`` are held-out inputs and labels
    when the source has a test split (``y_test`` is None otherwise).
    """

    source: str  # "digits", "cifar10:PATH", "file.npy", "synthetic (seed 0, uniform [0, 1))"
    x: Tensor
    x_test: Tensor
    y_test: Tensor | None
    synthetic: bool


def _npy(path: Path, shape: tuple[int, ...]) -> Tensor:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CompressionError(f"--calibrate '{path}': not a readable .npy file ({exc})") from None
    if arr.ndim != len(shape) + 1 or tuple(arr.shape[1:]) != shape:
        raise CompressionError(
            f"--calibrate '{path}': expected an array of shape (N, {', '.join(map(str, shape))}), "
            f"found {tuple(arr.shape)}"
        )
    if not np.issubdtype(arr.dtype, np.number) or arr.shape[0] < 1:
        raise CompressionError(
            f"--calibrate '{path}': expected at least one numeric input, found dtype {arr.dtype} "
            f"and {arr.shape[0]} inputs"
        )
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def calibration_inputs(
    spec: str | None, shape: tuple[int, ...], samples: int = CALIBRATION_SAMPLES
) -> Calibration:
    """The calibration inputs named by ``spec`` (None: seeded synthetic) for input ``shape``."""
    shape = tuple(int(d) for d in shape)
    if spec is None:
        g = torch.Generator().manual_seed(SYNTHETIC_SEED)
        x = torch.rand((samples, *shape), generator=g)
        xt = torch.rand((samples, *shape), generator=g)
        src = f"synthetic (seed {SYNTHETIC_SEED}, {samples} inputs uniform in [0, 1))"
        return Calibration(src, x, xt, None, True)
    if spec.endswith(".npy"):
        x = _npy(Path(spec), shape)
        return Calibration(spec, x[:samples], x, None, False)
    if spec.startswith("cifar10:"):
        data = load_cifar10(spec.split(":", 1)[1])
        if data.sample_shape != shape:
            raise CompressionError(
                f"--calibrate {spec}: samples have shape {data.sample_shape}, but the model "
                f"expects {shape}"
            )
    else:
        data = load_data(spec, shape)
    return Calibration(spec, data.x_train[:samples], data.x_test, data.y_test, False)


def _calibrate(gm: nn.Module, x: Tensor, method: str) -> None:
    """One pass over ``x`` setting every activation step; batch-norms keep their statistics."""
    quants = [m for m in gm.modules() if isinstance(m, QuantAct)]

    def observe(q: nn.Module, inp: tuple[Tensor, ...]) -> None:
        assert isinstance(q, QuantAct)
        q.scale.fill_(calibrate_scale(inp[0], q.qp, method))

    hooks = [q.register_forward_pre_hook(observe) for q in quants]
    gm.eval()
    grid = [m for m in gm.modules() if "_grid_bias" in m.__dict__]
    for m in grid:
        m.train()  # float bias while the steps downstream are measured (as train.calibrate)
    try:
        with torch.no_grad():
            gm(x)
    finally:
        for h in hooks:
            h.remove()
        gm.eval()


def ptq(model: nn.Module, example: Tensor, x: Tensor, policy: Policy | None = None) -> IntegerModel:
    """Quantise float ``model`` post-training on calibration inputs ``x``; ``model`` untouched.

    ``policy`` defaults to int8 everywhere (per-channel weights, per-tensor activations).
    """
    pol = policy or Policy()
    if any(lp.kind != "mac" for _, lp in pol.layers) or pol.default.kind != "mac":
        raise CompressionError(
            "ptq: post-training quantisation makes integer MAC layers; binary and adder layers "
            "need training (autochip compress)"
        )
    was = model.training
    model.eval()
    try:
        gm = convert(model, pol)
    finally:
        model.train(was)
    _calibrate(gm, x, pol.calibration)
    return export_integer(gm, example)

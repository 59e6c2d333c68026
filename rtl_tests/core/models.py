"""Integer models for the core's tests, made fast and deterministically.

``integer_model(spec, method)`` trains the float model briefly on the digits set (so the
activations are realistic, not random), converts it with ``autochip.compress``'s policy for
``method`` (first and last layers int8), calibrates and exports it: the same path as
``autochip compress``, with fewer epochs. Bit-exactness does not depend on accuracy.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from autochip.compress.convert import convert
from autochip.compress.data import load_digits
from autochip.compress.export import export_integer
from autochip.compress.policy import policy_for_method
from autochip.compress.train import TrainConfig, calibrate, seed_everything, train
from autochip.ir import load_model
from autochip.reference import IntegerModel, quantize_input

__all__ = ["digits_inputs", "integer_model"]


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

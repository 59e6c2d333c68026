"""The testbenches' golden model (golden.py) agrees with autochip's integer reference executor.

``autochip.reference.run`` is the one definition of the integer semantics (DESIGN.md); the array
testbench checks the RTL against ``golden.gemm``, so this test ties the two together: an
output-stationary tile A (M x T) @ B (T x N) is a linear layer with weight B^T, and for xnor the
V-bit packed words unpack into T*V ±1 inputs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from autochip.reference import ComputeOp, IntegerModel, Requant, run


def _golden() -> ModuleType:
    spec = importlib.util.spec_from_file_location("golden", Path(__file__).with_name("golden.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reference_acc(kind: str, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    n = weight.shape[0]
    op = ComputeOp(
        name="fc",
        input="x",
        output="y",
        kind=kind,
        layer="linear",
        weight=weight.astype(np.int64),
        bias=np.zeros(n, dtype=np.int64),
        requant=Requant(
            np.ones(n, dtype=np.int64), np.ones(n, dtype=np.int64), -(2**31), 2**31 - 1
        ),
    )
    model = IntegerModel("x", tuple(x.shape), 1.0, int(x.min()), int(x.max()), (op,), "y", 1.0)
    _, dumped = run(model, x.astype(np.int64), dump=True)
    acc: np.ndarray = dumped["fc.acc"]
    return acc


def _unpack(words: np.ndarray, v: int) -> np.ndarray:
    """V-bit words (..., T) -> ±1 values (..., T*V), bit 1 = +1, lane order kept per word."""
    bits = (words[..., None] >> np.arange(v)) & 1
    return np.where(bits.reshape(*words.shape[:-1], -1) == 1, 1, -1)


@pytest.mark.parametrize("kind,bits", [("mac", 8), ("mac", 3), ("adder", 8), ("adder", 16)])
def test_gemm_matches_reference(kind: str, bits: int) -> None:
    golden = _golden()
    rng = np.random.default_rng(bits)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    a = rng.integers(lo, hi + 1, size=(5, 11))
    b = rng.integers(lo, hi + 1, size=(11, 4))
    a[0, :] = lo  # extremes
    b[:, 0] = lo if kind == "mac" else hi
    want = _reference_acc(kind, a, b.T)
    assert np.array_equal(golden.gemm(kind, a, b), want)


@pytest.mark.parametrize("vector", [1, 7, 16])
def test_xnor_gemm_matches_reference(vector: int) -> None:
    golden = _golden()
    rng = np.random.default_rng(vector)
    a = rng.integers(0, 2**vector, size=(3, 6))
    b = rng.integers(0, 2**vector, size=(6, 5))
    want = _reference_acc("xnor", _unpack(a, vector), _unpack(b.T, vector))
    assert np.array_equal(golden.gemm("xnor", a, b, vector), want)

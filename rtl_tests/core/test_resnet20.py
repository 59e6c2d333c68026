"""Whole ResNet-20 (int8, 3x32x32) on the accelerator core, bit-exact against the reference.

The zoo's float ResNet-20 is quantised post-training by ``autochip build`` (``autochip.compress.
ptq``, seeded synthetic calibration: the zoo has no trained weights and no CIFAR-10 ships with
the machine; bit-exactness does not depend on accuracy), compiled for
``core_resnet20.yaml`` (an 8x8 core whose buffers hold ResNet-20's 32x32 feature maps) and run on
two seeded inputs in cocotb + Verilator. Every one of its 34 descriptors (19 convolutions, 9
residual adds, 2 option-A shortcuts = a recomputed add, a strided subsample and a zero channel
pad placed by address, global average pooling, the linear layer) must be bit-exact against
:func:`autochip.reference.run`, and its cycles equal to the core model's (every layer; the
issue asks 2 %).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autochip.builder.core_sim import simulate_core
from autochip.cli import main
from autochip.reference import SubsampleOp, load_integer_model

HERE = Path(__file__).resolve().parent
SPEC = HERE / "core_resnet20.yaml"


@pytest.mark.sim
def test_resnet20_bit_exact_and_cycles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "resnet20"
    assert main(["build", "resnet20", "--hw", str(SPEC), "--out", str(out), "--images", "2",
                 "--json"]) == 0  # fmt: skip
    built = json.loads(capsys.readouterr().out)
    assert built["quantisation"]["synthetic"]
    model = load_integer_model(out / "model.npz")
    assert sum(isinstance(op, SubsampleOp) for op in model.ops) == 2
    x = np.load(out / "inputs.npy")
    assert x.shape == (2, 3, 32, 32)
    rep = simulate_core(out, model, x)
    assert rep.images == 2
    assert len(rep.layers) == 34
    bad = [(lay.name, lay.mismatches) for lay in rep.layers if not lay.bit_exact]
    assert not bad, f"outputs differ from autochip.reference: {bad}"
    assert rep.bit_exact
    # every layer exactly as the cycle model says (the issue asks 2 %)
    off = [(lay.name, lay.cycles_measured, lay.cycles_predicted) for lay in rep.layers
           if lay.cycles_predicted != lay.cycles_measured]  # fmt: skip
    assert not off, f"layers (measured, predicted) off the cycle model: {off}"
    assert rep.cycles_predicted_total == rep.cycles_total

"""The zoo's other operators on the core in simulation, bit-exact against the reference.

``zoo_ops_tiny.py`` (a SqueezeNet Fire module with its channel concatenation, ReLU6, a depthwise
3x3 convolution whose groups are merged onto the array columns, max pooling, global average
pooling, a linear layer) is quantised post-training by ``autochip build`` (seeded synthetic
calibration) for the demo 8x8 core and run on two seeded inputs: every descriptor's output
bit-exact against :func:`autochip.reference.run`, its cycles equal to the core model's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autochip.builder.core_sim import simulate_core
from autochip.cli import main
from autochip.reference import ConcatOp, load_integer_model

HERE = Path(__file__).resolve().parent
MAC = HERE.parents[1] / "examples" / "hw" / "demo_os8x8_int8.yaml"


@pytest.mark.sim
def test_concat_relu6_depthwise_bit_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "zoo_ops"
    assert main(["build", str(HERE / "zoo_ops_tiny.py"), "--hw", str(MAC), "--out", str(out),
                 "--images", "2", "--json"]) == 0  # fmt: skip
    built = json.loads(capsys.readouterr().out)
    model = load_integer_model(out / "model.npz")
    assert any(isinstance(op, ConcatOp) for op in model.ops)
    dw = next(lay for lay in built["layers"] if lay["name"] == "dw.0")
    plan = json.loads((out / "plan.json").read_text())
    fields = next(lay["descriptor"] for lay in plan["layers"] if lay["name"] == "dw.0")
    assert dw["kind"] == "conv" and fields["kg"] == 6  # 12 channels: 2 merged groups of 6
    x = np.load(out / "inputs.npy")
    rep = simulate_core(out, model, x)
    bad = [(lay.name, lay.mismatches) for lay in rep.layers if not lay.bit_exact]
    assert not bad, f"outputs differ from autochip.reference: {bad}"
    assert rep.bit_exact and rep.images == 2
    # every layer exactly as the cycle model says (the issue asks 2 %)
    off = [(lay.name, lay.cycles_measured, lay.cycles_predicted) for lay in rep.layers
           if lay.cycles_predicted != lay.cycles_measured]  # fmt: skip
    assert not off, f"layers (measured, predicted) off the cycle model: {off}"

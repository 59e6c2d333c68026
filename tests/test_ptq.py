"""Post-training quantisation (autochip.compress.ptq) and `autochip build` of float models.

Authority: the float PyTorch model. A float LeNet trained on the digits training split, then
quantised post-training (no training after), must agree with its integer model
(:func:`autochip.reference.run`) on the 360 digits test images: top-1 class agreement >= 98 %,
accuracy within 1 point, and, with calibration on real data, every logit within 4 output
quantisation steps (one rounding of the output requantisation plus the propagated input and
per-layer rounding; a calibration that clips the logits would exceed it, as the synthetic one
does, which is why that case is held to class agreement only).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from autochip.cli import main
from autochip.compress.checkpoint import save_checkpoint
from autochip.compress.data import load_digits
from autochip.compress.ptq import calibration_inputs, ptq
from autochip.compress.train import TrainConfig, seed_everything, train
from autochip.ir import load_model
from autochip.reference import IntegerModel, quantize_input, run

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "hw" / "demo_os8x8_int8.yaml"
TINY = ROOT / "rtl_tests" / "core" / "resnet_tiny.py"


@cache
def float_lenet() -> nn.Module:
    seed_everything(0)
    torch.set_num_threads(1)
    model = load_model("lenet_digits").model
    train(model, load_digits(), TrainConfig(epochs=20, lr=3e-3), progress=False)
    return model.eval()


def _agreement(model: nn.Module, integer: IntegerModel) -> tuple[float, float, float, float]:
    data = load_digits()
    with torch.no_grad():
        ref = model(data.x_test).double().numpy()
    out, _ = run(integer, quantize_input(integer, data.x_test.numpy()))
    y = data.y_test.numpy()
    agree = float((out.argmax(1) == ref.argmax(1)).mean())
    err_steps = float(np.abs(out * integer.output_scale - ref).max() / integer.output_scale)
    return agree, err_steps, float((ref.argmax(1) == y).mean()), float((out.argmax(1) == y).mean())


@pytest.mark.slow
def test_ptq_lenet_agrees_with_the_float_model_on_digits() -> None:
    model = float_lenet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    integer = ptq(model, torch.zeros(1, 1, 8, 8), calibration_inputs("digits", (1, 8, 8)).x)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    agree, err_steps, acc_float, acc_int = _agreement(model, integer)
    assert acc_float >= 0.9  # the float model is a real classifier
    assert agree >= 0.98
    assert abs(acc_int - acc_float) <= 0.01
    assert err_steps <= 4.0
    # without data: seeded synthetic inputs calibrate; classes still agree
    syn = ptq(model, torch.zeros(1, 1, 8, 8), calibration_inputs(None, (1, 8, 8)).x)
    assert _agreement(model, syn)[0] >= 0.98


@pytest.mark.slow
def test_build_quantises_a_float_checkpoint_on_real_data(tmp_path: Path) -> None:
    ckpt = tmp_path / "lenet.fp32.pt"
    save_checkpoint(ckpt, "lenet_digits", None, float_lenet(), {"method": "fp32"})
    out = tmp_path / "b"
    args = ["build", str(ckpt), "--hw", str(DEMO), "--out", str(out), "--calibrate", "digits"]
    assert main([*args, "--images", "3"]) == 0
    plan = json.loads((out / "plan.json").read_text())
    q = plan["quantisation"]
    assert q["calibration"] == "digits" and not q["synthetic"]
    assert q["check_inputs"] == 256 and q["class_agreement"] >= 0.98
    assert "calibrated on digits" in (out / "report.md").read_text()
    from autochip.reference import load_integer_model

    integer = load_integer_model(out / "model.npz")
    want = quantize_input(integer, load_digits().x_test[:3].numpy())
    assert np.array_equal(np.load(out / "inputs.npy"), want)  # the test split, quantised


def test_build_takes_a_zoo_or_py_model_without_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    assert main(["build", str(TINY), "--hw", str(DEMO), "--out", str(out), "--images", "1",
                 "--json"]) == 0  # fmt: skip
    res = json.loads(capsys.readouterr().out)
    q = res["quantisation"]
    assert q["synthetic"] and q["calibration"].startswith("synthetic (seed 0")
    kinds = [lay["kind"] for lay in res["layers"]]
    assert kinds.count("subsample") == 2 and kinds.count("add") == 5
    assert np.load(out / "inputs.npy").shape == (1, 3, 16, 16)


def test_build_rejects_bad_calibration_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((4, 3, 8, 8), dtype=np.float32))
    out = tmp_path / "o"
    assert main(["build", str(TINY), "--hw", str(DEMO), "--out", str(out), "--calibrate",
                 str(bad)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "expected an array of shape (N, 3, 16, 16), found (4, 3, 8, 8)" in err
    assert "Traceback" not in err and not out.exists()
    npz = tmp_path / "m.npz"
    from autochip.reference import save_integer_model

    save_integer_model(ptq(float_lenet(), torch.zeros(1, 1, 8, 8), torch.rand(8, 1, 8, 8)), npz)
    assert main(["build", str(npz), "--hw", str(DEMO), "--out", str(out), "--calibrate",
                 "digits"]) == 2  # fmt: skip
    assert "--calibrate: MODEL" in capsys.readouterr().err and not out.exists()


ZOO_OPS = ROOT / "rtl_tests" / "core" / "zoo_ops_tiny.py"


def test_relu6_and_concat_export_exactly() -> None:
    """ReLU6 is the requantisation's clamp at round(6 / step), a Fire module's concatenation a
    layout op of one step: the integer model equals the fake-quant model to the last bit."""
    from autochip.compress.convert import convert
    from autochip.compress.export import export_integer
    from autochip.compress.policy import Policy
    from autochip.compress.ptq import _calibrate
    from autochip.reference import ComputeOp, ConcatOp

    model = load_model(str(ZOO_OPS)).model
    with torch.no_grad():
        model.stem[0].weight.mul_(50.0)  # type: ignore[index, union-attr]  # activations past 6
    cal = calibration_inputs(None, (3, 12, 12), 128)
    gm = convert(model, Policy())
    _calibrate(gm, cal.x, "minmax")
    integer = export_integer(gm, torch.zeros(1, 3, 12, 12))
    ops = {op.name: op for op in integer.ops}
    stem = ops["stem.0"]
    assert isinstance(stem, ComputeOp) and stem.requant is not None
    # calibrated on the clipped values: step = 6 / 127 * (1 + 2^-7), so 6 is 126 steps
    assert (stem.requant.lo, stem.requant.hi) == (0, 126)
    cat = next(op for op in integer.ops if isinstance(op, ConcatOp))
    assert cat.inputs == ("fire.expand1x1", "fire.expand3x3")
    with torch.no_grad():
        fq = np.rint(gm(cal.x_test[:64]).numpy() / integer.output_scale).astype(np.int64)
    out, _ = run(integer, quantize_input(integer, cal.x_test[:64].numpy()))
    assert np.array_equal(out, fq)


def test_a_bias_too_large_for_the_accumulator_gets_a_coarser_input_step() -> None:
    """Nearly vanishing activations (untrained weights) put a folded bias past 2^31 steps:
    the step of the quantiser feeding that layer is made coarser until the bias fits, once,
    with a note; the integer model still equals the fake-quant model to the last bit."""
    from autochip.compress.convert import convert
    from autochip.compress.export import BIAS_LIMIT, export_integer
    from autochip.compress.policy import Policy
    from autochip.compress.ptq import _calibrate, export_fitting
    from autochip.errors import CompressionError
    from autochip.reference import ComputeOp

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    )
    with torch.no_grad():
        model[0].weight.mul_(1e-9)  # type: ignore[operator]
        model[0].bias.zero_()  # type: ignore[union-attr]
        model[3].bias.copy_(torch.tensor([0.5, -0.3, 0.1]))  # type: ignore[union-attr]
    cal = calibration_inputs(None, (1, 6, 6), 64)
    gm = convert(model, Policy())
    _calibrate(gm, cal.x, "minmax")
    with pytest.raises(CompressionError, match="does not fit the 32-bit accumulator"):
        export_integer(gm, torch.zeros(1, 1, 6, 6))
    notes: list[str] = []
    integer = export_fitting(gm, torch.zeros(1, 1, 6, 6), notes)
    assert len(notes) == 1 and "'3'" in notes[0], notes
    fc = [op for op in integer.ops if isinstance(op, ComputeOp)][-1]
    assert 2**29 < int(np.abs(fc.bias).max()) <= BIAS_LIMIT
    with torch.no_grad():
        fq = np.rint(gm(cal.x_test[:32]).numpy() / integer.output_scale).astype(np.int64)
    out, _ = run(integer, quantize_input(integer, cal.x_test[:32].numpy()))
    assert np.array_equal(out, fq)
    assert export_fitting(gm, torch.zeros(1, 1, 6, 6), notes) is not None and len(notes) == 1


def test_build_takes_a_torch_export_program(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A .pt2 of the reduced ResNet is lifted back to modules: the integer model it builds is
    the one its .py builds (same ops, names and arrays)."""
    loaded = load_model(str(TINY))
    pt2 = tmp_path / "resnet_tiny.pt2"
    torch.export.save(torch.export.export(loaded.model.eval(), (loaded.example_input,)), pt2)
    for name, spec in (("py", str(TINY)), ("pt2", str(pt2))):
        args = ["build", spec, "--hw", str(DEMO), "--out", str(tmp_path / name), "--images", "1"]
        assert main(args) == 0
    capsys.readouterr()
    a, b = (np.load(tmp_path / n / "model.npz") for n in ("py", "pt2"))
    assert bytes(a["__header__"]) == bytes(b["__header__"])
    assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)

    class Sig(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(x)

    bad = tmp_path / "sig.pt2"
    torch.export.save(torch.export.export(Sig(), (torch.zeros(1, 3, 4, 4),)), bad)
    assert main(["build", str(bad), "--hw", str(DEMO), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "calls aten.sigmoid.default, which autochip cannot quantise" in err
    assert not (tmp_path / "s").exists()

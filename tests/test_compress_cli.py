"""`autochip compress` end to end on the digits set, checkpoints, and bad input.

Training runs are short (a few epochs) but real; thresholds are far above chance (10 %).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from autochip.cli import main
from autochip.compress.checkpoint import load_checkpoint, read_checkpoint
from autochip.compress.data import load_digits
from autochip.compress.train import logits
from autochip.reference import load_integer_model, quantize_input, run


def _compress(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, object]:
    """The digits recipe of these tests: batch 32 (the default 128 is Fashion-MNIST's; digits
    has 1,437 training images, 12 steps per epoch at 128)."""
    out = tmp_path / "m.pt"
    argv = ["compress", "lenet_digits", "--data", "digits", "--batch-size", "32"]
    code = main([*argv, "--out", str(out), "--json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result: dict[str, object] = json.loads(captured.out)
    return result


@pytest.mark.slow
def test_quant_int8_trains_exports_and_reloads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = _compress(tmp_path, capsys, "--method", "quant", "--fp32-epochs", "12", "--epochs", "2")
    assert set(r) >= {"accuracy_fp32", "accuracy", "accuracy_integer", "checkpoint"}
    acc_fp32, acc, acc_int = (
        float(r[k]) for k in ("accuracy_fp32", "accuracy", "accuracy_integer")
    )  # type: ignore[arg-type]
    assert acc_fp32 > 0.85  # chance is 0.10
    assert acc > acc_fp32 - 0.02
    assert float(r["agreement"]) >= 0.995  # type: ignore[arg-type]
    assert abs(acc_int - acc) <= 0.005

    # the checkpoint rebuilds the same fake-quant model; the .npz the same integer model
    model, example = load_checkpoint(r["checkpoint"])  # type: ignore[arg-type]
    assert example.shape == (1, 1, 8, 8)
    data = load_digits()
    fq = logits(model, data.x_test)
    assert float((fq.argmax(1) == data.y_test).float().mean()) == pytest.approx(acc, abs=1e-6)
    im = load_integer_model(r["integer_model"])  # type: ignore[arg-type]
    out, _ = run(im, quantize_input(im, data.x_test.numpy()))
    assert float((out.argmax(1) == data.y_test.numpy()).mean()) == pytest.approx(acc_int)
    # The integer requantisation (M_k, shift) and the float fake-quant round the same real value;
    # they may land on different sides of a rounding tie, by one step, on a few elements (seen on
    # one CPU's BLAS, not another's). Anything more is a bug.
    diff = np.abs(out - np.rint(fq.numpy() / im.output_scale).astype(np.int64))
    assert int(diff.max()) <= 1, int(diff.max())
    assert float((diff > 0).mean()) <= 0.002, float((diff > 0).mean())
    meta = read_checkpoint(r["checkpoint"])["meta"]  # type: ignore[arg-type]
    assert meta["method"] == "quant" and meta["bits"] == "8/8"
    assert (tmp_path / "m.fp32.pt").is_file()

    # the tracer records the compressed arithmetic
    from autochip.ir import graph_for

    labels = [n.arithmetic.label for n in graph_for(str(r["checkpoint"])) if n.is_compute]
    assert labels == ["int8"] * 5


@pytest.mark.slow
def test_binary_and_adder_from_an_fp32_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = _compress(tmp_path, capsys, "--method", "quant", "--fp32-epochs", "30", "--epochs", "0")
    fp32 = str(tmp_path / "m.fp32.pt")
    # digits recipes (the defaults are Fashion-MNIST's): batch 32, no distillation
    for method, arith, epochs, lr in (
        ("binary", "xnor", "5", "1e-2"),
        ("adder", "adder-int8", "10", "2e-2"),
    ):
        out = tmp_path / f"{method}.pt"
        argv = ["compress", fp32, "--method", method, "--epochs", epochs, "--lr", lr]
        argv += ["--batch-size", "32", "--no-kd", "--out", str(out), "--json"]
        code = main(argv)
        res = json.loads(capsys.readouterr().out)
        assert code == 0
        assert res["accuracy_fp32"] == r["accuracy_fp32"]  # the same FP32 model, not retrained
        assert res["accuracy"] > 0.8, (method, res)
        assert res["agreement"] >= 0.995
        model, _ = load_checkpoint(out)
        kinds = [
            m.autochip_arithmetic.label
            for m in model.modules()
            if hasattr(m, "autochip_arithmetic")
            and isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
        ]
        assert kinds == ["int8", arith, arith, arith, "int8"]


@pytest.mark.slow
def test_runs_are_repeatable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--method", "quant", "--bits", "4/4", "--fp32-epochs", "2", "--epochs", "1")
    a = _compress(tmp_path, capsys, *args, "--seed", "3")
    b = _compress(tmp_path, capsys, *args, "--seed", "3")
    assert a == b


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "quant", "--bits", "9/9"], r"--bits: expected W/A with integers 2..8"),
        (["--method", "adder", "--bits", "4/8"], r"W must equal A, found 4/8"),
        (["--method", "quant", "--epochs", "-1"], r"--epochs: expected an integer >= 0, found -1"),
        (["--method", "quant", "--data", "/no/such/dir"], r"expected 'digits' or a dataset folder"),
        (["--method", "quant", "--kd", "mlp"], r"expected MODEL.s input shape \(1, 8, 8\)"),
        (["--method", "quant", "--no-binary-bn"], r"--no-binary-bn: expected --method binary"),
    ],
)
def test_bad_input_is_one_clear_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "x.pt"
    code = main(["compress", "lenet_digits", "--fp32-epochs", "0", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("autochip compress: error:")
    assert "Traceback" not in err
    import re

    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == []


def test_bad_output_and_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["compress", "lenet_digits", "--method", "quant", "--out", str(tmp_path / "a.txt")])
    assert code == 2
    assert "--out: expected a checkpoint path ending in .pt, found" in capsys.readouterr().err
    code = main(["compress", "lenet_digits", "--method", "quant", "--out", "/no/dir/a.pt"])
    assert code == 2
    assert "--out: the directory '/no/dir' does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    code = main(["compress", str(bad), "--method", "quant", "--out", str(tmp_path / "b.pt")])
    assert code == 2
    assert "is not an autochip checkpoint" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt"]


TINY_MODEL = """
import torch
from torch import nn


def build_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 8 * 8, 10),
    )


def example_input() -> torch.Tensor:
    return torch.zeros(1, 3, 32, 32)
"""


def test_cifar10_folder_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pickle

    rng = np.random.default_rng(0)
    data_dir = tmp_path / "cifar-10-batches-py"
    data_dir.mkdir()
    for name, n in (("data_batch_1", 24), ("test_batch", 10)):
        batch = {
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, size=n)],
        }
        (data_dir / name).write_bytes(pickle.dumps(batch))
    model = tmp_path / "tiny.py"
    model.write_text(TINY_MODEL)
    out = tmp_path / "tiny_q.pt"
    code = main(
        [
            "compress",
            str(model),
            "--method",
            "quant",
            "--bits",
            "6/6",
            "--data",
            str(data_dir),
            "--fp32-epochs",
            "1",
            "--epochs",
            "1",
            "--out",
            str(out),
            "--json",
        ]
    )
    res = json.loads(capsys.readouterr().out)
    assert code == 0
    assert res["agreement"] == 1.0
    assert out.is_file() and out.with_suffix(".npz").is_file()
    _, example = load_checkpoint(out, model_code=model)  # a checkpoint's .py runs only if given
    assert example.shape == (1, 3, 32, 32)


def test_checkpoint_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from autochip.compress import Policy, convert, save_checkpoint
    from autochip.errors import CompressionError
    from autochip.ir import load_model

    gm = convert(load_model("lenet_digits").model, Policy())
    ckpt = tmp_path / "c.pt"
    save_checkpoint(ckpt, "lenet_digits", Policy(), gm, {"method": "quant"})
    model, _ = load_checkpoint(ckpt)
    assert sum(1 for _ in model.modules()) == sum(1 for _ in gm.modules())
    code = main(["compress", str(ckpt), "--method", "quant", "--out", str(tmp_path / "o.pt")])
    assert code == 2
    assert "expected an FP32 checkpoint" in capsys.readouterr().err
    data = read_checkpoint(ckpt)
    data["state_dict"].pop("features_0.weight", None)
    data["state_dict"] = {k: v for k, v in data["state_dict"].items() if "classifier" not in k}
    torch.save(data, tmp_path / "broken.pt")
    with pytest.raises(CompressionError, match="the state dict does not fit model 'lenet_digits'"):
        load_checkpoint(tmp_path / "broken.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(CompressionError, match="expected format 'autochip-checkpoint/1'"):
        load_checkpoint(tmp_path / "other.pt")


def test_model_with_wrong_class_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "five.py"
    model.write_text(
        "import torch\nfrom torch import nn\n\n"
        "def build_model():\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, 5))\n\n"
        "def example_input():\n    return torch.zeros(1, 1, 8, 8)\n"
    )
    code = main(["compress", str(model), "--method", "quant", "--out", str(tmp_path / "o.pt")])
    assert code == 2
    err = capsys.readouterr().err
    assert "expected logits of shape (N, 10) for the 10 classes of digits, found (1, 5)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["five.py"]


def test_table_output_for_people(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.pt"
    args = ["compress", "lenet_digits", "--method", "quant", "--bits", "5/6"]
    code = main([*args, "--fp32-epochs", "0", "--epochs", "0", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "lenet_digits: quant 5/6 on digits (360 test samples)" in text
    assert "accuracy integer" in text and "class agreement" in text
    assert f"wrote {out}, {out.with_suffix('.npz')}, {tmp_path / 'p.fp32.pt'}" in text

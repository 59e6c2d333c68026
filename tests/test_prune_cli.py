"""`autochip compress --method prune` end to end on digits (few epochs): MACs fall as stated in
`autochip inspect`, the pruned int8 model builds, bad targets are refused with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autochip.cli import main
from autochip.compress.checkpoint import load_checkpoint, read_checkpoint
from autochip.ir import graph_for

ROOT = Path(__file__).resolve().parents[1]
DEMO_HW = ROOT / "examples" / "hw" / "demo_os8x8_int8.yaml"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["compress", *args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def fp32_lenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained FP32 lenet_digits checkpoint (the <stem>.fp32.pt a quant run writes)."""
    d = tmp_path_factory.mktemp("fp32")
    code = main(
        [
            "compress",
            "lenet_digits",
            "--method",
            "quant",
            "--fp32-epochs",
            "6",
            "--epochs",
            "0",
            "--data",
            "digits",
            "--out",
            str(d / "q.pt"),
        ]
    )
    assert code == 0
    return d / "q.fp32.pt"


def test_l1_ratio_from_a_checkpoint_inspect_and_build(
    fp32_lenet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    out = tmp_path / "p.pt"
    code, text, err = _run(
        capsys, str(fp32_lenet), "--method", "prune", "--ratio", "0.5", "--epochs", "2",
        "--quant-epochs", "1", "--data", "digits", "--out", str(out), "--json",
    )  # fmt: skip
    assert code == 0, err
    r = json.loads(text)
    assert {"accuracy_fp32", "accuracy", "accuracy_integer", "agreement"} <= set(r)
    assert r["macs_after"] <= 0.5 * r["macs_before"] and r["criterion"] == "l1"
    assert r["accuracy_pruned"] > 0.5 and r["accuracy_integer"] > 0.5  # chance is 0.1
    # the IR of both checkpoints (fake-quant and pruned FP32) counts the reduced MACs
    for ckpt in (out, tmp_path / "p.fp32.pt"):
        assert graph_for(str(ckpt)).total_macs == r["macs_after"]
    assert graph_for(str(fp32_lenet)).total_macs == r["macs_before"]
    model, _ = load_checkpoint(out)
    assert model.get_submodule("features.0").weight.shape[0] < 6
    assert read_checkpoint(out)["meta"]["pruned"]["modules"]["features.0"]["out"] < 6
    assert main(["inspect", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_macs"] == r["macs_after"]
    # the pruned int8 model compiles into a core (simulation is the hardware tests' part)
    build = tmp_path / "core"
    assert (
        main(["build", str(out), "--hw", str(DEMO_HW), "--out", str(build), "--images", "1"]) == 0
    )
    plan = json.loads((build / "plan.json").read_text())
    assert plan  # written: the core, the program and its plan


def test_hw_criterion_meets_the_latency_budget(
    fp32_lenet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from autochip.hw.platform import load_platform
    from autochip.predictor import predict

    plat = load_platform("asic-45nm")
    before = predict(graph_for(str(fp32_lenet)), plat.default_hw, plat).total.latency_s
    budget = 0.7 * before
    out = tmp_path / "h.pt"
    code, text, err = _run(
        capsys, str(fp32_lenet), "--method", "prune", "--latency-budget", f"{budget:.9g}",
        "--platform", "asic-45nm", "--epochs", "1", "--quant-epochs", "0", "--data", "digits",
        "--out", str(out), "--json",
    )  # fmt: skip
    assert code == 0, err
    r = json.loads(text)
    assert r["criterion"] == "hw" and r["latency_before_s"] == pytest.approx(before)
    after = predict(graph_for(str(tmp_path / "h.fp32.pt")), plat.default_hw, plat)
    assert after.total.latency_s <= budget and r["latency_after_s"] <= budget


def test_hw_criterion_meets_the_energy_budget(
    fp32_lenet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--energy-budget: the hw greedy lowers predicted energy per inference until the budget
    holds; the pruned checkpoint's energy, predicted afresh, is within it."""
    from autochip.hw.platform import load_platform
    from autochip.predictor import predict

    plat = load_platform("asic-45nm")
    before = predict(graph_for(str(fp32_lenet)), plat.default_hw, plat).total.energy_pj * 1e-12
    budget = 0.6 * before
    out = tmp_path / "e.pt"
    code, text, err = _run(
        capsys, str(fp32_lenet), "--method", "prune", "--energy-budget", f"{budget:.9g}",
        "--platform", "asic-45nm", "--epochs", "1", "--quant-epochs", "0", "--data", "digits",
        "--out", str(out), "--json",
    )  # fmt: skip
    assert code == 0, err
    r = json.loads(text)
    assert r["criterion"] == "hw" and r["energy_before_j"] == pytest.approx(before)
    after = predict(graph_for(str(tmp_path / "e.fp32.pt")), plat.default_hw, plat)
    assert after.total.energy_pj * 1e-12 <= budget and r["energy_after_j"] <= budget
    assert r["macs_after"] < r["macs_before"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ratio", "1.5"], "0 < R < 1"),
        (["--energy-budget", "-1", "--platform", "asic-45nm"], "joules per inference > 0"),
        (["--energy-budget", "1e-6"], "expected --hw HW.yaml or --platform NAME"),
        (["--energy-budget", "1e-18", "--platform", "asic-45nm"], "out of reach"),
        (["--energy-budget", "1e-6", "--latency-budget", "1e-3"], "expected one target"),
        (["--ratio", "0.5", "--macs", "100"], "expected one target"),
        (["--latency-budget", "1e-3"], "expected --hw HW.yaml or --platform NAME"),
        (["--macs", "10"], "out of reach"),
        (["--latency-budget", "1e-12", "--platform", "asic-45nm"], "out of reach"),
        (["--blocks", "1"], "expected identity residual blocks"),
        (["--ratio", "0.5", "--stage-weights", "1,-1"], "--stage-weights: expected"),
        (["--ratio", "0.5", "--stage-weights", "a,b"], "--stage-weights: expected"),
        (
            [
                "--ratio",
                "0.5",
                "--stage-weights",
                "1,2",
                "--criterion",
                "hw",
                "--platform",
                "asic-45nm",
            ],
            "weights the l1 criterion",
        ),
        (
            ["--blocks", "1", "--criterion", "block", "--stage-weights", "1,2"],
            "weights the l1 criterion",
        ),
        (["--macs", "1000", "--stage-weights", "0,0,1"], "out of reach"),
    ],
)
def test_bad_targets_one_error_nothing_written(
    fp32_lenet: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    out = tmp_path / "x.pt"
    code, _, err = _run(capsys, str(fp32_lenet), "--method", "prune", *args, "--out", str(out))
    assert code == 2 and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_pruning_options_need_method_prune(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(
        capsys,
        "lenet_digits",
        "--method",
        "quant",
        "--ratio",
        "0.5",
        "--out",
        str(tmp_path / "a.pt"),
    )
    assert code == 2 and "expected --method prune" in err


BLOCKS_MODEL = """
import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.b1 = Block(8)
        self.b2 = Block(8)
        self.b3 = Block(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.b3(self.b2(self.b1(F.relu(self.stem(x)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build_model():
    return Net()


def example_input():
    return torch.randn(1, 1, 8, 8)
"""


def test_block_criterion_and_early_bird(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "blocks.py"
    model.write_text(BLOCKS_MODEL)
    code, text, err = _run(
        capsys, str(model), "--method", "prune", "--blocks", "2", "--fp32-epochs", "8",
        "--early-bird", "1.0", "--epochs", "1", "--quant-epochs", "0", "--data", "digits",
        "--out", str(tmp_path / "b.pt"), "--json",
    )  # fmt: skip
    assert code == 0, err
    r = json.loads(text)
    assert r["criterion"] == "block" and len(r["removed_blocks"]) == 2
    assert set(r["removed_blocks"]) < {"b1", "b2", "b3"}
    # every mask distance is below 1.0: the early-bird ticket stops after its 3-epoch window
    assert r["fp32_epochs_run"] == 3
    one_block = 8 * 8 * 9 * 64 * 2  # two 3x3 convs of 8 channels on 8x8
    assert r["macs_before"] - r["macs_after"] == 2 * one_block


@pytest.mark.parametrize(
    ("model", "args", "message"),
    [
        ("lenet5_fashion", ["--method", "prune", "--ratio", "1.5"], "0 < R < 1"),
        # ResNet-8 has one identity block (layer1, 39 % of the MACs): 50 % is out of reach
        ("resnet8_fashion", ["--method", "prune", "--ratio", "0.5", "--criterion", "block"],
         "out of reach"),
        ("lenet5_fashion", ["--method", "adder", "--kd", "models/resnet8_fashion.fp32.pt"],
         "--kd-loss pkkd expected MODEL"),
        ("lenet5_fashion", ["--method", "quant", "--kd", "lenet_digits"],
         "expected MODEL's input shape (1, 28, 28), found (1, 8, 8)"),
    ],
)  # fmt: skip
def test_fashion_bad_inputs_one_error_nothing_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    model: str,
    args: list[str],
    message: str,
) -> None:
    """The issue's bad inputs on the shipped Fashion-MNIST checkpoints: a ratio of 1.5, a target
    no pruning reaches, a teacher of another architecture (PKKD pairs layers, so it needs
    MODEL's) or of another input shape."""
    ckpt = str(ROOT / "models" / f"{model}.fp32.pt")
    out = tmp_path / "x.pt"
    code, stdout, err = _run(capsys, ckpt, "--data", "fashion-mnist", *args, "--out", str(out))
    assert code == 2 and stdout == "" and "Traceback" not in err
    assert err.startswith("autochip compress: error:") and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_stage_weights_prune_the_late_layers_harder(
    fp32_lenet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--stage-weights 0.5,1.5``: the same MAC target, the convolutions (first stage) keep a
    larger share of their channels than the fully connected layers (second stage)."""
    capsys.readouterr()
    out = {}
    for name, extra in (("u", []), ("s", ["--stage-weights", "0.5,1.5"])):
        code, text, err = _run(
            capsys, str(fp32_lenet), "--method", "prune", "--ratio", "0.5", "--epochs", "1",
            "--quant-epochs", "0", "--data", "digits", "--out", str(tmp_path / f"{name}.pt"),
            "--json", *extra,
        )  # fmt: skip
        assert code == 0, err
        out[name] = json.loads(text)
        assert out[name]["macs_after"] <= 0.5 * out[name]["macs_before"]
    assert out["s"]["stage_weights"] == [0.5, 1.5] and "stage_weights" not in out["u"]
    mods = {n: read_checkpoint(tmp_path / f"{n}.pt")["meta"]["pruned"]["modules"] for n in out}
    assert mods["s"]["features.0"]["out"] > mods["u"]["features.0"]["out"]
    assert mods["s"]["classifier.1"]["out"] < mods["u"]["classifier.1"]["out"]

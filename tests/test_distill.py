"""Distillation (KD, SKD, PKKD) against independent PyTorch computations, and through the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autochip.cli import main
from autochip.compress import Policy, convert
from autochip.compress.data import Dataset
from autochip.compress.distill import Distiller, kd_loss, skd_loss, spherical
from autochip.compress.policy import LayerPolicy
from autochip.compress.train import TrainConfig, train
from autochip.errors import CompressionError


def _kl_by_hand(p_t: torch.Tensor, log_p_s: torch.Tensor) -> torch.Tensor:
    """KL(p_t || p_s) per sample from the definition, averaged over the batch."""
    return (p_t * (p_t.log() - log_p_s)).sum(dim=1).mean()


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_kd_is_t2_times_kl_of_softened_distributions(temperature: float) -> None:
    torch.manual_seed(0)
    s, t = torch.randn(6, 10) * 3, torch.randn(6, 10) * 3
    p_t = torch.softmax(t / temperature, dim=1)
    p_s = torch.softmax(s / temperature, dim=1)
    expect = temperature**2 * _kl_by_hand(p_t, p_s.log())
    assert kd_loss(s, t, temperature).item() == pytest.approx(expect.item(), rel=1e-5)


def test_skd_is_kd_of_logits_projected_on_a_sphere() -> None:
    torch.manual_seed(1)
    s, t = torch.randn(5, 10) * 4 + 2, torch.randn(5, 10) * 0.5 - 1
    # Independent projection: PyTorch's layer norm (zero mean, unit population variance).
    ps, pt = (2.0 * F.layer_norm(z, (10,), eps=1e-7) for z in (s, t))
    assert torch.allclose(spherical(s), ps, atol=1e-5)
    assert torch.allclose(ps.norm(dim=1), torch.full((5,), 2.0 * 10**0.5), atol=1e-4)
    p_t = torch.softmax(pt, dim=1)
    expect = _kl_by_hand(p_t, torch.log_softmax(ps, dim=1))
    assert skd_loss(s, t).item() == pytest.approx(expect.item(), rel=1e-5)
    # Only the direction counts: scaling or shifting either logit vector changes nothing,
    # while plain KD sees the difference in confidence.
    assert skd_loss(3 * s + 1, 0.2 * t - 5).item() == pytest.approx(expect.item(), rel=1e-4)
    assert kd_loss(3 * s, t).item() != pytest.approx(kd_loss(s, t).item(), rel=1e-2)


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64, 8),
        nn.ReLU(),
        nn.Linear(8, 3),
    )


@pytest.mark.parametrize("kind", ["kd", "skd"])
def test_gradients_reach_the_student_only(kind: str) -> None:
    torch.manual_seed(2)
    student, teacher = _net(), _net()
    d = Distiller(kind, student, teacher)
    x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
    t_out = d.teacher_logits(x, y)
    d.loss(student(x), t_out).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.grad is None for p in teacher.parameters())
    d.remove()
    assert all(p.requires_grad for p in teacher.parameters())


def _toy_data() -> Dataset:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(64, 1, 4, 4, generator=g)
    y = torch.randint(0, 3, (64,), generator=g)
    return Dataset("toy", x, y, x, y, ("a", "b", "c"))


@pytest.mark.parametrize(("kind", "teacher_moves"), [("kd", False), ("skd", False), ("pkkd", True)])
def test_training_with_a_teacher(kind: str, teacher_moves: bool) -> None:
    """KD and SKD leave the teacher untouched; PKKD trains it on the labels (progressive)."""
    torch.manual_seed(4)
    teacher = _net()
    method = "adder" if kind == "pkkd" else "mac"
    student = convert(teacher, Policy(default=LayerPolicy(method, 8, 8)))
    before = [p.detach().clone() for p in teacher.parameters()]
    s_before = [p.detach().clone() for p in student.parameters()]
    train(student, _toy_data(), TrainConfig(epochs=1, batch_size=16), teacher=teacher, kd_loss=kind)
    moved = any(not torch.equal(a, b) for a, b in zip(before, teacher.parameters(), strict=True))
    assert moved is teacher_moves
    assert any(not torch.equal(a, b) for a, b in zip(s_before, student.parameters(), strict=True))


def test_pkkd_without_adder_layers_is_an_error() -> None:
    with pytest.raises(CompressionError, match=r"--kd-loss pkkd: expected adder layers"):
        Distiller("pkkd", _net(), _net())
    with pytest.raises(CompressionError, match=r"expected one of kd, skd, pkkd, found 'mse'"):
        Distiller("mse", _net(), _net())


# CLI: each method distils from a teacher of another architecture (same input and classes) when
# --kd-any-arch asks for it.
@pytest.mark.parametrize(
    ("method", "kd_loss", "extra"),
    [
        ("quant", "kd", []),
        ("binary", "skd", []),
        ("adder", "kd", []),
        ("prune", "skd", ["--ratio", "0.5", "--quant-epochs", "1"]),
    ],
)
def test_cli_accepts_kd_for_each_method(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], method: str, kd_loss: str, extra: list[str]
) -> None:
    out = tmp_path / "s.pt"
    argv = ["compress", "lenet_digits", "--method", method, "--kd", "dwsep_digits", *extra]
    argv += ["--kd-any-arch"]
    argv += ["--kd-loss", kd_loss, "--fp32-epochs", "1", "--epochs", "1", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    from autochip.compress.checkpoint import read_checkpoint

    meta = read_checkpoint(out)["meta"]
    assert (meta["method"], meta["kd"], meta["kd_loss"]) == (method, "dwsep_digits", kd_loss)


def test_cli_pkkd_from_a_checkpoint_teacher(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["compress", "lenet_digits", "--fp32-epochs", "1", "--epochs", "1"]
    assert main([*base, "--method", "quant", "--out", str(tmp_path / "q.pt")]) == 0
    teacher = str(tmp_path / "q.fp32.pt")
    out = tmp_path / "a.pt"
    assert main([*base, "--method", "adder", "--kd", teacher, "--out", str(out)]) == 0
    from autochip.compress.checkpoint import read_checkpoint

    assert read_checkpoint(out)["meta"]["kd_loss"] == "pkkd"  # the default for adder
    capsys.readouterr()


_TEN_TO_FOUR = """
import torch
from torch import nn

def build_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 4))

def example_input():
    return torch.rand(1, 1, 8, 8)
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "quant", "--kd", "{four}"], r"expected logits of shape \(1, 10\) like MODEL"),
        (["--method", "quant", "--kd", "mlp"], r"expected MODEL's input shape \(1, 8, 8\)"),
        (["--method", "quant", "--no-kd", "--kd-loss", "skd"], r"expected no --no-kd beside"),
        (["--method", "quant", "--no-kd", "--kd", "mlp"], r"expected one of them, found both"),
        (["--method", "binary", "--kd", "lenet_digits", "--kd-loss", "pkkd"], r"--method adder"),
        (["--method", "adder", "--kd", "dwsep_digits"], r"pkkd expected MODEL 'lenet_digits'"),
        (["--method", "quant", "--kd", "dwsep_digits"], r"pass --kd-any-arch"),
        (["--method", "prune", "--ratio", "0.5", "--kd", "dwsep_digits"], r"pass --kd-any-arch"),
    ],
)
def test_bad_teacher_is_one_clear_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    four = tmp_path / "models" / "four.py"
    four.parent.mkdir()
    four.write_text(_TEN_TO_FOUR)
    outdir = tmp_path / "out"
    outdir.mkdir()
    argv = ["compress", "lenet_digits", "--fp32-epochs", "0", "--out", str(outdir / "x.pt")]
    code = main(argv + [a.format(four=four) for a in args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("autochip compress: error:") and "Traceback" not in err
    assert re.search(message, err), err
    assert list(outdir.iterdir()) == []

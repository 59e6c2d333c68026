"""Compressed Fashion-MNIST LeNet-5s on the core: `autochip build`, then simulation, bit-exact.

The shipped FP32 checkpoint (models/lenet5_fashion.fp32.pt) is compressed four ways with
``autochip.compress`` — int8, binary (xnor middle layers), adder (int8 AdderNet middle layers)
and L1 filter pruning to half the MACs followed by int8 — calibrated on Fashion-MNIST training
images and exported (no fine-tuning: bit-exactness does not depend on accuracy; the trained
models' accuracies are in docs/compression.md). The binary model has the batch-norms
``--method binary`` inserts before its binarisers, a third of their scales negated so that the
thresholds' flips are exercised. Each integer model is built with the CLI
(`autochip build`) and run on two test images with :func:`simulate_core`, the function behind
`autochip sim`, given one folder for the compiled simulator so that the three models on the MAC
core share one Verilator build (the adder core is the second). Every layer's output must equal
autochip.reference's, and every layer's measured cycles must equal the prediction.
"""

from __future__ import annotations

import contextlib
import io
import json
from functools import cache
from pathlib import Path

import pytest
import torch

from autochip.builder.core_sim import simulate_core
from autochip.cli import main
from autochip.compress.checkpoint import load_checkpoint
from autochip.compress.convert import convert
from autochip.compress.data import load_fashion_mnist
from autochip.compress.export import export_integer
from autochip.compress.policy import policy_for_method
from autochip.compress.prune import analyse, apply_plan, l1_importance, plan_for_macs, traced_macs
from autochip.compress.train import calibrate, seed_everything
from autochip.reference import IntegerModel, quantize_input, save_integer_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CKPT = ROOT / "models" / "lenet5_fashion.fp32.pt"
# The demo core's 2 KB per ifmap row copy cannot hold LeNet-5's 4,704-byte first feature map:
# these 4x4 cores have 6 KB per row copy (see the YAML files).
MAC = HERE / "core_fashion4x4.yaml"
ADDER = HERE / "core_fashion_adder4x4.yaml"
IMAGES = 2
# id, compression method, pruned to half the MACs first, core, layer mode that must appear
MODELS = (
    ("int8", "quant", False, MAC, "mac"),
    ("binary", "binary", False, MAC, "binary"),
    ("adder", "adder", False, ADDER, "adder"),
    ("pruned-int8", "quant", True, MAC, "mac"),
)


@cache
def _data() -> tuple[torch.Tensor, torch.Tensor]:
    d = load_fashion_mnist(limit=256)
    return d.x_train, d.x_test


@cache
def _integer(method: str, pruned: bool) -> tuple[IntegerModel, int, int]:
    """(integer model, MACs of the float model it came from, MACs of the unpruned one)."""
    seed_everything(0)
    torch.set_num_threads(1)
    model, example = load_checkpoint(CKPT)
    macs_before = traced_macs(model, example)
    if pruned:
        an = analyse(model, example)
        plan, _ = plan_for_macs(model, an, l1_importance(model, an), macs_before // 2)
        model = apply_plan(model, an, plan)
    macs = traced_macs(model, example)
    x_train, _ = _data()
    student = convert(model.eval(), policy_for_method(method))
    calibrate(student, x_train)
    if method == "binary":
        # The batch-norms before the binarisers (Policy.binary_bn) fold into thresholds; a
        # negative scale (every third channel here) becomes the core's threshold flip.
        bns = [
            m
            for m in student.modules()
            if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d)
        ]
        assert len(bns) == 3
        with torch.no_grad():
            for bn in bns:
                bn.weight[::3] = -bn.weight[::3]
    integer = export_integer(student, example)
    if method == "binary":
        flips = [op.threshold.flip for op in integer.ops if getattr(op, "threshold", None)]
        assert len(flips) == 3 and all(f.any() and not f.all() for f in flips)
    return integer, macs, macs_before


def _cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fashion_sim")


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "method", "pruned", "hw", "mode"), MODELS, ids=[m[0] for m in MODELS]
)
def test_compressed_fashion_lenet_is_bit_exact_on_the_core(
    tmp_path: Path, sim_dir: Path, name: str, method: str, pruned: bool, hw: Path, mode: str
) -> None:
    model, macs, macs_before = _integer(method, pruned)
    if pruned:
        assert macs <= macs_before // 2, (macs, macs_before)
    save_integer_model(model, tmp_path / f"{name}.npz")
    code, text = _cli(
        ["build", str(tmp_path / f"{name}.npz"), "--hw", str(hw), "--out", str(tmp_path / "core"),
         "--images", str(IMAGES), "--json"]
    )  # fmt: skip
    assert code == 0, text
    build = json.loads(text)
    _, x_test = _data()
    x = quantize_input(model, x_test[:IMAGES].numpy())
    rep = simulate_core(tmp_path / "core", model, x, sim_dir=sim_dir)
    assert rep.images == IMAGES
    assert [lay.name for lay in rep.layers] == [lay["name"] for lay in build["layers"]]
    bad = [(lay.name, lay.mismatches) for lay in rep.layers if not lay.bit_exact]
    assert not bad, f"{name}: outputs differ from autochip.reference: {bad}"
    assert rep.bit_exact
    # every layer exactly as the cycle model says (the issue asks 2 %)
    off = [(lay.name, lay.cycles_measured, lay.cycles_predicted) for lay in rep.layers
           if lay.cycles_predicted != lay.cycles_measured]  # fmt: skip
    assert not off, f"{name}: layers (measured, predicted) off the cycle model: {off}"
    modes = {lay.get("mode") for lay in build["layers"]}
    assert mode in modes, modes

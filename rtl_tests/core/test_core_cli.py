"""`autochip build` and `autochip sim --json` as a user runs them, on Verilator and on Icarus.

The integer model is a trained int8 LeNet (digits); the build folder is simulated through the
CLI on both simulators: each must report bit-exact outputs, the same measured cycles per layer
(the RTL's timing does not depend on the simulator), and predictions within 2%. The files the
simulation writes (outputs.npy, and layers.npz with --dump) must equal autochip.reference's.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from autochip.cli import main
from autochip.reference import load_integer_model, run, save_integer_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from core_models import digits_inputs, integer_model  # noqa: E402

HW = ROOT / "examples" / "hw" / "demo_os8x8_int8.yaml"


def _cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("core_cli")
    model = integer_model("lenet_digits", "quant")
    save_integer_model(model, folder / "lenet_int8.npz")
    two = digits_inputs(model, 2, offset=100)
    np.save(folder / "two.npy", two)
    np.save(folder / "one.npy", two[:1])  # Icarus is the slow cross-check: one input
    code, text = _cli(
        ["build", str(folder / "lenet_int8.npz"), "--hw", str(HW), "--out", str(folder / "core"),
         "--images", "3", "--json"]
    )  # fmt: skip
    assert code == 0, text
    (folder / "build.json").write_text(text)
    return folder


@pytest.mark.sim
@pytest.mark.slow
def test_sim_json_on_verilator_and_icarus(built: Path) -> None:
    build = json.loads((built / "build.json").read_text())
    reports = {}
    for simulator in ("verilator", "icarus"):
        (built / "core" / "outputs.npy").unlink(missing_ok=True)
        dump = ["--dump"] if simulator == "verilator" else []
        inputs = built / ("two.npy" if simulator == "verilator" else "one.npy")
        code, text = _cli(
            ["sim", str(built / "core"), "--input", str(inputs),
             "--simulator", simulator, "--json", *dump]
        )  # fmt: skip
        rep = json.loads(text)
        assert code == 0 and rep["bit_exact"] is True, text
        layers = rep["layers"]
        assert [lay["name"] for lay in layers] == [lay["name"] for lay in build["layers"]]
        predicted = [lay["cycles_predicted"] for lay in build["layers"]]
        assert [lay["cycles_predicted"] for lay in layers] == predicted
        assert rep["cycles_total"] >= sum(lay["cycles_measured"] for lay in layers)
        for lay in layers:
            err = abs(lay["cycles_predicted"] - lay["cycles_measured"]) / lay["cycles_measured"]
            assert err <= 0.02, lay
        reports[simulator] = rep
        _check_written_tensors(built, inputs, with_layers=bool(dump))
    measured = {s: [lay["cycles_measured"] for lay in r["layers"]] for s, r in reports.items()}
    assert measured["verilator"] == measured["icarus"]
    assert reports["verilator"]["cycles_total"] == reports["icarus"]["cycles_total"]


def _check_written_tensors(built: Path, inputs: Path, with_layers: bool) -> None:
    """outputs.npy (and layers.npz) hold what autochip.reference computes for the inputs."""
    model = load_integer_model(built / "core" / "model.npz")
    x = np.load(inputs)
    refs = [run(model, image[None], dump=True)[1] for image in x]
    outputs = np.load(built / "core" / "outputs.npy")
    want = np.stack([np.asarray(r[model.output]).reshape(-1) for r in refs])
    assert outputs.shape == want.shape and np.array_equal(outputs, want)
    if with_layers:
        with np.load(built / "core" / "layers.npz") as layers:
            assert model.output in layers.files and len(layers.files) >= 5
            for name in layers.files:
                ref = np.stack([np.asarray(r[name]).reshape(np.asarray(r[name]).shape[1:])
                                for r in refs])  # fmt: skip
                assert np.array_equal(layers[name], ref), name


def test_sim_refuses_a_folder_that_is_not_a_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "expected a folder written by `autochip build` (plan.json), found none" in err

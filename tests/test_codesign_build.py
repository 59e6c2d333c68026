"""`autochip codesign --build`: the chosen design built and simulated in Verilator, bit-exact
against its integer model (markers ``sim`` and ``slow``). ``--fixed-hw`` pins the core to
``examples/hw/demo_os8x8_int8.yaml`` (the demo's core) so the compiled Verilator model is the
one ``rtl_tests/core/test_core_sim.py`` and the demo build (the model cache shares it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from autochip.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.sim
@pytest.mark.slow
def test_codesign_builds_and_simulates_the_chosen_design(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"compression": {"bits": ["8/8"], "prune": [0, 0.5]}}))
    hw = ROOT / "examples" / "hw" / "demo_os8x8_int8.yaml"
    out = tmp_path / "out"
    args = ["codesign", "lenet_digits", "--data", "digits", "--platform", "pynq-z2",
            "--val-images", "300", "--fp32-epochs", "3", "--batch-size", "32", "--epochs", "1",
            "--space", str(space), "--fixed-hw", str(hw), "--cache", str(tmp_path / "cache"),
            "--out", str(out), "--build", "--sim-images", "3", "--max-loss", "100",
            "--json"]  # fmt: skip
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    # every candidate on the one fixed core; the chosen one is the fastest within the loss
    for c in res["candidates_measured"]:
        assert c["chosen"]["hw"]["array"] == {"rows": 8, "cols": 8}
    ch = res["chosen"]
    assert ch["candidate"]["prune"] == 0.5  # --max-loss 100: the fewest MACs is the fastest
    sim = res["build"]["sim"]
    assert res["build"]["images"] == 3
    assert sim["bit_exact"] and all(lay["bit_exact"] for lay in sim["layers"])
    assert (
        sim["cycles_predicted_total"]
        == ch["latency_s"] * 100e6
        == pytest.approx(ch["latency_s"] * 1e8)
    )
    assert (out / "build" / "outputs.npy").is_file()
    saved = json.loads((out / "codesign.json").read_text())
    assert saved["build"]["sim"]["bit_exact"]


@pytest.mark.synth
@pytest.mark.slow
def test_codesign_synthesises_the_chosen_core(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--synth``: Yosys on the chosen core (a small fixed one, to keep it to a minute or
    two): synthesised LUT/FF/DSP/BRAM beside the core model's prediction, and whether they fit
    the budget (the caps, not the search's margin)."""
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"compression": {"bits": ["8/8"], "prune": [0]}}))
    hw = tmp_path / "tiny.yaml"
    hw.write_text(yaml.safe_dump({
        "name": "tiny", "pe": {"kind": "mac", "dtype": "int", "w_bits": 8, "a_bits": 8,
                               "acc_bits": 32},
        "array": {"rows": 2, "cols": 2}, "dataflow": "os",
        "buffers": {b: {"size_kb": 2} for b in ("ifmap", "weight", "ofmap")},
        "dram": {"bandwidth": 4}, "clock_mhz": 100}))  # fmt: skip
    out = tmp_path / "out"
    args = ["codesign", "lenet_digits", "--data", "digits", "--platform", "pynq-z2",
            "--budget", "lut=20000,dsp=30", "--val-images", "300", "--fp32-epochs", "3",
            "--batch-size", "32", "--epochs", "1", "--space", str(space), "--fixed-hw", str(hw),
            "--cache", str(tmp_path / "cache"), "--out", str(out), "--synth",
            "--json"]  # fmt: skip
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    syn = res["synth"]
    got, pred = syn["synthesised"], syn["predicted"]
    assert pred == res["chosen"]["resources"]
    assert set(got) == {"lut", "ff", "dsp", "bram"} and got["lut"] > 0 and got["ff"] > 0
    caps = {"lut": 20000, "dsp": 30}
    assert syn["fits"] == all(got[k] <= caps[k] for k in caps)
    for k in ("lut", "ff"):  # the whole-core model (docs/core.md: within 10 % held out)
        assert abs(syn["error"][k]) <= 0.15, (k, got[k], pred[k])
    assert json.loads((out / "codesign.json").read_text())["synth"] == syn

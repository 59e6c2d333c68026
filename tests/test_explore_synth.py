"""One synthesis: the chosen core of a small search, synthesised with Yosys, fits its budget and
matches the core model's resources (the ``synth`` marker; about a minute)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from autochip.cli import main


@pytest.mark.synth
def test_chosen_core_synthesises_within_its_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"rows": [1, 2], "cols": [2, 4], "ifmap_kb": [2, 4],
                                     "weight_kb": [1, 2], "ofmap_kb": [1]}))  # fmt: skip
    budget = "lut=7000,dsp=40,bram=16"
    args = ["explore", "lenet_digits", "--platform", "pynq-z2", "--budget", budget,
            "--space", str(space), "--synth", "--top-k", "1", "--json"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    (syn,) = out["synthesis"]
    assert syn["fits"], syn["summary"]
    caps = {"lut": 7000, "dsp": 40, "bram": 16, "ff": 106400}
    assert all(syn["synthesised"][k] <= caps[k] for k in caps)
    same = ("pe", "array", "buffers", "clock_mhz")
    assert {k: syn["hw"][k] for k in same} == {k: out["chosen"]["hw"][k] for k in same}
    # the core model's whole-core prediction within 15% of Yosys (docs/core.md's bound)
    for k in ("lut", "ff"):
        assert abs(syn["error"][k]) <= 0.15, (k, syn["predicted"][k], syn["synthesised"][k])

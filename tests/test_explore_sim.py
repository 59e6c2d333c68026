"""`autochip explore --simulate`: the chosen core built and run in Verilator, measured against
the search's prediction (markers ``sim`` and ``slow``).

The space is pinned to one design, the 8 x 8 core with tiny buffers and a 4-byte bus of
``rtl_tests/core/core_small8x8.yaml``, so the compiled Verilator model is the one
``rtl_tests/core/test_core_sim.py`` builds (the model cache shares it); the network is that
test's odd-shape integer model (grouped and depthwise layers in several passes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from autochip.cli import main
from autochip.reference import save_integer_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "rtl_tests" / "core"))
from core_models import random_model  # noqa: E402


@pytest.mark.sim
@pytest.mark.slow
def test_explore_simulate_measures_the_chosen_core(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    npz = tmp_path / "odd.npz"
    save_integer_model(random_model(), npz)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"rows": [8], "cols": [8], "ifmap_kb": [2.5],
                                     "weight_kb": [0.625], "ofmap_kb": [0.5],
                                     "bus_bytes": [4]}))  # fmt: skip
    args = ["explore", str(npz), "--platform", "pynq-z2", "--space", str(space), "--simulate",
            "--json"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    chosen, sim = out["chosen"], out["simulation"]
    assert chosen["hw"]["array"] == {"rows": 8, "cols": 8}
    assert chosen["hw"]["dram"]["bandwidth"] == 4
    assert sim["simulator"] == "verilator" and sim["images"] == 2
    assert sim["bit_exact"] and all(lay["bit_exact"] for lay in sim["layers"])
    # the search's cycles are the core model's, which the simulation measures: per layer
    # within 2 % (docs/core.md), and the same model total as the simulator's prediction
    assert chosen["cycles"] == sim["cycles_predicted_total"]  # per inference
    for lay in sim["layers"]:
        err = abs(lay["cycles_predicted"] - lay["cycles_measured"]) / lay["cycles_measured"]
        assert err <= 0.02, lay


@pytest.mark.parametrize("fail", [False, True])
def test_simulate_chosen_removes_its_build_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: bool
) -> None:
    """``explore --simulate`` builds the chosen core in a temporary folder: gone afterwards,
    also when the simulation fails (the simulator itself replaced; the build is real)."""
    from autochip.builder import core_sim
    from autochip.builder.finalists import simulate_chosen

    npz = tmp_path / "odd.npz"
    save_integer_model(random_model(), npz)
    hw = yaml.safe_load((ROOT / "rtl_tests" / "core" / "core_small8x8.yaml").read_text())
    seen: list[Path] = []

    class Report:
        def as_dict(self) -> dict[str, object]:
            return {"bit_exact": True}

    def fake(build_dir: Path, *args: object, **kw: object) -> Report:
        seen.append(Path(build_dir))
        assert (Path(build_dir) / "plan.json").is_file()  # the real build is there
        if fail:
            raise RuntimeError("simulator crashed")
        return Report()

    monkeypatch.setattr(core_sim, "simulate_core", fake)
    if fail:
        with pytest.raises(RuntimeError, match="simulator crashed"):
            simulate_chosen(str(npz), hw)
    else:
        assert simulate_chosen(str(npz), hw) == {"bit_exact": True}
    (build,) = seen
    assert not build.exists() and not build.parent.exists()

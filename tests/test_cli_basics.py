"""What users expect of the command line: --version, list, progress only on a terminal,
a readable --plot, and fractions (not percent) in JSON.

Authorities: the package metadata (version), platforms.yaml and the zoo folder (list), the
terminal test of the progress helper (a fake terminal gets the stage labels, a pipe gets
nothing), the PNG's own size (rows per layer), and REFERENCE.md's SCALE-Sim golden case
(mapping efficiency 94.531 %, compute utilisation 90.78 %) for the JSON fractions.
"""

from __future__ import annotations

import io
import json
import struct
import sys
from importlib import metadata, resources
from pathlib import Path

import pytest
import yaml

from autochip import _progress
from autochip.cli import main
from autochip.hw.platform import load_platform
from autochip.ir.loader import zoo_names
from autochip.predictor.scalesim_ref import write_scalesim_config
from autochip.reference import save_integer_model

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "hw" / "demo_os8x8_int8.yaml"
sys.path.insert(0, str(ROOT / "rtl_tests" / "core"))
from core_models import random_model  # noqa: E402


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> object:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0  # argparse's exit is returned in-process
    assert capsys.readouterr().out == f"autochip {metadata.version('autochip')}\n"


def test_list_platforms_names_every_device_with_its_boards(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = yaml.safe_load(
        resources.files("autochip.hw").joinpath("data", "platforms.yaml").read_text()
    )
    rows = _json(["list", "platforms", "--json"], capsys)
    assert isinstance(rows, list)
    assert {r["name"] for r in rows} == set(data["fpga"]) | set(data["asic"])
    for r in rows:
        for alias in r["aliases"]:
            assert load_platform(alias).default_hw == load_platform(r["name"]).default_hw
        if r["kind"] == "fpga":
            d = data["fpga"][r["name"]]
            assert (r["lut"], r["dsp"], r["bram"]) == (d["lut"], d["dsp"], d["bram"]["count"])
            assert sorted(r["aliases"]) == sorted(d.get("boards", []))
    assert main(["list", "platforms"]) == 0
    table = capsys.readouterr().out
    assert all(r["name"] in table for r in rows) and "pynq-z2" in table


def test_list_models_is_the_zoo(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json(["list", "models", "--json"], capsys)
    assert isinstance(rows, list)
    assert [r["name"] for r in rows] == zoo_names()
    assert all(r["description"] and Path(r["path"]).is_file() for r in rows)
    resnet = next(r for r in rows if r["name"] == "resnet18")
    assert resnet["description"].startswith("ResNet-18 (He")
    assert main(["list", "models"]) == 0
    table = capsys.readouterr().out
    assert all(name in table for name in zoo_names())


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    npz = tmp_path / "m.npz"
    save_integer_model(random_model(), npz)
    argv = ["build", str(npz), "--hw", str(DEMO), "--images", "1", "--json"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    piped = capsys.readouterr()
    # a pipe or log file gets no bar: stderr holds at most whole warning lines (the Fmax model's)
    assert all(line.startswith("warning: ") for line in piped.err.splitlines()), piped.err
    json.loads(piped.out)

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    drawn = terminal.getvalue()
    for label in ("build: compile", "build: render RTL", "build: write", "/3 stages"):
        assert label in drawn, drawn
    json.loads(capsys.readouterr().out)  # --json on stdout is untouched by the bar

    terminal.truncate(0)
    assert main(["predict", "lenet_digits", "--platform", "xc7z020", "--json"]) == 0
    assert "predict: load lenet_digits" in terminal.getvalue()
    assert "predict: cost" in terminal.getvalue()
    json.loads(capsys.readouterr().out)


def test_stages_complete_and_accept_more_labels_than_announced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with _progress.Stages("job", 2) as step:
        assert step.drawn
        step("one")
        step("two")
        step("three")  # one more than announced: shown, the count stays at 2 of 2
        assert step._bar.n == 2
    text = terminal.getvalue()
    assert "job: three" in text and "3/2" not in text
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with _progress.Stages("job", 2) as step:
        assert not step.drawn


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


DEEP = """
import torch
from torch import nn

def build_model():
    layers = [nn.Conv2d(3, 8, 3, padding=1)]
    for _ in range(31):
        layers += [nn.Conv2d(8, 8, 3, padding=1), nn.MaxPool2d(1)]
    return nn.Sequential(*layers)

def example_input():
    return torch.zeros(1, 3, 8, 8)
"""


def test_plot_gives_every_layer_a_readable_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 63-layer network (ResNet-50 has 72 rows): the figure grows with the layer count so
    that each layer's row is at least 15 pixels high (7-point labels are about 10 pixels)."""
    model = tmp_path / "deep.py"
    model.write_text(DEEP)
    png = tmp_path / "deep.png"
    out = _json(["predict", str(model), "--platform", "xc7z020", "--plot", str(png), "--json"],
                capsys)  # fmt: skip
    assert isinstance(out, dict)
    rows = len(out["layers"])
    assert rows == 63
    width, height = _png_size(png)
    assert width >= 1200 and height / rows >= 15
    small = tmp_path / "small.png"
    assert main(["predict", "lenet_digits", "--platform", "xc7z020", "--plot", str(small)]) == 0
    assert _png_size(small)[1] < height / 2


def test_json_has_fractions_not_percent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """REFERENCE.md's SCALE-Sim golden case (alexnet_part on a 32x32 ws array): mapping
    efficiency 94.531 %, compute utilisation 90.78 %, reported as 0.94531 and 0.9078."""
    cfg = tmp_path / "scale.cfg"
    write_scalesim_config(cfg, 32, 32, "ws", (64, 64, 64), None)
    topo = tmp_path / "alexnet_part.csv"
    topo.write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
        "Num Filter, Strides,\nConv1, 224, 224, 11, 11, 3, 96, 4,\n"
    )
    out = _json(["predict", "--scalesim-config", str(cfg), "--scalesim-topology", str(topo),
                 "--json"], capsys)  # fmt: skip
    assert isinstance(out, dict)
    (layer,) = out["layers"]
    assert layer["mapping_efficiency"] == pytest.approx(0.94531, abs=1e-5)
    assert layer["compute_utilization"] == pytest.approx(0.9078, abs=1e-4)
    assert 0 < layer["utilization"] <= 1
    est = _json(["predict", "lenet_digits", "--platform", "xc7z020", "--json"], capsys)
    assert isinstance(est, dict)
    for row in est["layers"]:
        assert 0 <= row["utilization"] <= 1 and 0 <= row["mapping_efficiency"] <= 1

"""`autochip inspect`: table, --json, --csv, --save; errors exit 2 with one message."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import autochip.ir as ir
from autochip import cli

NET = """
import torch
from torch import nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=2, dilation=2, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.norm = nn.LayerNorm(16)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))
        y = torch.cat([y, self.dw(y)], dim=1) + 1.0
        y = self.pool(y)                       # 16 x 4 x 4
        t = y.view(y.shape[0], 16, 16).transpose(1, 2)
        return self.fc(self.norm(t))


def build_model():
    return Net()


def example_input():
    return torch.randn(2, 3, 7, 7)
"""

# conv 3->8 3x3 on 7x7 (2*8*49*27), depthwise (2*8*49*9), linear over (2, 16 tokens, 16)
NET_MACS = 2 * 8 * 49 * 27 + 2 * 8 * 49 * 9 + 2 * 16 * 16 * 4
NET_PARAMS = 8 * 27 + 16 + (8 * 9 + 8) + 32 + (16 * 4 + 4)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run the real CLI entry point in-process."""

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli.main(["inspect", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def net_file(tmp_path: Path) -> str:
    path = tmp_path / "outside_net.py"
    path.write_text(NET)
    return str(path)


def test_json_has_the_specified_fields(run, net_file: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(net_file, "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["total_macs"] == NET_MACS
    assert data["total_params"] == NET_PARAMS
    assert isinstance(data["total_macs"], int) and isinstance(data["total_params"], int)
    layers = data["layers"]
    assert {"name", "kind", "macs", "params", "input_shapes", "output_shape"} <= set(layers[0])
    assert sum(layer["macs"] for layer in layers) == NET_MACS
    assert sum(layer["params"] for layer in layers) == NET_PARAMS
    by_name = {layer["name"]: layer for layer in layers}
    assert by_name["conv"]["input_shapes"] == [[2, 3, 7, 7]]
    assert by_name["conv"]["output_shape"] == [2, 8, 7, 7]
    assert by_name["conv"]["params"] == 8 * 27 + 16  # batch-norm folded into it
    assert by_name["pool"]["output_shape"] == [2, 16, 4, 4]  # ceil mode: 7 / 2 -> 4
    assert by_name["fc"]["input_shapes"] == [[2, 16, 16]]
    assert by_name["cat"]["kind"] == "concat"


def test_json_totals_of_a_zoo_model(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("resnet20", "--json")
    data = json.loads(out)
    assert (code, data["total_macs"], data["total_params"]) == (0, 40_551_040, 269_722)


def test_table_and_csv(run, net_file: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    csv_path = tmp_path / "layers.csv"
    code, out, err = run(net_file, "--csv", str(csv_path))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "model outside_net  input 2x3x7x7  traced with fx"
    assert lines[2].split() == [
        "layer",
        "kind",
        "input",
        "output",
        "MACs",
        "params",
        "arith",
        "notes",
    ]
    conv_row = next(line for line in lines if line.startswith("conv "))
    assert "2x3x7x7" in conv_row and f"{2 * 8 * 49 * 27:,}" in conv_row and "+bn +relu" in conv_row
    total = next(line for line in lines if line.startswith("total"))
    assert total.split() == ["total", f"{NET_MACS:,}", f"{NET_PARAMS:,}"]
    assert f"wrote layer table to {csv_path}" in out
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows][:2] == ["conv", "dw"]
    assert sum(int(r["macs"]) for r in rows) == NET_MACS
    assert sum(int(r["params"]) for r in rows) == NET_PARAMS


def test_raw_shows_the_graph_before_passes(run, net_file: str) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(net_file, "--raw", "--json")
    kinds = [layer["kind"] for layer in json.loads(out)["layers"]]
    assert code == 0 and "batchnorm" in kinds and "activation" in kinds


def test_save_and_reinspect_a_graph(run, net_file: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    saved = tmp_path / "net.json"
    assert run(net_file, "--save", str(saved))[0] == 0
    assert ir.load_graph(saved).total_macs == NET_MACS
    code, out, _ = run(str(saved), "--json")
    assert code == 0 and json.loads(out)["total_params"] == NET_PARAMS


def test_pt2_file(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten())
    path = tmp_path / "small.pt2"
    torch.export.save(torch.export.export(model.eval(), (torch.randn(1, 1, 5, 5),)), str(path))
    code, out, _ = run(str(path), "--json")
    data = json.loads(out)
    assert (code, data["frontend"], data["total_macs"]) == (0, "export", 2 * 9 * 9)
    assert data["total_params"] == 20


def test_errors_exit_2_with_one_message(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run("no_such_model")
    assert code == 2 and out == ""
    assert err.startswith("autochip inspect: error: unknown model 'no_such_model': expected a "
                          "zoo name (alexnet, ")  # fmt: skip
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1

    bad = tmp_path / "sorter.py"
    bad.write_text(NET.replace("return self.fc(self.norm(t))", "return torch.sort(t).values"))
    code, out, err = run(str(bad))
    assert code == 2 and out == "" and "Traceback" not in err
    line = bad.read_text().splitlines().index("        return torch.sort(t).values") + 1
    assert err.startswith("autochip inspect: error: unsupported operator 'torch.sort' at node "
                          f"'sort' ({bad}:{line}: return torch.sort(t).values)")  # fmt: skip


def test_nothing_is_written_when_an_output_path_is_bad(run, net_file: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good_csv = tmp_path / "ok.csv"
    code, _, err = run(net_file, "--csv", str(good_csv), "--save", str(tmp_path / "no" / "g.json"))
    assert code == 2 and not good_csv.exists()
    assert err.startswith("autochip inspect: error: --save: expected the directory")
    code, _, err = run(net_file, "--csv", str(tmp_path))
    assert code == 2 and "expected a file path, found the directory" in err
    assert list(tmp_path.iterdir()) == [Path(net_file)]


def test_a_fresh_process_prints_no_traceback(tmp_path: Path) -> None:
    """As a user runs it: ``python -m autochip inspect`` on a model with an LSTM."""
    model = tmp_path / "rnn.py"
    model.write_text(
        "import torch\n"
        "class Tagger(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.rnn = torch.nn.LSTM(4, 4)\n"
        "    def forward(self, x):\n"
        "        return self.rnn(x)[0]\n"
        "def build_model():\n    return Tagger()\n"
        "def example_input():\n    return torch.randn(3, 1, 4)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "autochip", "inspect", str(model)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(
        f"autochip inspect: error: unsupported operator 'nn.LSTM' at node 'rnn' ({model}:7: "
        "return self.rnn(x)[0]): recurrent layers have no mapping onto the array"
    )
    assert "recurrent layers have no mapping onto the array" in proc.stderr
    assert "Traceback" not in proc.stderr

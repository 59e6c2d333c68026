"""JSON save/load: lossless round trip, deterministic text, clear errors on bad files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import autochip.ir as ir
from autochip.errors import GraphError
from autochip.ir.serialize import graph_to_dict


class Mixed(nn.Module):
    """Attributes of many kinds: floats, lists, bools, fused activations, dynamic matmuls."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=2, dilation=2, groups=3)
        self.act = nn.LeakyReLU(0.125)
        self.pool = nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False)
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(self.act(self.conv(x)))
        t = self.norm(y.flatten(2)[..., :4])
        return torch.softmax(self.fc(t) @ t.transpose(1, 2) * 0.5, dim=-1)


@pytest.fixture(scope="module")
def graphs() -> list[ir.AccelGraph]:
    raw = ir.trace(Mixed(), torch.randn(2, 3, 9, 9), "mixed")
    zoo = ir.load_model("resnet20")
    return [raw, ir.run_passes(raw), ir.run_passes(ir.trace(zoo.model, zoo.example_input, "r20"))]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_round_trip_is_lossless(index: int, graphs: list[ir.AccelGraph], tmp_path: Path) -> None:
    graph = graphs[index]
    path = ir.save_graph(graph, tmp_path / "g.json")
    back = ir.load_graph(path)
    assert back.name == graph.name and back.attrs == graph.attrs
    assert back.nodes() == graph.nodes()
    assert sorted(back.nx.edges) == sorted(graph.nx.edges)
    assert back.total_macs == graph.total_macs and back.total_params == graph.total_params
    # saving the loaded graph gives the same bytes: output is deterministic
    assert ir.save_graph(back, tmp_path / "again.json").read_text() == path.read_text()


def test_leaky_slope_and_float_attrs_survive(tmp_path: Path) -> None:
    graph = ir.run_passes(ir.trace(Mixed(), torch.randn(1, 3, 9, 9)))
    back = ir.load_graph(ir.save_graph(graph, tmp_path / "g.json"))
    assert back["conv"].attrs["negative_slope"] == 0.125
    assert back["conv"].attrs["activation"] == "leaky_relu"
    assert back["pool"].attrs == {"ceil_mode": True, "adaptive": False, "count_include_pad": False}


def test_graph_for_reads_saved_graphs(graphs: list[ir.AccelGraph], tmp_path: Path) -> None:
    graph = graphs[1]
    path = ir.save_graph(graph, tmp_path / "mixed.json")
    assert ir.graph_for(str(path)).nodes() == graph.nodes()


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


def test_bad_files_are_reported(graphs: list[ir.AccelGraph], tmp_path: Path) -> None:
    good = graph_to_dict(graphs[1])
    with pytest.raises(GraphError, match=r"expected an AccelGraph JSON file, found no file at"):
        ir.load_graph(tmp_path / "missing.json")
    (tmp_path / "syntax.json").write_text("{nope")
    with pytest.raises(GraphError, match=r"syntax.json: invalid JSON: Expecting property name"):
        ir.load_graph(tmp_path / "syntax.json")
    with pytest.raises(GraphError, match=r"expected an AccelGraph JSON object with format "
                       r"'autochip.accelgraph', found 'other'"):  # fmt: skip
        ir.load_graph(_write(tmp_path, {**good, "format": "other"}))

    nodes = [dict(n) for n in good["nodes"]]
    nodes[1]["kind"] = "fft"
    del nodes[2]["macs"]
    nodes[3]["output_shape"] = [1, -2]
    with pytest.raises(GraphError) as info:
        ir.load_graph(_write(tmp_path, {**good, "nodes": nodes}))
    text = str(info.value)
    assert "bad.json: 3 problem(s):" in text
    assert "nodes[1] ('conv'): kind: expected one of ['input', 'conv2d'," in text
    assert "nodes[2] ('pool'): expected the fields" in text and "missing ['macs']" in text
    assert "nodes[3]" in text and "expected a list of non-negative integers, found [1, -2]" in text


def test_loaded_graph_is_validated(graphs: list[ir.AccelGraph], tmp_path: Path) -> None:
    good = graph_to_dict(graphs[1])
    nodes = [dict(n) for n in good["nodes"]]
    conv = next(n for n in nodes if n["kind"] == "conv2d")
    conv["macs"] += 1
    with pytest.raises(GraphError, match=r"bad.json: graph 'mixed': node 'conv': "
                       r"macs \d+ differ from the loop nest's \d+"):  # fmt: skip
        ir.load_graph(_write(tmp_path, {**good, "nodes": nodes}))


def test_saved_graphs_load_without_torch(graphs: list[ir.AccelGraph], tmp_path: Path) -> None:
    """The predictor side reads graphs in a process that never imports torch."""
    path = ir.save_graph(graphs[2], tmp_path / "r20.json")
    code = (
        "import sys, autochip.ir as ir\n"
        f"g = ir.load_graph({str(path)!r})\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(g.total_macs, g.total_params)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(graphs[2].total_macs), str(graphs[2].total_params)]

"""What the tracer and loader refuse, and how they say it (wording pinned)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import autochip.ir as ir
from autochip.errors import ModelLoadError, TraceError, UnsupportedOpError

THIS = Path(__file__).resolve()


def line_of(text: str) -> int:
    """Line number of ``text`` in this file (so the pinned messages survive edits)."""
    return next(i for i, line in enumerate(THIS.read_text().splitlines(), 1) if text in line)


class Sorts(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).flatten(1)
        return torch.sort(y, dim=1).values  # sort-line


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lstm(x)[0]  # lstm-line


class Spectral(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft(x).real  # fft-line


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if y.sum() > 0:  # data-line
            return y * 2
        return y


class ShapeDependent(nn.Module):
    """fx cannot branch on a traced shape; torch.export specialises it and succeeds."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if y.shape[-1] > 5:
            y = torch.relu(y)
        return self.conv(y.reshape(y.shape[0], 1, 2, y.shape[1] // 2))


class ShapeDependentSort(ShapeDependent):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return torch.sort(y, dim=-1).values  # export-sort-line


def test_sort_is_refused_with_op_node_and_line() -> None:
    where = re.escape(f"{THIS}:{line_of('# sort-line')}: return torch.sort(y, dim=1).values")
    with pytest.raises(
        UnsupportedOpError,
        match=rf"^unsupported operator 'torch.sort' at node 'sort' \({where}  # sort-line\): "
        r"sorting has no hardware mapping; autochip maps conv, linear, matmul",
    ):
        ir.trace(Sorts(), torch.randn(1, 3, 6, 6))


def test_lstm_module_is_refused() -> None:
    with pytest.raises(
        UnsupportedOpError,
        match=rf"unsupported operator 'nn.LSTM' at node 'lstm' \({re.escape(str(THIS))}:"
        rf"{line_of('# lstm-line')}: .*\): recurrent layers have no mapping onto the array",
    ):
        ir.trace(Recurrent(), torch.randn(5, 1, 8))


def test_fft_is_refused() -> None:
    with pytest.raises(
        UnsupportedOpError,
        match=rf"unsupported operator 'torch.fft.fft_fft' at node 'fft_fft' \(.*:"
        rf"{line_of('# fft-line')}: .*\): Fourier transforms have no hardware mapping",
    ):
        ir.trace(Spectral(), torch.randn(2, 8))


def test_data_dependent_control_flow_fails_both_tracers_in_one_message() -> None:
    line = line_of("# data-line")
    with pytest.raises(
        TraceError,
        match=rf"^model 'DataDependent' cannot be traced: torch.fx failed at .*:{line}: "
        r"if y.sum\(\) > 0:  # data-line \(TraceError: symbolically traced variables cannot be "
        rf"used as inputs to control flow\), and torch.export failed at .*:{line}: .*; remove "
        r"data-dependent control flow from forward\(\)$",
    ):
        ir.trace(DataDependent(), torch.randn(2, 4))


def test_shape_dependent_control_flow_falls_back_to_export() -> None:
    model = ShapeDependent()
    graph = ir.run_passes(ir.trace(model, torch.randn(3, 4)))
    assert graph.attrs["frontend"] == "export"
    assert graph.total_macs == 3 * 6 * 4 + 3 * 2 * 2 * 3 * 1 * 9
    assert graph.total_params == sum(p.numel() for p in model.parameters()) == 30 + 20
    assert graph["fc"].attrs["activation"] == "relu"
    assert graph["conv"].source == f"{THIS.name}:{line_of('return self.conv(y.reshape')}"


def test_unsupported_op_on_the_export_path_names_the_aten_op() -> None:
    with pytest.raises(
        UnsupportedOpError,
        match=rf"unsupported operator 'aten.sort.default' at node 'sort' \(.*:"
        rf"{line_of('# export-sort-line')}: .*\): sorting has no hardware mapping",
    ):
        ir.trace(ShapeDependentSort(), torch.randn(3, 4))


def test_a_failing_forward_names_the_node() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(10, 2))
    with pytest.raises(
        TraceError,
        match=r"^model 'Sequential': running the model on its example input failed at node "
        r"'_2'.*RuntimeError: mat1 and mat2 shapes cannot be multiplied",
    ):
        ir.trace(model, torch.randn(1, 3, 5, 5))


def test_pt2_program_round_trip(tmp_path: Path) -> None:
    model = ShapeDependent().eval()
    path = tmp_path / "shape.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(3, 4),)), str(path))
    loaded = ir.load_model(str(path))
    assert loaded.name == "shape" and tuple(loaded.example_input.shape) == (3, 4)
    graph = ir.graph_for(str(path))
    assert graph.attrs["frontend"] == "export"
    assert graph.total_macs == ir.run_passes(ir.trace(model, torch.randn(3, 4))).total_macs
    assert graph.total_params == 50


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


GOOD = (
    "import torch\n"
    "def build_model():\n    return torch.nn.Linear(3, 2)\n"
    "def example_input():\n    return torch.randn(4, 3)\n"
)


def test_load_model_resolves_files_and_zoo_names(tmp_path: Path) -> None:
    loaded = ir.load_model(write(tmp_path, "tiny.py", GOOD))
    assert loaded.name == "tiny" and isinstance(loaded.model, nn.Linear)
    assert ir.graph_for(write(tmp_path, "tiny2.py", GOOD)).total_macs == 4 * 3 * 2
    assert ir.load_model("lenet_digits").name == "lenet_digits"


def test_model_files_import_their_neighbours(tmp_path: Path) -> None:
    (tmp_path / "my_blocks.py").write_text(
        "import torch\nclass Block(torch.nn.Sequential):\n"
        "    def __init__(self):\n        super().__init__(torch.nn.Linear(3, 5))\n"
    )
    text = GOOD.replace("torch.nn.Linear(3, 2)", "Block()")
    text = text.replace("import torch\n", "import torch\nfrom my_blocks import Block\n")
    path = write(tmp_path, "uses_blocks.py", text)
    assert ir.graph_for(path).total_macs == 4 * 3 * 5
    assert str(tmp_path) not in sys.path


def test_load_model_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        ModelLoadError,
        match=r"^unknown model 'resnet19': expected a zoo name \(alexnet, .*resnet18, resnet20, "
        r".*vit_tiny\) or a path to a .py, .pt2 or .pt file$",
    ):
        ir.load_model("resnet19")
    with pytest.raises(ModelLoadError, match=r"found no file at '/nonexistent/m.py'$"):
        ir.load_model("/nonexistent/m.py")
    with pytest.raises(ModelLoadError, match=r"found no file at '/no/resnet18.py' \(the zoo has "
                       r"'resnet18'\)$"):  # fmt: skip
        ir.load_model("/no/resnet18.py")
    no_fn = write(tmp_path, "nofn.py", "import torch\ndef build_model():\n    return None\n")
    with pytest.raises(
        ModelLoadError,
        match=r"nofn.py': expected functions build_model\(\) and example_input\(\), found no "
        r"example_input\(\)$",
    ):
        ir.load_model(no_fn)
    crash = write(tmp_path, "crash.py", "import torch\n\nx = 1 / 0\n")
    with pytest.raises(
        ModelLoadError,
        match=r"crash.py': importing it failed at .*crash.py:3: x = 1 / 0: ZeroDivisionError",
    ):
        ir.load_model(crash)
    not_module = write(tmp_path, "notmod.py", GOOD.replace("torch.nn.Linear(3, 2)", "42"))
    with pytest.raises(
        ModelLoadError, match=r"build_model\(\) to return a torch.nn.Module, found int"
    ):
        ir.load_model(not_module)
    with pytest.raises(ModelLoadError, match=r"expected a .py, .pt2 or .pt file, found a '.txt'"):
        ir.load_model(write(tmp_path, "model.txt", "hello"))
    with pytest.raises(ModelLoadError, match=r"expected a torch.export program saved by"):
        ir.load_model(write(tmp_path, "junk.pt2", "not a zip"))
    from autochip.ir import loader  # no loader registered for .pt: the IR imports no compress

    monkeypatch.setattr(loader, "_LOADERS", {})
    with pytest.raises(
        ModelLoadError,
        match=r"ckpt.pt': a .pt file is a compressed checkpoint, read by autochip.compress",
    ):
        ir.load_model(write(tmp_path, "ckpt.pt", "x"))

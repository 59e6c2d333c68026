"""The core's DMA on Verilator against cocotbext-axi's AxiRam: data and cycles per command."""

from __future__ import annotations

from pathlib import Path

import pytest

from autochip.builder import sim
from autochip.builder.tools import templates_dir

HERE = Path(__file__).resolve().parent

# (write, address, length): single beats, one burst, bursts split at 256-byte boundaries
CASES = [
    (0, 0, 1), (0, 5, 7), (0, 0, 256), (0, 200, 300), (0, 1000, 777),
    (1, 3, 1), (1, 64, 9), (1, 250, 20), (1, 4000, 600),
]  # fmt: skip


@pytest.mark.sim
def test_dma_data_and_cycles(tmp_path: Path) -> None:
    build = sim.build([templates_dir() / "core_dma.v"], "core_dma", tmp_path / "build")
    tests, failed = sim.run(build, "tb_dma", HERE, {"cases": CASES}, "dma")
    assert tests == 1 and failed == 0

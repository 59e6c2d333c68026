"""The core's DMA against cocotbext-axi's AxiRam and against the simulation RAM that replaces it
(templates/sim_axi_ram.v): data and cycles per command, and the same cycles on both RAMs, on
Verilator; the simulation RAM on Icarus too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autochip.builder import sim
from autochip.builder.tools import templates_dir

HERE = Path(__file__).resolve().parent

# (write, address, length): single bytes, unaligned ends (strobes), one burst, bursts split at
# 4 KB boundaries and at 256 beats
CASES = [
    (0, 0, 1), (0, 5, 7), (0, 0, 256), (0, 200, 300), (0, 1000, 777), (0, 4000, 600),
    (0, 16, 4096 + 64), (1, 3, 1), (1, 64, 9), (1, 250, 20), (1, 4000, 600), (1, 7, 1100),
]  # fmt: skip


def _run(tmp: Path, simulator: str, hdl_ram: bool, bus: int) -> list[int]:
    files = [templates_dir() / "core_dma.v"]
    top = "core_dma"
    if hdl_ram:
        files += [templates_dir() / "sim_axi_ram.v", HERE / "dma_ram_top.v"]
        top = "dma_ram_top"
    sources = {f.name: f.read_text() for f in files}
    build = sim.cached_build(
        sources, top, simulator, parameters={"BUS": bus, "LB": bus.bit_length() - 1},
        log=tmp / f"{simulator}_{top}.log",
    )  # fmt: skip
    run_dir = tmp / f"run_{simulator}_{top}"
    cfg = {"cases": CASES, "bus": bus, "hdl_ram": hdl_ram,
           "results": str(tmp / f"{simulator}_{top}.json"),
           "load_file": str(tmp / "load.hex"), "dump_file": str(tmp / "dump.hex")}  # fmt: skip
    plusargs = [
        f"+autochip_dram_load={cfg['load_file']}",
        f"+autochip_dram_dump={cfg['dump_file']}",
    ]
    tests, failed = sim.run(build, "tb_dma", HERE, cfg, "dma", plusargs, run_dir)
    assert tests == 1 and failed == 0
    measured: list[int] = json.loads(Path(str(cfg["results"])).read_text())
    return measured


@pytest.mark.sim
@pytest.mark.parametrize("bus", [4, 16])
def test_dma_data_and_cycles_on_axiram_and_sim_ram(tmp_path: Path, bus: int) -> None:
    axiram = _run(tmp_path, "verilator", hdl_ram=False, bus=bus)
    hdl = _run(tmp_path, "verilator", hdl_ram=True, bus=bus)
    assert len(axiram) == len(CASES)
    assert hdl == axiram  # the simulation RAM answers every handshake when AxiRam does
    assert _run(tmp_path, "icarus", hdl_ram=True, bus=bus) == axiram

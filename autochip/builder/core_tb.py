"""cocotb testbench of the autochip core (copied into a build folder as ``tb/tb_core.py``).

DRAM is cocotbext-axi's ``AxiRam`` on the core's AXI4 master; control goes through an
``AxiLiteMaster`` on its AXI4-Lite registers. For every input image: write the quantised image
into DRAM, write PROG_ADDR and CTRL.start, record the core's cycle counter each time its layer
counter advances (cycles per layer), wait for STATUS.done, read CYCLES over AXI4-Lite, and read
every tensor region back from DRAM. Results go to the JSON file named in the configuration; the
bit-exact comparison against the reference executor is done by ``autochip sim``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, NoReturn

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from autochip.builder.sim import testbench_config

REG_CTRL, REG_STATUS, REG_PROG, REG_CYCLES, REG_LAYERS = 0x00, 0x04, 0x08, 0x0C, 0x10


async def _watch_layers(dut: Any, marks: list[int]) -> NoReturn:
    while True:
        await dut.u_main.layers.value_change
        marks.append(int(dut.u_main.cycles.value))


@cocotb.test()
async def run_network(dut: Any) -> None:
    cfg: dict[str, Any] = testbench_config()
    Clock(dut.clk, 10, unit="ns").start()
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=cfg["dram_size"])
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    for bus in ("m_axi", "s_axil"):
        logging.getLogger(f"cocotb.{dut._name}.{bus}").setLevel(logging.WARNING)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    ram.write(0, Path(cfg["dram"]).read_bytes())
    inputs = np.load(cfg["inputs"])
    results: list[dict[str, Any]] = []
    for image in inputs:
        for region in cfg["regions"]:
            ram.write(region["addr"], bytes(region["bytes"]))
        data = (np.asarray(image, dtype=np.int64).reshape(-1) & 0xFF).astype(np.uint8)
        ram.write(cfg["input_addr"], data.tobytes())
        marks: list[int] = []
        watcher = cocotb.start_soon(_watch_layers(dut, marks))
        await axil.write_dword(REG_PROG, cfg["program_addr"])
        await axil.write_dword(REG_CTRL, 1)
        await with_timeout(RisingEdge(dut.u_main.done), cfg["max_cycles"] * 10, "ns")
        watcher.cancel()
        cycles = await axil.read_dword(REG_CYCLES)
        layers = await axil.read_dword(REG_LAYERS)
        status = await axil.read_dword(REG_STATUS)
        tensors = {
            r["name"]: list(
                int(v) for v in np.frombuffer(ram.read(r["addr"], r["bytes"]), dtype=np.int8)
            )
            for r in cfg["regions"]
        }
        results.append(
            {"cycles": int(cycles), "layers": int(layers), "status": int(status), "marks": marks,
             "tensors": tensors}
        )  # fmt: skip
    Path(cfg["results"]).write_text(json.dumps(results))

"""cocotb testbench of the autochip core (copied into a build folder as ``tb/tb_core.py``).

The design is ``sim_tb_top`` (``templates/sim_tb_top.v.j2``): the core, ``sim_axi_ram`` as DRAM
on its AXI4 master and a Verilog clock, so no Python runs per clock cycle. Once per run the
testbench loads the whole DRAM image (descriptors, parameters, weights, zeroed tensor regions)
through a ``$readmemh`` file and a ``ram_load`` pulse. For every input image it reloads only the
words the core may write (the span of the plan's tensors: the quantised input, every layer's
output zeroed, scratch tensors as in the image), writes PROG_ADDR and CTRL.start over
AXI4-Lite, records the core's cycle counter each time its layer counter advances (cycles per
layer), waits for ``done``, reads CYCLES / LAYERS / STATUS over AXI4-Lite, pulses ``ram_dump``
(``$writememh`` of the words that hold the layers' outputs) and cuts every tensor region out of
that file. Results go to the JSON file named in the configuration and the tensors
(``IMAGE:NAME``, int8) to its ``.npz`` file; the bit-exact comparison against the reference
executor is done by ``autochip sim``. It imports only cocotb, numpy and :mod:`autochip.simio`.
With ``train_cycles`` in the configuration it runs the first input for at most that many cycles
and stops (the training run of a profile-guided model).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, NoReturn

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge, Timer, with_timeout

from autochip.simio import read_memh, testbench_config, write_memh

REG_CTRL, REG_STATUS, REG_PROG, REG_CYCLES, REG_LAYERS = 0x00, 0x04, 0x08, 0x0C, 0x10
PERIOD_NS = 10  # sim_tb_top's clock: half period 5 time units of 1 ns


async def _axil_write(dut: Any, addr: int, data: int) -> None:
    dut.s_axil_awaddr.value = addr
    dut.s_axil_wdata.value = data
    dut.s_axil_wstrb.value = 0xF
    dut.s_axil_awvalid.value = 1
    dut.s_axil_wvalid.value = 1
    dut.s_axil_bready.value = 1
    sent = False
    while True:
        await ReadOnly()
        took = int(dut.s_axil_awready.value) and int(dut.s_axil_wready.value)
        answered = sent and int(dut.s_axil_bvalid.value)
        await RisingEdge(dut.clk)
        if took and not sent:
            sent = True
            dut.s_axil_awvalid.value = 0
            dut.s_axil_wvalid.value = 0
        if answered:
            dut.s_axil_bready.value = 0
            return


async def _axil_read(dut: Any, addr: int) -> int:
    dut.s_axil_araddr.value = addr
    dut.s_axil_arvalid.value = 1
    dut.s_axil_rready.value = 1
    sent = False
    while True:
        await ReadOnly()
        took = int(dut.s_axil_arready.value)
        value = int(dut.s_axil_rdata.value) if sent and int(dut.s_axil_rvalid.value) else None
        await RisingEdge(dut.clk)
        if took and not sent:
            sent = True
            dut.s_axil_arvalid.value = 0
        if value is not None:
            dut.s_axil_rready.value = 0
            return value


async def _pulse(dut: Any, signal: Any) -> None:
    signal.value = 1
    await RisingEdge(dut.clk)
    signal.value = 0
    await RisingEdge(dut.clk)


async def _watch_layers(dut: Any, marks: list[int], progress: Path | None, image: int) -> NoReturn:
    while True:
        await dut.layers.value_change
        marks.append(int(dut.cycles.value))
        if progress is not None:
            progress.write_text(f"{image} {marks[-1]}\n")


def _words(lo: int, hi: int, word: int) -> tuple[int, int]:
    """The words [first, end) that hold the bytes [lo, hi)."""
    return lo // word, -(-hi // word)


@cocotb.test()
async def run_network(dut: Any) -> None:
    cfg: dict[str, Any] = testbench_config()
    word = int(cfg["word_bytes"])
    load, dump = Path(cfg["load_file"]), Path(cfg["dump_file"])
    progress = Path(cfg["progress"]) if cfg.get("progress") else None
    for name in ("awaddr", "awprot", "awvalid", "wdata", "wstrb", "wvalid", "bready",
                 "araddr", "arprot", "arvalid", "rready"):  # fmt: skip
        getattr(dut, f"s_axil_{name}").value = 0
    dut.ram_load.value = 0
    dut.ram_dump.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    size = int(cfg["dram_size"])
    words = -(-size // word)
    base = np.zeros(words * word, dtype=np.uint8)
    image0 = np.frombuffer(Path(cfg["dram"]).read_bytes(), dtype=np.uint8)
    base[: image0.size] = image0
    regions = cfg["regions"]
    for region in regions:
        base[region["addr"] : region["addr"] + region["bytes"]] = 0
    write_memh(load, base.tobytes(), word)  # the whole image, once
    await _pulse(dut, dut.ram_load)
    # per image: the words the core may write, and the words that hold the outputs
    re_lo, re_end = _words(int(cfg["reload"][0]), int(cfg["reload"][1]), word)
    d_lo, d_end = _words(
        min(r["addr"] for r in regions), max(r["addr"] + r["bytes"] for r in regions), word
    )
    dut.ram_dump_first.value = d_lo
    dut.ram_dump_last.value = d_end - 1
    in_at = int(cfg["input_addr"]) - re_lo * word
    inputs = np.load(cfg["inputs"])
    results: list[dict[str, Any]] = []
    tensors: dict[str, Any] = {}
    for i, image in enumerate(inputs):
        part = base[re_lo * word : re_end * word].copy()
        data = (np.asarray(image, dtype=np.int64).reshape(-1) & 0xFF).astype(np.uint8)
        part[in_at : in_at + data.size] = data
        write_memh(load, part.tobytes(), word, re_lo)
        await _pulse(dut, dut.ram_load)
        marks: list[int] = []
        watcher = cocotb.start_soon(_watch_layers(dut, marks, progress, i))
        await _axil_write(dut, REG_PROG, cfg["program_addr"])
        wall, cpu = time.perf_counter(), time.process_time()
        await _axil_write(dut, REG_CTRL, 1)
        if int(cfg.get("train_cycles", 0)):  # a profile-guided build's training run
            await First(RisingEdge(dut.done), Timer(int(cfg["train_cycles"]) * PERIOD_NS, "ns"))
            watcher.cancel()
            break
        await with_timeout(RisingEdge(dut.done), cfg["max_cycles"] * PERIOD_NS, "ns")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        watcher.cancel()
        cycles = await _axil_read(dut, REG_CYCLES)
        layers = await _axil_read(dut, REG_LAYERS)
        status = await _axil_read(dut, REG_STATUS)
        await _pulse(dut, dut.ram_dump)
        mem = np.frombuffer(read_memh(dump, word, d_end - d_lo), dtype=np.int8)
        for r in regions:
            at = r["addr"] - d_lo * word
            tensors[f"{i}:{r['name']}"] = mem[at : at + r["bytes"]]
        results.append(
            {
                "cycles": int(cycles),
                "layers": int(layers),
                "status": int(status),
                "marks": marks,
                "run_wall_s": wall,
                "run_cpu_s": cpu,
            }
        )
        if progress is not None:
            progress.write_text(f"{i + 1} 0\n")
    np.savez(cfg["tensors"], **tensors)
    Path(cfg["results"]).write_text(json.dumps(results))

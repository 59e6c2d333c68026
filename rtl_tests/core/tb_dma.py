"""cocotb testbench: the core's AXI4 DMA (core_dma.v) against cocotbext-axi's AxiRam, or (top
``dma_ram_top``) against the simulation RAM ``templates/sim_axi_ram.v`` that replaces it.

For each (write, address, length) case on a BUS-byte data bus: the bus words of the command
arrive in order with the strobes of the bytes inside it (reads), or exactly the command's bytes
land in the RAM and its neighbours stay (writes: WSTRB), bursts are split at 4 KB boundaries
and 256 beats, and the cycles from the command to ``done`` match
:func:`autochip.predictor.core_model.dma_cycles` exactly, reads and writes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotbext.axi import AxiBus, AxiRam

from autochip.builder.sim import read_memh, testbench_config, write_memh
from autochip.predictor.core_model import dma_cycles


@cocotb.test()
async def dma_bursts(dut: Any) -> None:
    cfg = testbench_config()
    bus = int(cfg["bus"])
    Clock(dut.clk, 10, unit="ns").start()
    hdl = bool(cfg.get("hdl_ram"))
    if hdl:
        dut.ram_load.value = 0
        dut.ram_dump.value = 0
        dut.ram_dump_last.value = (1 << 16) // bus - 1
    else:
        ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=1 << 16)
        dut.rd_hold.value = 0
        logging.getLogger(f"cocotb.{dut._name}.m_axi").setLevel(logging.WARNING)
    dut.rst.value = 1
    dut.cmd_valid.value = 0
    dut.src_data.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    pattern = bytes((i * 37 + 11) & 0xFF for i in range(1 << 16))
    if hdl:
        write_memh(Path(cfg["load_file"]), pattern, bus)
        dut.ram_load.value = 1
        await RisingEdge(dut.clk)
        dut.ram_load.value = 0
        await RisingEdge(dut.clk)
    else:
        ram.write(0, pattern)
    errors: list[str] = []
    measured_all: list[int] = []
    for write, addr, length in cfg["cases"]:
        base = addr // bus * bus
        nwords = (addr + length - 1) // bus - addr // bus + 1
        # the source buffer holds the bytes at their DRAM offset within a bus word
        src = bytes((i * 13 + 5) & 0xFF for i in range(nwords * bus))
        if hdl:  # the DRAM as the pattern again (earlier writes changed it)
            dut.ram_load.value = 1
            await RisingEdge(dut.clk)
            dut.ram_load.value = 0
            await RisingEdge(dut.clk)
        else:
            ram.write(base, pattern[base : base + nwords * bus])
        got = bytearray()
        nxt = -1
        dut.cmd_valid.value = 1
        dut.cmd_write.value = int(write)
        dut.cmd_addr.value = addr
        dut.cmd_len.value = length
        await RisingEdge(dut.clk)
        dut.cmd_valid.value = 0
        edges = 1
        while True:
            await ReadOnly()
            if int(dut.rd_valid.value):
                i = int(dut.rd_word.value)
                assert i == len(got) // bus
                word = int(dut.rd_data.value).to_bytes(bus, "little")
                strb = int(dut.rd_strb.value)
                got += bytes(b if strb >> k & 1 else 0 for k, b in enumerate(word))
                want_strb = sum(
                    1 << k for k in range(bus) if addr <= base + i * bus + k < addr + length
                )
                if strb != want_strb:
                    errors.append(f"read {length} B at {addr}: word {i} strobes {strb:#x}")
            if int(dut.src_re.value):
                nxt = int(dut.src_word.value)
            done = int(dut.done.value)
            await RisingEdge(dut.clk)
            if write and 0 <= nxt < nwords:
                dut.src_data.value = int.from_bytes(src[nxt * bus : (nxt + 1) * bus], "little")
            if done:
                break
            edges += 1
        measured = edges + 1  # + the controller's issue cycle
        measured_all.append(measured)
        want = dma_cycles(addr, length, bool(write), bus)
        what = f"{'write' if write else 'read'} {length} B at {addr}"
        # reads and writes: exactly the model (3 cycles per write burst; inside the core each
        # command costs its issue cycle more, core_model.READ_ISSUE / WRITE_ISSUE)
        if measured != want:
            errors.append(f"{what}: {measured} cycles, model {want}")
        if write:
            want_ram = bytearray(pattern[base : base + nwords * bus])
            off = addr - base
            want_ram[off : off + length] = src[off : off + length]
            if hdl:
                dut.ram_dump.value = 1
                await RisingEdge(dut.clk)
                dut.ram_dump.value = 0
                await RisingEdge(dut.clk)
                have = read_memh(Path(cfg["dump_file"]), bus, (1 << 16) // bus)
                have = have[base : base + nwords * bus]
            else:
                have = ram.read(base, nwords * bus)
            if have != bytes(want_ram):
                errors.append(f"{what}: DRAM holds other bytes than the source (strobes)")
        if (
            not write
            and bytes(got[addr - base : addr - base + length]) != pattern[addr : addr + length]
        ):
            errors.append(f"{what}: other bytes than DRAM holds")
        await ClockCycles(dut.clk, 3)
    Path(cfg["results"]).write_text(json.dumps(measured_all))
    assert not errors, "; ".join(errors)

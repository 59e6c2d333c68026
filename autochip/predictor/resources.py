"""ASIC area and FPGA resources of a design.

ASIC: PE array (arithmetic + registers per PE, from the technology tables) plus each SRAM
buffer. FPGA: the PE array's LUT/FF/DSP come from the RTL library's Yosys-calibrated model
(``autochip.hw.fpga_model.estimate_array_resources``); this module adds the buffers as block
RAMs from their size, banks and port width and the device's BRAM geometry, and checks the total
against the device.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any

from autochip.errors import SpecError
from autochip.hw.platform import BramGeometry, Platform
from autochip.hw.spec import OPERANDS, BufferSpec, HardwareSpec

__all__ = ["AreaBreakdown", "FpgaUsage", "asic_area", "bram_blocks", "fpga_usage"]


@dataclass(frozen=True)
class AreaBreakdown:
    pe_array: float
    ifmap: float
    weight: float
    ofmap: float

    @property
    def total(self) -> float:
        return self.pe_array + self.ifmap + self.weight + self.ofmap

    def to_dict(self) -> dict[str, float]:
        return {
            "total": self.total,
            "pe_array": self.pe_array,
            "sram_ifmap": self.ifmap,
            "sram_weight": self.weight,
            "sram_ofmap": self.ofmap,
        }


@dataclass(frozen=True)
class FpgaUsage:
    """Resources of the whole design; ``lut``/``ff``/``dsp`` are None when the PE-array model
    of the RTL library is not available (``array_model`` says why)."""

    device: str
    lut: int | None
    ff: int | None
    dsp: int | None
    bram: int
    bram_buffers: dict[str, int]
    available: dict[str, int]
    array_model: str

    @property
    def over_budget(self) -> list[str]:
        used = {"lut": self.lut, "ff": self.ff, "dsp": self.dsp, "bram": self.bram}
        return [
            f"{k}: {v} of {self.available[k]}"
            for k, v in used.items()
            if v is not None and v > self.available[k]
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "lut": self.lut,
            "ff": self.ff,
            "dsp": self.dsp,
            "bram": self.bram,
            "bram_buffers": dict(self.bram_buffers),
            "available": dict(self.available),
            "fits": not self.over_budget,
            "over_budget": self.over_budget,
            "array_model": self.array_model,
        }


def asic_area(hw: HardwareSpec, platform: Platform) -> AreaBreakdown:
    tech = platform.tech
    sram = {op: tech.sram_area_um2(hw.buffer(op).size_bytes) for op in OPERANDS}
    return AreaBreakdown(
        pe_array=hw.num_pes * tech.pe_area_um2(hw.pe),
        ifmap=sram["ifmap"],
        weight=sram["weight"],
        ofmap=sram["ofmap"],
    )


def bram_blocks(buf: BufferSpec, geom: BramGeometry) -> int:
    """Blocks for one buffer: each bank is deep enough for its share of the bytes and as wide
    as its port (``bandwidth`` bytes per cycle per bank)."""
    bank_bits = buf.size_bytes * 8 / buf.banks
    bank_width = max(buf.bandwidth * 8, 1.0)
    by_depth = math.ceil(bank_bits / geom.bits)
    by_width = math.ceil(bank_width / geom.max_width)
    return buf.banks * max(by_depth, by_width, 1)


def fpga_usage(hw: HardwareSpec, platform: Platform) -> FpgaUsage:
    dev = platform.device
    if dev is None:
        raise ValueError(f"platform '{platform.name}' is not an FPGA")
    buffers = {op: bram_blocks(hw.buffer(op), dev.bram) for op in OPERANDS}
    lut = ff = dsp = None
    array_bram = 0
    try:
        model: Any = importlib.import_module("autochip.hw.fpga_model")
        arr = model.estimate_array_resources(hw, dev.synth_target)
        lut, ff, dsp, array_bram = int(arr.lut), int(arr.ff), int(arr.dsp), int(arr.bram)
        source = "autochip.hw.fpga_model (Yosys-calibrated)"
    except (ImportError, AttributeError, OSError, SpecError) as exc:
        source = f"unavailable: {exc}"
    return FpgaUsage(
        device=dev.name,
        lut=lut,
        ff=ff,
        dsp=dsp,
        bram=sum(buffers.values()) + array_bram,
        bram_buffers=buffers,
        available={"lut": dev.lut, "ff": dev.ff, "dsp": dev.dsp, "bram": dev.bram.count},
        array_model=source,
    )

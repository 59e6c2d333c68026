"""Platform: an FPGA device or an ASIC technology, plus its default accelerator.

Platforms are data (``data/platforms.yaml``): a new board is a new YAML entry, not new code.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from typing import Any

from autochip.errors import SpecError
from autochip.hw._fields import Fields
from autochip.hw.spec import HardwareSpec, hardware_spec_from_dict
from autochip.hw.tech import Technology, _read_package_yaml, load_technology

__all__ = ["BramGeometry", "FpgaDevice", "Platform", "load_platform", "platform_names"]


@dataclass(frozen=True)
class BramGeometry:
    """Block RAMs of a device: how many, bits per block, widest port."""

    count: int
    bits: int
    max_width: int


@dataclass(frozen=True)
class FpgaDevice:
    name: str
    family: str
    synth_target: str
    lut: int
    ff: int
    dsp: int
    dsp_width: tuple[int, int]
    bram: BramGeometry
    uram_count: int
    uram_bits: int
    static_power_w: float


@dataclass(frozen=True)
class Platform:
    """Where the accelerator runs: ``kind`` is ``fpga`` (with ``device``) or ``asic``."""

    name: str
    kind: str
    tech: Technology
    default_hw: HardwareSpec
    device: FpgaDevice | None = None

    @property
    def is_fpga(self) -> bool:
        return self.kind == "fpga"


@cache
def _platform_data() -> tuple[dict[str, Any], str]:
    data, source = _read_package_yaml("platforms.yaml")
    return data, source


@cache
def _aliases() -> dict[str, tuple[str, str]]:
    """Every accepted platform name -> (section, canonical entry name)."""
    data, _ = _platform_data()
    names: dict[str, tuple[str, str]] = {}
    for dev, d in data["fpga"].items():
        names[dev] = ("fpga", dev)
        for board in d.get("boards", []):
            names[board] = ("fpga", dev)
    for name in data["asic"]:
        names[name] = ("asic", name)
    return names


def platform_names() -> list[str]:
    """All platform names (devices, boards and ASIC technologies), sorted."""
    return sorted(_aliases())


def load_platform(name: str) -> Platform:
    """The platform called ``name`` (case-insensitive); an unknown name is a :class:`SpecError`."""
    key = name.strip().lower()
    aliases = _aliases()
    if key not in aliases:
        close = difflib.get_close_matches(key, platform_names(), n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise SpecError(
            "--platform",
            [
                f"expected one of {', '.join(platform_names())}; found unknown platform "
                f"'{name}'{hint}"
            ],
        )
    section, entry = aliases[key]
    data, source = _platform_data()
    f = Fields(source)
    raw = f.mapping(data[section][entry], f"{section}.{entry}")
    where = f"{section}.{entry}"
    node = f.get(raw, "node_nm", float, where, minimum=1.0)
    vdd = f.get(raw, "vdd", float, where, minimum=0.1)
    device: FpgaDevice | None = None
    factor = 1.0
    if section == "fpga":
        factor = f.get(raw, "fpga_energy_factor", float, where, minimum=1.0)
        bram = f.mapping(raw.get("bram"), f"{where}.bram")
        uram = f.mapping(raw.get("uram"), f"{where}.uram")
        dsp_w = raw.get("dsp_width", [0, 0])
        device = FpgaDevice(
            name=entry,
            family=f.get(raw, "family", str, where),
            synth_target=f.get(raw, "synth_target", str, where),
            lut=f.get(raw, "lut", int, where, minimum=0),
            ff=f.get(raw, "ff", int, where, minimum=0),
            dsp=f.get(raw, "dsp", int, where, minimum=0),
            dsp_width=(int(dsp_w[0]), int(dsp_w[1])),
            bram=BramGeometry(
                count=f.get(bram, "count", int, f"{where}.bram", minimum=0),
                bits=f.get(bram, "bits", int, f"{where}.bram", minimum=1),
                max_width=f.get(bram, "max_width", int, f"{where}.bram", minimum=1),
            ),
            uram_count=f.get(uram, "count", int, f"{where}.uram", default=0),
            uram_bits=f.get(uram, "bits", int, f"{where}.uram", default=0),
            static_power_w=f.get(raw, "static_power_w", float, where, minimum=0.0),
        )
    f.finish()
    tech = load_technology(node, vdd, factor)
    hw = hardware_spec_from_dict(
        {"name": f"{entry}-default", **data["defaults"][entry]}, f"{source}: defaults.{entry}"
    )
    return Platform(name=key, kind=section, tech=tech, default_hw=hw, device=device)

"""Hardware descriptions: the accelerator's microarchitecture and the platform it targets."""

from autochip.hw.platform import FpgaDevice, Platform, load_platform, platform_names
from autochip.hw.spec import (
    BufferSpec,
    DramSpec,
    HardwareSpec,
    PESpec,
    hardware_spec_from_dict,
    load_hardware_spec,
)
from autochip.hw.tech import Technology, load_technology

__all__ = [
    "BufferSpec",
    "DramSpec",
    "FpgaDevice",
    "HardwareSpec",
    "PESpec",
    "Platform",
    "Technology",
    "hardware_spec_from_dict",
    "load_hardware_spec",
    "load_platform",
    "load_technology",
    "platform_names",
]

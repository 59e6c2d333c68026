"""Hardware descriptions: the accelerator's microarchitecture and the platform it targets."""

from autochip.hw.spec import (
    BufferSpec,
    DramSpec,
    HardwareSpec,
    PESpec,
    hardware_spec_from_dict,
    load_hardware_spec,
)

__all__ = [
    "BufferSpec",
    "DramSpec",
    "HardwareSpec",
    "PESpec",
    "hardware_spec_from_dict",
    "load_hardware_spec",
]

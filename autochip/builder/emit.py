"""``autochip emit``: a hardware spec -> the Verilog of its PE array, verified ready to lint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autochip.builder.params import TOP_MODULE, ArrayParams, array_params
from autochip.builder.render import MANIFEST, render_design, write_design
from autochip.hw.spec import HardwareSpec

__all__ = ["EmitResult", "emit_design"]


@dataclass(frozen=True)
class EmitResult:
    out_dir: Path
    params: ArrayParams
    files: tuple[str, ...]
    manifest: dict[str, Any]


def emit_design(
    hw: HardwareSpec,
    out_dir: str | Path,
    depth: int | None = None,
    source: str | None = None,
    top: str = TOP_MODULE,
) -> EmitResult:
    """Validate ``hw``, render every file in memory, then write them all under ``out_dir``."""
    params = array_params(hw, depth, source, top)
    files = render_design(params)
    write_design(files, out_dir)
    return EmitResult(Path(out_dir), params, tuple(sorted(files)), json.loads(files[MANIFEST]))

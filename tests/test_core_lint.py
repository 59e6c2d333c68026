"""Every core configuration renders Verilog that passes ``verilator --lint-only -Wall``.

Corners: a 1 x 1 array (1-bit row counters), odd and non-power-of-two sizes (non-power-of-two
buffer depths), the AdderNet datapath, 4-bit operands.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autochip.builder.core import core_params, render_core
from autochip.builder.lint import lint_design
from autochip.builder.render import write_design
from autochip.hw import hardware_spec_from_dict

CONFIGS = (
    ("mac", 8, 8, 8, 16),
    ("mac", 1, 1, 8, 4),
    ("mac", 5, 3, 4, 10),
    ("adder", 6, 7, 8, 12),
)


@pytest.mark.parametrize(
    "kind,rows,cols,bits,kb", CONFIGS, ids=[f"{c[0]}{c[1]}x{c[2]}" for c in CONFIGS]
)
def test_core_lints_clean(
    tmp_path: Path, kind: str, rows: int, cols: int, bits: int, kb: int
) -> None:
    hw = hardware_spec_from_dict(
        {
            "pe": {"kind": kind, "a_bits": bits, "w_bits": bits},
            "array": {"rows": rows, "cols": cols},
            "buffers": {k: {"size_kb": kb} for k in ("ifmap", "weight", "ofmap")},
        },
        "lint.yaml",
    )
    write_design(render_core(core_params(hw)), tmp_path)
    lint_design(tmp_path)

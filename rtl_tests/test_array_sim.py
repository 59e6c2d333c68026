"""PE-array verification: arrays emitted by `autochip emit`, GEMM tiles on Verilator.

For each configuration the design is emitted, built once, and the cocotb module ``tb_array``
streams random and corner integer GEMM tiles (including tiles smaller than the array) and
checks every result bit-exactly against numpy (``golden.gemm``) and every tile's measured cycles
against :func:`autochip.predictor.rtl_model.os_tile_cycles`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autochip.builder import emit_design, sim
from autochip.hw import hardware_spec_from_dict

HERE = Path(__file__).resolve().parent

# (kind, rows, cols, a_bits, w_bits, vector, acc_bits)
ARRAYS = (
    ("mac", 3, 4, 8, 8, 1, 32),
    ("mac", 2, 2, 4, 3, 1, 16),
    ("mac", 1, 3, 16, 16, 1, 40),
    ("adder", 4, 2, 8, 8, 1, 24),
    ("xnor", 2, 3, 1, 1, 8, 16),
)


@pytest.mark.sim
@pytest.mark.parametrize(
    "kind,rows,cols,a_bits,w_bits,vector,acc_bits",
    ARRAYS,
    ids=[f"{a[0]}-{a[1]}x{a[2]}" for a in ARRAYS],
)
def test_array_gemm_bit_exact(
    tmp_path: Path,
    kind: str,
    rows: int,
    cols: int,
    a_bits: int,
    w_bits: int,
    vector: int,
    acc_bits: int,
) -> None:
    pe: dict[str, object] = {"kind": kind, "acc_bits": acc_bits}
    if kind == "xnor":
        pe["vector"] = vector
    else:
        pe.update(a_bits=a_bits, w_bits=w_bits)
    hw = hardware_spec_from_dict(
        {"name": f"{kind}{rows}x{cols}", "pe": pe, "array": {"rows": rows, "cols": cols}}
    )
    design = emit_design(hw, tmp_path / "design")
    sources = [design.out_dir / f for f in design.manifest["files"]]
    build = sim.build(sources, design.params.top, tmp_path / "build")
    config = {
        "kind": kind,
        "rows": rows,
        "cols": cols,
        "a_bits": a_bits,
        "w_bits": w_bits,
        "vector": vector,
        "acc_bits": acc_bits,
        "seed": 7 + rows * 31 + cols,
        "random_tiles": 12,
    }
    assert sim.run(build, "tb_array", HERE, config, "gemm") == (3, 0)

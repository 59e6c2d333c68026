"""PE-array verification: arrays emitted by `autochip emit`, GEMM tiles on Verilator.

Every configuration of :data:`ARRAYS` is emitted with its own top-module name and all of them
are instantiated side by side in one wrapper, so Verilator builds once and one cocotb run of
``tb_array`` drives all arrays at the same time (prefix ``aN_`` = ``ARRAYS[N]``); it streams
random and corner integer GEMM tiles (including tiles smaller than the array) and checks every
result bit-exactly against numpy (``golden.gemm``) and every tile's measured cycles against
:func:`autochip.predictor.rtl_model.os_tile_cycles`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    ("adder", 2, 3, 2, 2, 1, 8),
    ("xnor", 2, 3, 1, 1, 8, 16),
    ("xnor", 3, 1, 1, 1, 1, 6),
)
IDS = [f"{a[0]}-{a[1]}x{a[2]}-{a[3] if a[0] != 'xnor' else a[5]}" for a in ARRAYS]


def _wrapper(designs: list[dict[str, Any]]) -> str:
    ports = ["input wire clk"]
    body = []
    for d in designs:
        p = d["prefix"]
        conns = [".clk(clk)"]
        for port in d["ports"]:
            if port["name"] == "clk":
                continue
            width = f"[{port['width'] - 1}:0] " if port["width"] > 1 else ""
            ports.append(f"{port['direction']} wire {width}{p}{port['name']}")
            conns.append(f".{port['name']}({p}{port['name']})")
        body.append(f"    {d['top']} u_{d['top']} ({', '.join(conns)});")
    return (
        "`default_nettype none\nmodule array_bank (\n    "
        + ",\n    ".join(ports)
        + "\n);\n"
        + "\n".join(body)
        + "\nendmodule\n`default_nettype wire\n"
    )


@pytest.fixture(scope="module")
def array_bank(tmp_path_factory: pytest.TempPathFactory) -> tuple[sim.SimBuild, list[Any]]:
    root = tmp_path_factory.mktemp("array_bank")
    sources: dict[str, Path] = {}
    designs = []
    for i, (kind, rows, cols, a_bits, w_bits, vector, acc_bits) in enumerate(ARRAYS):
        pe: dict[str, object] = {"kind": kind, "acc_bits": acc_bits}
        if kind == "xnor":
            pe["vector"] = vector
        else:
            pe.update(a_bits=a_bits, w_bits=w_bits)
        hw = hardware_spec_from_dict(
            {"name": IDS[i], "pe": pe, "array": {"rows": rows, "cols": cols}}
        )
        top = f"array_{i}"
        design = emit_design(hw, root / top, top=top)
        for rel in design.manifest["files"]:  # shared library modules are identical
            path = design.out_dir / rel
            first = sources.setdefault(path.name, path)
            assert first.read_text() == path.read_text(), path.name
        designs.append(
            {
                "prefix": f"a{i}_",
                "top": top,
                "ports": design.manifest["ports"],
                "config": {
                    "kind": kind,
                    "rows": rows,
                    "cols": cols,
                    "a_bits": a_bits,
                    "w_bits": w_bits,
                    "vector": vector,
                    "acc_bits": acc_bits,
                    "prefix": f"a{i}_",
                    "seed": 7 + rows * 31 + cols,
                    "random_tiles": 12,
                },
            }
        )
    wrapper = root / "array_bank.v"
    wrapper.write_text(_wrapper(designs))
    build = sim.build([*sorted(sources.values()), wrapper], "array_bank", root / "build")
    return build, designs


@pytest.mark.sim
def test_arrays_gemm_bit_exact(array_bank: tuple[sim.SimBuild, list[Any]]) -> None:
    """All configurations run side by side in one simulation (messages name the array)."""
    build, designs = array_bank
    config = {"arrays": [d["config"] for d in designs]}
    assert sim.run(build, "tb_array", HERE, config, "arrays") == (3, 0)

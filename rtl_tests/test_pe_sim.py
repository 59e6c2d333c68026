"""PE verification: every PE kind at several widths, on Verilator and Icarus, bit-exact.

One wrapper (a "bank") instantiates all PEs of :data:`PE_BANK` side by side, so each simulator
builds once and the cocotb module ``tb_pe`` checks every PE after every clock edge against the
golden model in ``golden.py`` (random vectors with random control, corner vectors, long sums
that wrap small accumulators).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from autochip.builder import sim, templates_dir

HERE = Path(__file__).resolve().parent

# (kind, a_bits, w_bits, vector, acc_bits): widths 2..16, tiny to 64-bit accumulators.
PE_BANK: tuple[tuple[str, int, int, int, int], ...] = (
    ("mac", 8, 8, 1, 32),
    ("mac", 2, 2, 1, 4),
    ("mac", 16, 16, 1, 40),
    ("mac", 3, 7, 1, 10),
    ("mac", 4, 4, 1, 64),
    ("adder", 8, 8, 1, 32),
    ("adder", 2, 2, 1, 3),
    ("adder", 16, 16, 1, 20),
    ("adder", 5, 5, 1, 12),
    ("xnor", 1, 1, 1, 2),
    ("xnor", 1, 1, 8, 16),
    ("xnor", 1, 1, 64, 32),
    ("xnor", 1, 1, 7, 5),
)


def _pes() -> list[dict[str, Any]]:
    return [
        {"kind": k, "a_bits": a, "w_bits": w, "vector": v, "acc_bits": acc}
        for k, a, w, v, acc in PE_BANK
    ]


def _bank_verilog(pes: list[dict[str, Any]]) -> str:
    ports = [
        "input wire clk",
        "input wire rst",
        "input wire en",
        "input wire clr",
        "input wire valid",
    ]
    body = []
    for i, pe in enumerate(pes):
        aw = pe["vector"] if pe["kind"] == "xnor" else pe["a_bits"]
        ww = pe["vector"] if pe["kind"] == "xnor" else pe["w_bits"]
        ports += [
            f"input wire [{aw - 1}:0] a_{i}",
            f"input wire [{ww - 1}:0] w_{i}",
            f"output wire [{pe['acc_bits'] - 1}:0] acc_{i}",
        ]
        if pe["kind"] == "mac":
            params = f".A_BITS({aw}), .W_BITS({ww})"
        elif pe["kind"] == "adder":
            params = f".BITS({aw})"
        else:
            params = f".V({aw})"
        body.append(
            f"    autochip_pe_{pe['kind']} #({params}, .ACC_BITS({pe['acc_bits']})) u_{i} "
            f"(.clk(clk), .rst(rst), .en(en), .clr(clr), .valid(valid), .a(a_{i}), "
            f".w(w_{i}), .acc(acc_{i}));"
        )
    return (
        "`default_nettype none\nmodule pe_bank (\n    "
        + ",\n    ".join(ports)
        + "\n);\n"
        + "\n".join(body)
        + "\nendmodule\n`default_nettype wire\n"
    )


@pytest.fixture(scope="module", params=sim.SIMULATORS)
def pe_bank(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> sim.SimBuild:
    simulator = request.param
    if simulator == "icarus" and shutil.which("iverilog") is None:
        pytest.fail("Icarus Verilog (iverilog) is not installed: `make setup` installs it")
    folder = tmp_path_factory.mktemp(f"pe_bank_{simulator}")
    wrapper = folder / "pe_bank.v"
    wrapper.write_text(_bank_verilog(_pes()))
    sources = [templates_dir() / f"autochip_pe_{k}.v" for k in ("mac", "adder", "xnor")]
    return sim.build([*sources, wrapper], "pe_bank", folder / "build", simulator)


@pytest.mark.sim
def test_pe_bank_bit_exact(pe_bank: sim.SimBuild) -> None:
    """Golden model: golden.pe_step (mac a*w, adder -|a-w|, xnor V-2*popcount(a^w))."""
    config = {"pes": _pes(), "seed": 20261122, "random_cycles": 1500}
    tests, failed = sim.run(pe_bank, "tb_pe", HERE, config, "bank")
    assert (tests, failed) == (3, 0)

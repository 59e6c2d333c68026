"""`autochip synth`: Yosys on one small emitted design per target, latch check, Fmax, model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autochip.builder import emit_design
from autochip.builder.synth import classify_cells, parse_fmax, synth_design
from autochip.cli import main
from autochip.errors import ToolError
from autochip.hw import hardware_spec_from_dict
from autochip.hw.fpga_model import estimate_array_resources
from autochip.hw.spec import HardwareSpec


def spec(kind: str, rows: int, cols: int, **pe: int) -> HardwareSpec:
    return hardware_spec_from_dict(
        {"name": "s", "pe": {"kind": kind, **pe}, "array": {"rows": rows, "cols": cols}}
    )


def test_classify_cells() -> None:
    cells = {"LUT6": 5, "LUT2": 3, "FDRE": 7, "DSP48E1": 2, "CARRY4": 4, "MUXF7": 1, "IBUF": 3}
    got = classify_cells("xilinx", cells)
    assert (got["lut"], got["ff"], got["dsp"], got["carry"], got["mux"], got["io"]) == (
        8,
        7,
        2,
        4,
        1,
        3,
    )
    ecp5 = classify_cells("ecp5", {"LUT4": 9, "TRELLIS_FF": 4, "CCU2C": 2, "MULT18X18D": 1})
    assert (ecp5["lut"], ecp5["ff"], ecp5["carry"], ecp5["dsp"], ecp5["other"]) == (9, 4, 2, 1, 0)


def test_parse_fmax_takes_the_routed_figure() -> None:
    log = (
        "Info: Max frequency for clock 'clk': 120.50 MHz (PASS at 12.00 MHz)\n"
        "Info: Max frequency for clock 'clk': 98.07 MHz (PASS at 12.00 MHz)\n"
    )
    assert parse_fmax(log) == {"clk": 98.07}


def test_not_a_design(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", str(tmp_path), "--target", "ecp5"]) == 2
    err = capsys.readouterr().err
    assert "expected an emitted design in" in err and "found none" in err


@pytest.mark.synth
def test_xilinx_adder_matches_model(tmp_path: Path) -> None:
    """Yosys synth_xilinx counts, and the calibrated model's estimate for the same array."""
    hw = spec("adder", 2, 2, a_bits=8, w_bits=8, acc_bits=32)
    emit_design(hw, tmp_path)
    r = synth_design(tmp_path, "xilinx")
    assert r.lut > 0 and r.ff > 0 and r.carry > 0 and r.dsp_blocks == 0 and r.bram == 0
    # register bits of the RTL: 4 accumulators + 2 output lanes x 32, hops 2*(8+1) + 2*8,
    # skew (8+1) + 8, controller (busy, wait, rd_row, out_valid/last/row); Yosys may merge
    # a control bit or two but must not add registers or drop datapath ones
    rtl_bits = 4 * 32 + 2 * 32 + 2 * 9 + 2 * 8 + 9 + 8 + 6
    assert rtl_bits - 2 <= r.ff <= rtl_bits
    est = estimate_array_resources(hw, "xilinx")
    assert abs(est.lut - r.lut) <= 0.15 * r.lut, (est, r.lut)
    assert abs(est.ff - r.ff) <= 0.05 * r.ff, (est, r.ff)


@pytest.mark.synth
def test_ice40_fmax(tmp_path: Path) -> None:
    emit_design(spec("xnor", 2, 2, vector=8, acc_bits=16), tmp_path)
    r = synth_design(tmp_path, "ice40")
    assert r.lut > 0 and r.ff > 0 and r.dsp_blocks == 0
    assert r.fmax_mhz is not None and 10 < r.fmax_mhz < 1000
    assert "--hx8k" in r.fmax_note
    assert (tmp_path / "synth" / "ice40" / "nextpnr.log").is_file()


@pytest.mark.synth
def test_cli_ecp5_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    emit_design(spec("mac", 2, 2, a_bits=8, w_bits=8, acc_bits=32), tmp_path)
    assert main(["synth", str(tmp_path), "--target", "ecp5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target"] == "ecp5" and out["latches"] == 0
    assert out["dsp"] == 4  # one MULT18X18D per 8x8 PE
    assert out["lut"] > 0 and out["ff"] > 0 and out["carry"] > 0
    assert out["fmax_mhz"] is not None and out["fmax_mhz"] > 10
    assert out["cells"]["MULT18X18D"] == 4


@pytest.mark.synth
def test_latch_is_an_error(tmp_path: Path) -> None:
    emit_design(spec("mac", 1, 1, a_bits=4, w_bits=4, acc_bits=16), tmp_path)
    mux = tmp_path / "rtl" / "autochip_row_mux.v"
    text = mux.read_text()
    anchor = "        y = {ROW_W{1'b0}};\n"
    assert anchor in text
    mux.write_text(text.replace(anchor, ""))  # y now holds its value when no row matches
    with pytest.raises(ToolError, match=r"synthesis for xilinx inferred latches \(\d+ x LD"):
        synth_design(tmp_path, "xilinx")

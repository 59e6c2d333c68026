"""HardwareSpec, Platform and Technology: parsing, bad input, and the data against its sources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autochip.errors import SpecError
from autochip.hw.platform import load_platform, platform_names
from autochip.hw.spec import PESpec, hardware_spec_from_dict, load_hardware_spec
from autochip.hw.tech import load_technology

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples" / "hw").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_load(path: Path) -> None:
    hw = load_hardware_spec(path)
    text = path.read_text()
    assert f"name: {hw.name}" in text  # the YAML's own name, not a default
    assert hw.rows >= 1 and hw.cols >= 1


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "hw.yaml"
    p.write_text(text)
    return p


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "pe: {kind: mac, dtype: float, w_bits: 8}\narray: {rows: 0, cols: '16'}\n"
        "dataflow: rs\nbuffers:\n  ifmap: {size_kb: -1, bandwith: 3}\n  psum: {size_kb: 2}\n"
        "dram: 8\nclock: 100\n",
    )
    with pytest.raises(SpecError) as info:
        load_hardware_spec(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}: 9 problems:")
    for expected in (
        r"clock: unknown key; expected one of .* \(did you mean 'clock_mhz'\?\)",
        r"pe.w_bits: a float PE is fp16 or fp32: expected one of \[16, 32\], found 8",
        r"array.rows: expected a value >= 1, found 0",
        r"array.cols: expected int, found str '16'",
        r"dataflow: expected one of \['os', 'ws', 'is'\], found 'rs'",
        r"buffers.psum: unknown key",
        r"buffers.ifmap.bandwith: unknown key; .*did you mean 'bandwidth'",
        r"buffers.ifmap.size_kb: expected a value >= 0.001, found -1.0",
        r"dram: expected a mapping, found int 8",
    ):
        assert re.search(expected, msg), expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"found an empty file"),
        ("array: [16, 16\n", r"invalid YAML at line 2, column 1"),
        ("- 1\n- 2\n", r"expected a mapping, found list \[1, 2\]"),
        ("array: {rows: 8}\n", r": array.cols: required, not given"),
        ("array: {rows: 8, cols: 8}\npe: {kind: xnor, w_bits: 4}\n", r"xnor PE works on 1-bit"),
        ("array: {rows: 8, cols: 8}\npe: {kind: mac, vector: 4}\n", r"pe.vector: only xnor"),
        (
            "array: {rows: 8, cols: 8}\npe: {kind: adder, w_bits: 4, a_bits: 8}\n",
            r"w_bits == a_bits",
        ),
        (
            "array: {rows: 8, cols: 8}\ndram: {bandwidth: 0}\n",
            r"dram.bandwidth: expected a value >= ",
        ),
        ("array: {rows: true, cols: 8}\n", r"array.rows: expected int, found bool True"),
    ],
)
def test_bad_specs(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        load_hardware_spec(_write(tmp_path, text))


def test_missing_file() -> None:
    with pytest.raises(SpecError, match=r"expected a YAML file, found no file at 'nope\.yaml'"):
        load_hardware_spec("nope.yaml")


def test_float_pe_defaults_to_fp32() -> None:
    hw = hardware_spec_from_dict({"array": {"rows": 2, "cols": 2}, "pe": {"dtype": "float"}})
    assert (hw.pe.w_bits, hw.pe.a_bits) == (32, 32)


# -- platforms: the data against ../shared/REFERENCE.md (vendor data sheets) -------------------
REFERENCE_DEVICES = {
    "xc7z020": (53200, 106400, 220, 140),
    "xc7z045": (218600, 437200, 900, 545),
    "xczu3eg": (70560, 141120, 360, 216),
    "xczu9eg": (274080, 548160, 2520, 912),
    "xcvu9p": (1182240, 2364480, 6840, 2160),
    "ice40up5k": (5280, 5280, 8, 30),
    "ice40hx8k": (7680, 7680, 0, 32),
    "lfe5u-25f": (24000, 24000, 28, 56),
    "lfe5u-85f": (84000, 84000, 156, 208),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_DEVICES))
def test_fpga_devices_match_reference(name: str) -> None:
    dev = load_platform(name).device
    assert dev is not None
    assert (dev.lut, dev.ff, dev.dsp, dev.bram.count) == REFERENCE_DEVICES[name]


def test_boards_alias_devices_and_every_platform_loads() -> None:
    assert load_platform("PYNQ-Z2").device == load_platform("xc7z020").device
    assert load_platform("ultra96").device == load_platform("xczu3eg").device
    for name in platform_names():
        p = load_platform(name)
        assert p.default_hw.rows >= 1
        assert p.is_fpga == (p.device is not None)


def test_unknown_platform() -> None:
    with pytest.raises(
        SpecError,
        match=r"--platform: expected one of .*pynq-z2.*"
        r"found unknown platform 'pynq'",
    ):
        load_platform("pynq")


# -- technology: Horowitz 45 nm and Stillmaker & Baas scaling -----------------------------------


def test_horowitz_45nm_unit_costs() -> None:
    t = load_technology(45, 0.9)
    # int8 MAC = 8-bit multiply 0.2 pJ + 32-bit accumulate 0.1 pJ; fp32 = 3.7 + 0.9 (Horowitz)
    assert t.pe_op_energy_pj(PESpec(w_bits=8, a_bits=8, acc_bits=32)) == pytest.approx(0.3)
    fp32 = PESpec(dtype="float", w_bits=32, a_bits=32, acc_bits=32)
    assert t.pe_op_energy_pj(fp32) == pytest.approx(4.6)
    # SRAM: 64-bit reads of 8 KB / 32 KB / 1 MB cost 10 / 20 / 100 pJ, monotone in between
    for size, pj in ((8192, 10.0), (32768, 20.0), (1048576, 100.0)):
        assert t.sram_read_pj_per_bit(size) * 64 == pytest.approx(pj)
    sizes = [2**k for k in range(10, 24)]
    e = [t.sram_read_pj_per_bit(s) for s in sizes]
    assert e == sorted(e)
    assert t.dram_pj_per_bit * 64 == pytest.approx(1300, rel=0.01)  # 1.3 nJ per 64 bits
    # a register bit: the 8-bit add's energy scaled by DFF_X1 area / 8-bit adder area
    assert t.register_energy_pj(1) == pytest.approx(0.03 * 4.522 / 36, rel=1e-3)
    # narrower arithmetic is cheaper, in energy and area
    widths = [PESpec(w_bits=b, a_bits=b, acc_bits=32) for b in (2, 4, 8, 16)]
    assert [t.pe_op_energy_pj(p) for p in widths] == sorted(t.pe_op_energy_pj(p) for p in widths)
    assert t.pe_area_um2(PESpec(kind="adder")) < t.pe_area_um2(PESpec(kind="mac"))


def test_stillmaker_baas_scaling_to_16nm() -> None:
    """Energy factor f(V) = aV^2 + bV + c with the HP coefficients of Stillmaker & Baas (2017):
    45 nm (1.103, -0.362, 0.2767) at 0.9 V, 16 nm (0.2958, -0.1241, 0.03024) at 0.7 V; area
    factor 45 -> 16 nm 0.19."""
    base = load_technology(45, 0.9)
    t16 = load_technology(16, 0.7)
    f45 = 1.103 * 0.81 - 0.362 * 0.9 + 0.2767
    f16 = 0.2958 * 0.49 - 0.1241 * 0.7 + 0.03024
    pe = PESpec()
    assert t16.pe_op_energy_pj(pe) / base.pe_op_energy_pj(pe) == pytest.approx(f16 / f45)
    assert t16.pe_area_um2(pe) / base.pe_area_um2(pe) == pytest.approx(0.19)
    assert t16.sram_read_pj_per_bit(65536) < base.sram_read_pj_per_bit(65536)
    with pytest.raises(SpecError, match="expected a node between 7 and 45 nm, found 90"):
        load_technology(90, 1.2)


def test_new_user_mistakes(tmp_path: Path) -> None:
    p = _write(tmp_path, "array: {rows: 8, cols: 8}\ndataflow: WS\npe: {kind: MAC}\n")
    with pytest.raises(
        SpecError,
        match=r"pe.kind: .*found 'MAC' \(did you mean 'mac'\?\)\n"
        r"  - dataflow: .*found 'WS' \(did you mean 'ws'\?\)",
    ):
        load_hardware_spec(p)
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match=r"expected a UTF-8 text file"):
        load_hardware_spec(p)
    p.write_text("array: 16x16\n")
    with pytest.raises(SpecError, match=r"array: expected a mapping, found str '16x16'"):
        load_hardware_spec(p)

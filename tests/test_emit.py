"""`autochip emit`: parameters, validation errors, determinism, manifest, lint of every PE kind."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from autochip.builder import array_params, emit_design, max_reduction_depth
from autochip.builder.lint import lint_design
from autochip.builder.tools import templates_dir
from autochip.cli import main
from autochip.errors import SpecError, ToolError
from autochip.hw import hardware_spec_from_dict
from autochip.hw.spec import HardwareSpec, PESpec
from autochip.predictor.rtl_model import os_gemm_cycles, os_tile_cycles


def spec(kind: str = "mac", rows: int = 2, cols: int = 3, **pe: Any) -> HardwareSpec:
    return hardware_spec_from_dict(
        {"name": "t", "pe": {"kind": kind, **pe}, "array": {"rows": rows, "cols": cols}}
    )


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---- parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,pe,a_w,b_w",
    [
        ("mac", {"a_bits": 8, "w_bits": 4}, 8, 4),
        ("adder", {"a_bits": 6, "w_bits": 6}, 6, 6),
        ("xnor", {"vector": 16}, 16, 16),
    ],
)
def test_params_widths(kind: str, pe: dict[str, int], a_w: int, b_w: int) -> None:
    p = array_params(spec(kind, 3, 5, acc_bits=24, **pe))
    assert (p.a_width, p.b_width) == (a_w, b_w)
    assert (p.a_bus_bits, p.b_bus_bits, p.out_bus_bits) == (3 * a_w, 5 * b_w, 5 * 24)
    assert p.row_bits == 2 and p.wait_bits == 3 and p.drain_cycles == 4
    assert p.pe_module == f"autochip_pe_{kind}"


@pytest.mark.parametrize(
    "kind,a,w,v,acc",
    [
        ("mac", 8, 8, 1, 32),
        ("mac", 2, 3, 1, 5),
        ("mac", 16, 16, 1, 33),
        ("adder", 8, 8, 1, 16),
        ("adder", 2, 2, 1, 3),
        ("xnor", 1, 1, 64, 12),
        ("xnor", 1, 1, 1, 2),
    ],
)
def test_max_depth_is_the_overflow_boundary(kind: str, a: int, w: int, v: int, acc: int) -> None:
    """T terms of the largest magnitude fit a signed acc; T + 1 do not (brute-force bound)."""
    t = max_reduction_depth(kind, a, w, v, acc)
    lo, hi = -(2 ** (acc - 1)), 2 ** (acc - 1) - 1
    if kind == "mac":
        extreme = [(-(2 ** (a - 1))) * (-(2 ** (w - 1))), (-(2 ** (a - 1))) * (2 ** (w - 1) - 1)]
    elif kind == "adder":
        extreme = [-(2**a - 1)]
    else:
        extreme = [v, -v]
    assert t >= 1
    assert all(lo <= t * e <= hi for e in extreme)
    assert any(not lo <= (t + 1) * e <= hi for e in extreme)


def test_cycles_formula() -> None:
    assert os_tile_cycles(4, 4, 16) == 16 + 4 + 4 - 1
    assert os_tile_cycles(1, 1, 1) == 2  # one beat, then one read-out register
    assert os_gemm_cycles(5, 7, 9, 4, 4) == 2 * 3 * (7 + 4 + 4 - 1)
    with pytest.raises(SpecError, match=r"depth: expected an integer >= 1, found 0"):
        os_tile_cycles(2, 2, 0)


# ---- bad specs: one error listing every problem ------------------------------------------


def test_every_problem_in_one_error() -> None:
    base = spec("mac")
    pe = PESpec(kind="mac", dtype="float", a_bits=1, w_bits=17, acc_bits=8)
    hw = HardwareSpec("t", pe, 0, 2, "ws", base.ifmap, base.weight, base.ofmap, base.dram)
    with pytest.raises(SpecError) as err:
        array_params(hw, source="my.yaml")
    text = str(err.value)
    assert text.startswith("my.yaml: 6 problems:"), text
    for needle in (
        "pe.dtype: the RTL library builds integer PEs only, found 'float'",
        "pe.a_bits: expected 2..16 bits for a mac PE, found 1",
        "pe.w_bits: expected 2..16 bits for a mac PE, found 17",
        "array.rows: expected at least 1 PE, found 0",
        "dataflow: the RTL library renders ['os'] arrays, found 'ws'",
        "pe.acc_bits: 8 bits cannot hold one mac term (a=1 bits, w=17 bits); expected at least 18",
    ):
        assert needle in text


@pytest.mark.parametrize(
    "kind,pe,message",
    [
        (
            "mac",
            {"a_bits": 8, "w_bits": 8, "acc_bits": 15},
            r"pe.acc_bits: 15 bits cannot hold one mac term \(a=8 bits, w=8 bits\); "
            r"expected at least 16",
        ),
        (
            "adder",
            {"a_bits": 8, "w_bits": 8, "acc_bits": 8},
            r"cannot hold one adder term .* expected at least 9",
        ),
        ("xnor", {"vector": 64, "acc_bits": 7}, r"cannot hold one xnor term .*at least 8"),
        (
            "mac",
            {"a_bits": 20, "w_bits": 8},
            r"pe.a_bits: expected 2..16 bits for a mac PE, found 20",
        ),
        ("adder", {"a_bits": 17, "w_bits": 17}, r"expected 2..16 bits for a adder PE, found 17"),
    ],
)
def test_unsupported_pe(kind: str, pe: dict[str, int], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        array_params(spec(kind, **pe))


def test_depth_overflow() -> None:
    hw = spec("mac", a_bits=8, w_bits=8, acc_bits=20)  # 2^14 per term: 31 terms fit
    assert array_params(hw, depth=31).max_depth == 31
    with pytest.raises(
        SpecError,
        match=r"20 bits overflow at reduction depth 32; the deepest "
        r"safe sum is 31 terms",
    ):
        array_params(hw, depth=32)


def test_cli_bad_spec_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hw = write_yaml(
        tmp_path / "hw.yaml",
        "pe: {kind: mac, a_bits: 8, w_bits: 1}\narray: {rows: 2, cols: 2}\ndataflow: ws\n",
    )
    out = tmp_path / "out"
    assert main(["emit", "--hw", str(hw), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"autochip emit: error: {hw}: 2 problems:")
    assert "pe.w_bits: expected 2..16 bits for a mac PE, found 1" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_cli_zero_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hw = write_yaml(
        tmp_path / "hw.yaml", "pe: {kind: xnor, vector: 8}\narray: {rows: 0, cols: 2}\n"
    )
    assert main(["emit", "--hw", str(hw), "--out", str(tmp_path / "o")]) == 2
    assert "array.rows: expected a value >= 1, found 0" in capsys.readouterr().err


def test_missing_templates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from autochip import _resources

    monkeypatch.setattr(_resources, "_PACKAGE", tmp_path / "pkg" / "autochip")
    monkeypatch.setattr(_resources.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ToolError, match=r"expected the Verilog templates inside the package"):
        templates_dir()


# ---- output: files, determinism, manifest ------------------------------------------------


def test_emit_files_and_determinism(tmp_path: Path) -> None:
    hw = spec("adder", 3, 2, a_bits=8, w_bits=8, acc_bits=24)
    first = emit_design(hw, tmp_path / "a")
    emit_design(hw, tmp_path / "b")
    names = sorted(
        p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert names == [
        "files.f",
        "manifest.json",
        "rtl/autochip_delay.v",
        "rtl/autochip_pe_adder.v",
        "rtl/autochip_pe_array.v",
        "rtl/autochip_row_mux.v",
    ]
    for name in names:
        a = (tmp_path / "a" / name).read_bytes()
        assert a == (tmp_path / "b" / name).read_bytes(), name
        assert str(tmp_path).encode() not in a
        assert not re.search(rb"20\d\d-\d\d-\d\d", a), f"timestamp in {name}"
    assert (tmp_path / "a" / "files.f").read_text().split() == first.manifest["files"]


def test_manifest_matches_rtl(tmp_path: Path) -> None:
    hw = spec("mac", 3, 4, a_bits=6, w_bits=5, acc_bits=28)
    result = emit_design(hw, tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["top"] == "autochip_pe_array"
    assert manifest["pe"]["parameters"] == {"A_BITS": 6, "W_BITS": 5, "ACC_BITS": 28}
    assert manifest["array"] == {"rows": 3, "cols": 4, "dataflow": "os"}
    cycles = manifest["cycles"]
    assert cycles["per_tile_formula"] == "T + R + C - 1"
    assert cycles["per_tile_examples"]["64"] == os_tile_cycles(3, 4, 64)
    assert cycles["max_depth"] == max_reduction_depth("mac", 6, 5, 1, 28)
    # every manifest port is declared in the rendered top with that width
    top = (tmp_path / "rtl" / "autochip_pe_array.v").read_text()
    declared = {
        m[2]: (m[0], int(m[1]) + 1 if m[1] else 1)
        for m in re.findall(
            r"^\s*(input|output)\s+(?:wire|reg)\s+(?:\[(\d+):0\]\s+)?(\w+)", top, re.M
        )
    }
    assert {p["name"]: (p["direction"], p["width"]) for p in manifest["ports"]} == declared
    assert declared["a_in"] == ("input", 18) and declared["out_data"] == ("output", 112)
    assert result.params.max_depth == cycles["max_depth"]


def test_cli_emit_json_and_lint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hw = write_yaml(
        tmp_path / "hw.yaml",
        "name: demo\npe: {kind: xnor, vector: 32, acc_bits: 16}\narray: {rows: 2, cols: 2}\n",
    )
    assert (
        main(
            [
                "emit",
                "--hw",
                str(hw),
                "--out",
                str(tmp_path / "o"),
                "--lint",
                "--json",
                "--depth",
                "100",
            ]
        )
        == 0
    )
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["spec"] == "demo" and manifest["pe"]["vector"] == 32


# ---- lint: every PE kind, several shapes --------------------------------------------------

LINT_CASES = [
    ("mac", 1, 1, {"a_bits": 2, "w_bits": 2, "acc_bits": 4}),
    ("mac", 4, 4, {"a_bits": 8, "w_bits": 8, "acc_bits": 32}),
    ("mac", 3, 5, {"a_bits": 16, "w_bits": 3, "acc_bits": 64}),
    ("adder", 1, 4, {"a_bits": 8, "w_bits": 8, "acc_bits": 9}),
    ("adder", 5, 3, {"a_bits": 16, "w_bits": 16, "acc_bits": 40}),
    ("xnor", 4, 1, {"vector": 1, "acc_bits": 2}),
    ("xnor", 3, 3, {"vector": 64, "acc_bits": 20}),
]


@pytest.mark.parametrize(
    "kind,rows,cols,pe", LINT_CASES, ids=[f"{c[0]}-{c[1]}x{c[2]}" for c in LINT_CASES]
)
def test_lint_clean(tmp_path: Path, kind: str, rows: int, cols: int, pe: dict[str, int]) -> None:
    emit_design(spec(kind, rows, cols, **pe), tmp_path)
    lint_design(tmp_path)  # raises ToolError on any Verilator -Wall finding


def test_lint_reports_findings(tmp_path: Path) -> None:
    emit_design(spec("mac", 2, 2), tmp_path)
    top = tmp_path / "rtl" / "autochip_pe_array.v"
    text = top.read_text()
    anchor = "    assign in_ready = ~busy;\n"
    assert anchor in text
    top.write_text(text.replace(anchor, anchor + "    wire [1:0] widened = busy;\n"))
    finding = r"not clean:\n%Warning-WIDTHEXPAND: rtl/autochip_pe_array.v:\d+"
    with pytest.raises(ToolError, match=finding):
        lint_design(tmp_path)


def test_top_name(tmp_path: Path) -> None:
    result = emit_design(spec("mac", 2, 2), tmp_path, top="my_array")
    assert result.manifest["top"] == "my_array"
    assert "module my_array (" in (tmp_path / "rtl" / "my_array.v").read_text()
    lint_design(tmp_path)
    with pytest.raises(
        SpecError,
        match=r"top: expected a Verilog identifier not used by the "
        r"library, found '9x'",
    ):
        array_params(spec("mac"), top="9x")
    with pytest.raises(SpecError, match=r"found 'autochip_pe_mac'"):
        array_params(spec("mac"), top="autochip_pe_mac")

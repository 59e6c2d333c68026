"""The band planner (autochip.builder.tiling) and the compiler's bands: every output row,
channel and group covered exactly once, halos that hold every window, every band within the
buffers, and the descriptors' DMA runs reading and writing exactly those bytes."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from autochip.builder.compiler import CompileError, compile_model
from autochip.builder.core import core_params
from autochip.builder.tiling import band_rows, compute_tiling, pitch, vector_tiling
from autochip.hw import load_hardware_spec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "rtl_tests" / "core"))
from core_models import tiled_model  # noqa: E402

SMALL = HERE.parent / "rtl_tests" / "core" / "core_small8x8.yaml"


def test_pitch_keeps_byte_lanes() -> None:
    for bus in (4, 8, 16, 64):
        for n in range(1, 200, 7):
            for stride in range(n, 600, 13):
                p = pitch(n, stride, bus)
                assert n <= p < n + bus and (p - stride) % bus == 0


def _conv_cases(rng: np.random.Generator, n: int) -> list[dict[str, int]]:
    cases = []
    for _ in range(n):
        kr = int(rng.integers(1, 8))
        sh = int(rng.integers(1, 4))
        ph = int(rng.integers(0, kr))
        h = int(rng.integers(kr, 60))
        p = (h + 2 * ph - kr) // sh + 1
        w = int(rng.integers(1, 60))
        cases.append({"cg": int(rng.integers(1, 40)), "h": h, "w": w,
                      "groups": int(rng.integers(1, 9)), "kr": kr, "sh": sh, "ph": ph, "p": p,
                      "q": max(1, w - int(rng.integers(0, 3))), "cols": int(rng.choice([4, 8, 16])),
                      "bus": int(rng.choice([4, 16, 64])),
                      "if_depth": int(rng.integers(64, 8000)),
                      "o_depth": int(rng.integers(256, 8000)),
                      "off_in": 0})  # fmt: skip
    return cases


def test_compute_bands_cover_every_output_once_with_their_halos() -> None:
    rng = np.random.default_rng(11)
    tiled = refused = 0
    for case in _conv_cases(rng, 3000):
        ph = case.pop("ph")
        til = compute_tiling(**case)
        h, w, p, q, kr, sh = (case[k] for k in ("h", "w", "p", "q", "kr", "sh"))
        cg, groups, bus, cols = case["cg"], case["groups"], case["bus"], case["cols"]
        if til is None:  # not even one output row of one group fits
            refused += 1
            rows_in = min(h, kr)
            one_in = bus - 1 + (cg - 1) * pitch(rows_in * w, h * w, bus) + rows_in * w
            one_out = bus - 1 + cols * pitch(q, p * q, bus)
            assert one_in > case["if_depth"] or one_out > case["o_depth"]
            continue
        rows_seen = np.zeros(p, dtype=int)
        for i in range(til.row_bands):
            oy0, oy1, iy0, iy1 = band_rows(i, til.rows, p, h, kr, sh, ph)
            assert oy1 > oy0
            rows_seen[oy0:oy1] += 1
            # the band's windows read input rows [oy*sh - ph, oy*sh - ph + kr) within [0, h)
            need0 = max(0, oy0 * sh - ph)
            need1 = min(h, (oy1 - 1) * sh - ph + kr)
            assert (iy0, iy1) == (need0, need1)
            if til.tiled:
                ch = til.groups * cg
                if til.row_bands > 1:
                    span = (ch - 1) * pitch((iy1 - iy0) * w, h * w, bus) + (iy1 - iy0) * w
                    out = cols * pitch((oy1 - oy0) * q, p * q, bus)
                else:
                    span, out = ch * h * w, cols * p * q
                assert bus - 1 + span <= case["if_depth"]
                assert bus - 1 + out <= case["o_depth"]
            else:
                assert groups * cg * h * w <= case["if_depth"]
        assert (rows_seen == 1).all()
        assert til.group_bands * til.groups >= groups > (til.group_bands - 1) * til.groups
        tiled += til.tiled
    assert tiled > 300 and refused > 100


def test_vector_bands_cover_every_channel_once() -> None:
    rng = np.random.default_rng(5)
    for _ in range(2000):
        c, hw, pq = int(rng.integers(1, 300)), int(rng.integers(1, 400)), int(rng.integers(1, 400))
        bus, two = int(rng.choice([4, 16])), bool(rng.integers(0, 2))
        if_depth, o_depth = int(rng.integers(64, 20000)), int(rng.integers(64, 20000))
        til = vector_tiling(c=c, hw=hw, pq=pq, two_inputs=two, bus=bus, if_depth=if_depth,
                            o_depth=o_depth, off_in=0, off_in2=0, off_out=0)  # fmt: skip
        if til is None:
            need = (-(-(bus - 1 + hw) // bus) * bus + bus - 1 + hw) if two else bus - 1 + hw
            assert need > if_depth or bus - 1 + pq > o_depth
            continue
        assert til.row_bands == 1
        assert til.group_bands * til.groups >= c > (til.group_bands - 1) * til.groups


def test_compiled_bands_read_and_write_exactly_their_bytes() -> None:
    """The tiled network's descriptors on the small core: every output byte of every tiled
    layer written by exactly one run, every input run inside its tensor, each band's ifmap
    span within one copy."""
    core = core_params(load_hardware_spec(SMALL))
    model = tiled_model()
    prog = compile_model(model, core)
    alias = {op.output: op.input for op in model.ops if type(op).__name__ == "FlattenOp"}
    sources = {op.name: alias.get(op.input, op.input) for op in model.ops if hasattr(op, "input")}
    written: dict[str, np.ndarray] = {}
    for lay in prog.layers:
        addr, shape = prog.tensors[lay.output]
        size = int(np.prod(shape))
        cover = written.setdefault(lay.output, np.zeros(size, dtype=int))
        g = lay.get
        if lay.mode == "vector":
            cover[g("out_addr") - addr : g("out_addr") - addr + g("c_pq")] += 1
            continue
        nch = g("ntiles") // g("kt") * g("kg")  # the band's groups' output channels
        for k in range(nch):
            a = g("out_addr") + k * g("out_stride") - addr
            n = g("out_run") or g("pq")
            cover[a : a + n] += 1
        span = g("in_len") + max(0, g("in_runs") - 1) * g("in_bstride")
        assert g("in_addr") % core.bus_bytes + span <= core.if_depth
        src_addr, src_shape = prog.tensors[sources[lay.name.split("@")[0]]]
        last = g("in_addr") + max(0, g("in_runs") - 1) * g("in_stride") + g("in_len")
        assert src_addr <= g("in_addr") and last <= src_addr + int(np.prod(src_shape))
        if g("in_runs") > 1:
            assert (g("in_bstride") - g("in_stride")) % core.bus_bytes == 0
            assert (g("o_pitch") - g("out_stride")) % core.bus_bytes == 0
    for name, cover in written.items():
        assert (cover == 1).all(), name
    # weights outermost (c5: 2 passes of 11 row bands; pw: 1 pass): a band that keeps the
    # weights follows a band of the same layer with the same weight tiles
    keep = [i for i, lay in enumerate(prog.layers) if lay.get("op") >> 7 & 1]
    assert {prog.layers[i].name.split("@")[0] for i in keep} == {"c5", "pw"}
    for i in keep:
        a, b = prog.layers[i - 1], prog.layers[i]
        assert a.name.split("@")[0] == b.name.split("@")[0]
        assert [a.get(k) for k in ("w_addr", "p_addr", "ntiles", "tpp")] == [
            b.get(k) for k in ("w_addr", "p_addr", "ntiles", "tpp")
        ]
        assert b.get("ntiles") == b.get("tpp")  # one pass: the buffers hold all of it
    tiled = {lay.name.split("@")[0] for lay in prog.layers if "@" in lay.name}
    assert tiled == {"c5", "dw", "pw", "add", "mp", "gap"}


def test_refusal_says_what_is_not_tiled() -> None:
    core = core_params(load_hardware_spec(SMALL))
    small = replace(core, if_depth=96)  # one 5-row band of 3 channels x 19: 285 bytes > 96
    with pytest.raises(CompileError, match=r"op 'c5': .*one output row of one group needs .* "
                       r"it needs column bands or partial sums of the reduction"):  # fmt: skip
        compile_model(tiled_model(), small)

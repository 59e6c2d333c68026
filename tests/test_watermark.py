"""The load watermark's planner (``autochip/builder/watermark.py``) against brute force, and
the compiler's use of it (op bit 16). The RTL side (bit-exact, cycles as predicted) is
checked by the network simulations in ``rtl_tests/core/test_core_sim.py``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from autochip.builder.compiler import compile_model
from autochip.builder.core import core_params
from autochip.builder.watermark import _first_over, _need, _ready, first_wait, plan
from autochip.hw import hardware_spec_from_dict
from autochip.predictor.core_model import dma_cycles, dram_timing

RD = int(dram_timing()["read_burst_overhead"])


@pytest.mark.parametrize(
    ("q", "sh", "ph", "kr", "wd"),
    [(32, 1, 1, 3, 32), (112, 2, 3, 7, 224), (5, 1, 0, 1, 5), (7, 2, 1, 3, 13), (4, 1, 0, 5, 12)],
)  # fmt: skip
def test_first_tile_past_a_byte_equals_brute_force(
    q: int, sh: int, ph: int, kr: int, wd: int
) -> None:
    # the bytes each pixel's window needs: its rows, whole, up to oy*sh - ph + kr - 1
    def need(p: int) -> int:
        return (p // q * sh - ph + kr) * wd

    pixels = list(range(q * 12))
    assert [int(_need(p, q, sh, ph, kr, wd)) for p in pixels] == [need(p) for p in pixels]
    assert all(need(a) <= need(b) for a, b in itertools.pairwise(pixels))
    for rows, thr in itertools.product((1, 3, 16), range(0, 6 * wd, max(1, wd // 3))):
        first = next(i for i in itertools.count() if need(i * rows + rows - 1) > thr)
        assert int(_first_over(thr, rows, q, sh, ph, kr, wd)) == first


def test_group_ready_cycles_are_the_runs_dma_cycles() -> None:
    # three channels, groups of 64 bytes of a 1,024-byte plane, a 16-byte bus; each run's done
    # the sum of the dma_cycles before it, one issue cycle more per run (the engine's LS_CMD)
    ready = _ready(bus=16, in_addr=4000, grp=64, groups=16, cin=3, plane=1024,
                   over=RD)  # fmt: skip
    done, want = 0, []
    for g in range(16):
        for c in range(3):
            done += dma_cycles(4000 + c * 1024 + g * 64, 64, False, 16) + 1
        want.append(done + 1)
    assert ready.tolist() == want
    # the first tile of 16 pixels of a 3x3 / pad 1 layer reads rows 0 and 1: one group
    wait = first_wait(rows=16, bus=16, in_addr=4000, grp=64, cin=3, plane=1024,
                      q=32, sh=1, ph=1, kr=3, wd=32, over=RD)  # fmt: skip
    assert int(wait) == 1 + max(0, want[0] - (16 + 2))


def _stem(**over: object) -> dict[str, object]:
    """ResNet-20's stem (3x32x32, 3x3 / pad 1, 16 channels) on a 16x16 core, 128-bit bus."""
    kw: dict[str, object] = dict(
        rows=16, cols=16, bus=16, in_addr=288944, t=27, pass_tiles=1, npt=64,
        pass_run=16 + 1 + 43 + 64 * 27, pf_busy=0, plain_load=dma_cycles(288944, 3072, False, 16),
        cin=3, h=32, wd=32, q=32, sh=1, ph=1, kr=3, over=RD,
    )  # fmt: skip
    kw.update(over)
    return kw


def test_plan_watermarks_the_stem_and_refuses_what_it_cannot_prove() -> None:
    use, grp, load = plan(**_stem())  # type: ignore[arg-type]
    assert bool(use) and int(grp) % 32 == 0 and int(load) < 20 < int(_stem()["plain_load"])
    # a tile period no longer than the column walk (T = 27 < C = 32): the forwarded writes
    # could take every cycle, so no proof that later tiles never wait
    assert not bool(plan(**_stem(cols=32))[0])  # type: ignore[arg-type]
    # a first pass too short for the load and then the prefetch
    assert not bool(plan(**_stem(pf_busy=1800))[0])  # type: ignore[arg-type]
    # one design per row, the same answer as one at a time
    rows = np.array([1, 4, 16, 16, 8])
    cols = np.array([1, 4, 16, 32, 9])
    many = plan(**_stem(rows=rows, cols=cols, npt=-(-1024 // rows),
                        pass_run=rows + 1 + rows + cols + 11 + -(-1024 // rows) * np.maximum(
                            27, np.maximum(rows, cols))))  # type: ignore[arg-type]  # fmt: skip
    for i in range(rows.size):
        r, c = int(rows[i]), int(cols[i])
        npt = -(-1024 // r)
        one = plan(**_stem(rows=r, cols=c, npt=npt,
                           pass_run=r + 1 + r + c + 11 + npt * max(27, r, c)))  # type: ignore[arg-type]  # fmt: skip
        assert [int(x[i]) for x in many] == [int(x) for x in one]


def test_compiler_watermarks_only_the_first_layer_where_the_planner_does() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rtl_tests" / "core"))
    from core_models import integer_model

    model = integer_model("lenet_digits", "quant")
    seen = 0
    for rows, cols, bus in ((16, 11, 8), (4, 4, 4), (8, 8, 16), (3, 5, 8)):
        hw = hardware_spec_from_dict({
            "pe": {"kind": "mac", "a_bits": 8, "w_bits": 8},
            "array": {"rows": rows, "cols": cols},
            "buffers": {"ifmap": {"size_kb": 16}, "weight": {"size_kb": 4},
                        "ofmap": {"size_kb": 2}},
            "dram": {"bandwidth": bus},
        })  # fmt: skip
        prog = compile_model(model, core_params(hw))
        ops = [lay.get("op") >> 16 & 1 for lay in prog.layers]
        assert not any(ops[1:])
        first = prog.layers[0]
        assert ops[0] == (first.get("in_grp") > 0)
        if ops[0]:
            seen += 1
            assert first.get("in_grp") % first.get("w") == 0  # whole rows
    assert seen >= 1

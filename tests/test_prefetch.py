"""Weight prefetch (descriptor op bit 12): the compiler's choice, the descriptor fields, the
scalar cycle model's equations and the batch model against it. (Bit-exactness and cycles in
simulation: ``rtl_tests/core/test_core_sim.py`` ``prefetch``.)"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from autochip.builder import compiler as compiler_mod
from autochip.builder.compiler import compile_model
from autochip.builder.core import core_params
from autochip.builder.explore_build import integer_workload
from autochip.builder.tiling import PREFETCHED_PASS, prefetch_passes, prefetch_passes_batch
from autochip.hw import load_hardware_spec
from autochip.predictor.core_batch import core_configs, core_plan, evaluate_core
from autochip.predictor.core_model import (
    READ_ISSUE,
    core_cycles,
    dma_cycles,
    flush_compute_cycles,
    prefetch_waits,
)

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "rtl_tests" / "core"
sys.path.insert(0, str(CORE))
from core_models import prefetch_model  # noqa: E402

SPEC = CORE / "core_prefetch4x4.yaml"


def _resnet_tile(w_depth: int, tpp: int, ntiles: int = 4) -> int:
    """ResNet-20's 64-channel 3x3 layer on the 16x16 core: 576-row tiles (9,216 + 256 bytes
    of weights and parameters: 592 bus words of 16 bytes), 4 pixel tiles of 576 beats."""
    return prefetch_passes(tpp, ntiles, 576, w_depth, load_tile=592, wb_tile=64, rows=16,
                           cols=16, npt=4, tile_cycles=576)  # fmt: skip


def test_prefetch_passes_needs_two_slots_and_several_passes() -> None:
    assert _resnet_tile(1024, 1) == 0  # 16 KB: two 576-row slots do not fit
    assert _resnet_tile(1536, 2) == 1  # 24 KB: two slots of one tile, four passes
    assert _resnet_tile(1536, 2, ntiles=1) == 0  # one tile: nothing to prefetch
    # one pass without prefetch, but a smaller first pass hides the rest of the loads
    assert _resnet_tile(4096, 7) == 1
    # ResNet-20's 32-channel 16x16 layer: one pass of two 288-row tiles; two passes would
    # hide the second load (304 bus words) but wait for the first pass's 4 KB write-back
    assert prefetch_passes(2, 2, 288, 1536, load_tile=304, wb_tile=256, rows=16, cols=16,
                           npt=16, tile_cycles=288) == 0  # fmt: skip
    # the same on arrays (the batch model's), element by element
    got = prefetch_passes(np.array([1, 2, 2]), np.array([4, 4, 1]), 576,
                          np.array([1024, 1536, 1536]), load_tile=592, wb_tile=64, rows=16,
                          cols=16, npt=4, tile_cycles=576)  # fmt: skip
    assert got.tolist() == [0, 1, 0]


def test_prefetch_passes_batch_equals_prefetch_passes() -> None:
    """The batch model's choice (``prefetch_passes_batch``: running minimum, no masked
    selects) equals ``prefetch_passes`` element by element: random (configuration, layer)
    arrays broadcast as the batch model passes them ((H, L) and (H, 1)), wide and narrow
    value ranges (the narrow ones make ties between pass sizes and with no prefetch), and
    scalars."""
    rng = np.random.default_rng(7)
    for trial in range(300):
        h, n_l = int(rng.integers(1, 200)), int(rng.integers(1, 24))
        top = 3000 if trial % 2 else 6  # narrow ranges: many equal estimates
        args = (rng.integers(-1, 18, (h, n_l)), rng.integers(0, 40, (h, n_l)),
                rng.integers(0, 600, (h, n_l)), rng.integers(0, 20000, (h, 1)))  # fmt: skip
        kw = dict(load_tile=rng.integers(0, top, (h, n_l)), wb_tile=rng.integers(0, top, (h, n_l)),
                  rows=rng.integers(1, 65, (h, 1)), cols=rng.integers(1, 65, (h, 1)),
                  npt=rng.integers(1, 2 + top // 10, (h, n_l)),
                  tile_cycles=rng.integers(1, top, (h, n_l)))  # fmt: skip
        want = prefetch_passes(*args, **kw)
        got = prefetch_passes_batch(*args, **kw)
        assert got.shape == want.shape and (got == want).all(), trial
        i, j = int(rng.integers(h)), int(rng.integers(n_l))
        one = [int(np.broadcast_to(a, (h, n_l))[i, j]) for a in args]
        one_kw = {k: int(np.broadcast_to(v, (h, n_l))[i, j]) for k, v in kw.items()}
        assert prefetch_passes_batch(*one, **one_kw) == prefetch_passes(*one, **one_kw)
    assert _resnet_tile(1536, 2) == 1
    assert prefetch_passes_batch(2, 4, 576, 1536, load_tile=592, wb_tile=64, rows=16, cols=16,
                                 npt=4, tile_cycles=576) == 1  # fmt: skip


def test_compiled_prefetch_fields_and_model_equations() -> None:
    core = core_params(load_hardware_spec(SPEC))
    prog = compile_model(prefetch_model(), core)
    lays = {lay.name: lay for lay in prog.layers}
    assert {n for n, lay in lays.items() if lay.get("op") >> 12 & 1} == {"c1", "c2", "fc"}
    for n in ("c1", "c2", "fc"):
        lay = lays[n]
        rows_tile = lay.get("tile_w") // core.w_row
        up = lay.get("op") >> 15 & 1  # cross-layer prefetch into slot 1: at least as high
        assert (
            (lay.get("w_slot") >= lay.get("tpp") * rows_tile)
            if up
            else (lay.get("w_slot") == lay.get("tpp") * rows_tile)
        )
        assert (lay.get("p_slot") >= lay.get("tpp")) if up else lay.get("p_slot") == lay.get("tpp")
        assert lay.get("w_slot") + lay.get("tpp") * rows_tile <= core.w_depth
        assert 2 * lay.get("tpp") <= 16
    assert lays["c3"].get("w_slot") == lays["c3"].get("p_slot") == 0
    cyc = dict(zip([lay.name for lay in prog.layers], core_cycles(core, prog.layers),
                   strict=False))  # fmt: skip
    # fc: passes of 8 four-row tiles; each pass's write-back waits for the next pass's loads
    fc = lays["fc"]
    tpp, bus, r, c = fc.get("tpp"), core.bus_bytes, core.rows, core.cols
    assert (fc.get("ntiles"), tpp) == (24, 8)
    run = r + 1 + tpp * max(fc.get("t"), r, c) + flush_compute_cycles(r, c)
    waits = []
    for t_nx in (8, 16):
        # two commands of the prefetch engine, each issued a cycle before the DMA starts
        loads = (
            2 * READ_ISSUE
            + dma_cycles(
                fc.get("w_addr") + t_nx * fc.get("tile_w"), tpp * fc.get("tile_w"), False, bus
            )
            + dma_cycles(fc.get("p_addr") + t_nx * core.p_tile, tpp * core.p_tile, False, bus)
        )
        waits.append(max(0, 1 + loads - run))
    assert prefetch_waits(core, fc) == [*waits, 0] and waits[0] > 0
    first = (
        2 * READ_ISSUE
        + dma_cycles(fc.get("w_addr"), tpp * fc.get("tile_w"), False, bus)
        + dma_cycles(fc.get("p_addr"), tpp * core.p_tile, False, bus)
    )
    if fc.get("op") >> 14 & 1:  # its first pass loaded during c3's (cross-layer prefetch)
        first = PREFETCHED_PASS
    in_load = cyc["fc"].load - first - 2 * PREFETCHED_PASS - sum(waits)
    assert in_load in (1, READ_ISSUE + dma_cycles(fc.get("in_addr"), fc.get("in_len"), False, bus))


def test_prefetch_saves_cycles_and_the_batch_model_agrees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = prefetch_model()
    core = core_params(load_hardware_spec(SPEC))
    cfg = core_configs([load_hardware_spec(SPEC)])
    wl = integer_workload(model, "prefetch")
    prog = compile_model(model, core)
    ref = core_cycles(core, prog.layers)
    res = evaluate_core(wl, cfg)
    assert [[int(getattr(res, p)[0, j]) for p in ("fetch", "load", "compute", "writeback",
                                                   "control")] for j in range(len(wl))] == [
        [c.fetch, c.load, c.compute, c.writeback, c.control] for c in ref[:-1]
    ]  # fmt: skip
    plan = core_plan(wl, cfg)
    assert [int(o) >> 12 & 1 for o in plan["op"][0]] == [
        lay.get("op") >> 12 & 1 for lay in prog.layers
    ]
    # the same network compiled without prefetch takes longer
    monkeypatch.setattr(compiler_mod, "prefetch_passes", lambda *a, **k: 0)
    plain = compile_model(model, core)
    assert not any(lay.get("op") >> 12 & 1 for lay in plain.layers)
    assert sum(c.total for c in ref) < sum(c.total for c in core_cycles(core, plain.layers))


def test_cross_prefetch_choice() -> None:
    """``tiling.cross_prefetch`` on hand-made pairs: the next layer's first pass goes below the
    previous layer's last pass when that lies in slot 1 high enough, else into slot 1 from its
    end on, else (no room, or a load the last pass does not hide) not at all."""
    from autochip.builder.tiling import cross_prefetch

    def one(pf0: bool, nt0: int, tpp1: int, w_depth: int, run: int = 1000) -> tuple[int, ...]:
        # P: 4 tiles of 100 rows (passes of 1 with prefetch: last on slot 1 at row 100; or
        # one pass of 4 tiles on slot 0), L: nt0 tiles of 50 rows, tpp1 per pass
        xin, s0, ws, ps = cross_prefetch(
            [[4, nt0]], [[1 if pf0 else 4, tpp1]], [[pf0, False]], [[100, 50]], w_depth,
            [[0, 60]], [[run, run]],
        )  # fmt: skip
        return int(xin[0, 1]), int(s0[0, 1]), int(ws[0, 1]), int(ps[0, 1])

    assert one(True, 1, 1, 300) == (1, 0, 0, 0)  # 50 rows below P's slot 1 at row 100
    # 100 rows would fit below it, but 2 parameter words do not (P's slot 1 is at word 1)
    assert one(True, 2, 2, 300) == (1, 1, 200, 2)
    assert one(True, 3, 3, 400) == (1, 1, 200, 2)  # 150 rows: above P's last pass
    assert one(True, 3, 3, 300) == (0, 0, 0, 0)  # no room above it
    assert one(False, 2, 2, 600) == (1, 1, 400, 4)  # P's one pass in slot 0: L above it
    assert one(False, 2, 2, 600, run=60) == (0, 0, 0, 0)  # the load outlasts P's last pass


def test_cross_prefetch_per_column() -> None:
    """``tiling.cross_prefetch`` with ``col`` (arguments per distinct layer column) gives what it
    gives on the columns gathered, on random programs whose layers share columns."""
    from autochip.builder.tiling import cross_prefetch

    rng = np.random.default_rng(5)
    H, D, L = 300, 4, 9
    col = rng.integers(0, D, L)
    nt, tpp = rng.integers(0, 12, (H, D)), rng.integers(0, 6, (H, D))
    pf, rt = rng.random((H, D)) < 0.5, rng.integers(1, 40, (H, D))
    w_depth = rng.integers(50, 600, (H, 1))
    first, last = rng.integers(0, 400, (H, L)), rng.integers(0, 400, (H, D))
    per = cross_prefetch(nt, tpp, pf, rt, w_depth, first, last, col)
    ref = cross_prefetch(nt[:, col], tpp[:, col], pf[:, col], rt[:, col], w_depth, first,
                         last[:, col])  # fmt: skip
    assert ref[0].any() and ref[1].any()  # both slots taken somewhere
    for a, b in zip(per, ref, strict=True):
        assert a.shape == b.shape == (H, L) and a.dtype == b.dtype and (a == b).all()


def test_cross_prefetch_slots_never_overlap_and_never_slower() -> None:
    """On the prefetch network on random cores: every prefetched first pass (op bit 14) lies
    beside the last pass of the compute layer before (weight rows and parameter words
    disjoint, both within the buffers), that layer's descriptor loads exactly it (the
    ``x_*`` fields), its write-back never waits for it, and the same program without the
    cross-layer loads (bits 13-15 cleared, slot bases as without them) is never faster."""
    from autochip.builder.compiler import CompileError
    from autochip.hw import hardware_spec_from_dict

    rng = np.random.default_rng(3)
    model = prefetch_model()
    crossed = up = 0
    for _ in range(30):
        r, c = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        hw = hardware_spec_from_dict({
            "pe": {"kind": "mac", "a_bits": 8, "w_bits": 8},
            "array": {"rows": r, "cols": c},
            "buffers": {"ifmap": {"size_kb": 16}, "weight": {"size_kb": float(rng.choice(
                [0.5, 0.75, 1, 2, 4]))}, "ofmap": {"size_kb": float(rng.choice([1, 2, 4]))}},
            "dram": {"bandwidth": int(rng.choice([4, 8, 16]))},
        })  # fmt: skip
        core = core_params(hw)
        try:
            prog = compile_model(model, core)
        except CompileError:  # buffers too small for this core: not the point
            continue
        comp = [lay for lay in prog.layers if lay.mode != "vector"]
        for p, lay in itertools.pairwise(comp):
            if not lay.get("op") >> 14 & 1:
                assert not p.get("op") >> 13 & 1
                continue
            crossed += 1
            up += lay.get("op") >> 15 & 1
            rt_p, rt_l = p.get("tile_w") // core.w_row, lay.get("tile_w") // core.w_row
            nt_p, tp_p = p.get("ntiles"), p.get("tpp")
            npass = -(-nt_p // tp_p)
            last = (p.get("op") >> 15 & 1) ^ ((p.get("op") >> 12 & 1) & (npass - 1) % 2)
            n_last = nt_p - (npass - 1) * tp_p
            pw0 = p.get("w_slot") if last else 0
            pp0 = p.get("p_slot") if last else 0
            n0 = min(lay.get("tpp"), lay.get("ntiles"))
            s0 = lay.get("op") >> 15 & 1
            lw0 = lay.get("w_slot") if s0 else 0
            lp0 = lay.get("p_slot") if s0 else 0
            assert (p.get("x_w_row"), p.get("x_p_word")) == (lw0, lp0)
            assert lw0 + n0 * rt_l <= pw0 or pw0 + n_last * rt_p <= lw0
            assert lp0 + n0 <= pp0 or pp0 + n_last <= lp0
            assert lw0 + n0 * rt_l <= core.w_depth and lp0 + n0 <= 16
            assert (p.get("x_w_addr"), p.get("x_w_len")) == (
                lay.get("w_addr"),
                n0 * lay.get("tile_w"),
            )
            assert (p.get("x_p_addr"), p.get("x_p_len")) == (lay.get("p_addr"), n0 * core.p_tile)
            assert prefetch_waits(core, p)[-1] == 0
        plain = []
        for lay in prog.layers:
            f = {**lay.fields, "op": lay.get("op") & ~(7 << 13)}
            if lay.get("op") >> 15 & 1:  # the slot bases without the cross-layer load
                n = lay.get("tpp") if lay.get("op") >> 12 & 1 else 0
                f.update(w_slot=n * lay.get("tile_w") // core.w_row, p_slot=n)
            plain.append(type(lay)(lay.name, lay.kind, lay.mode, lay.output, f))
        assert sum(x.total for x in core_cycles(core, prog.layers)) <= sum(
            x.total for x in core_cycles(core, plain)
        )
    assert crossed >= 10 and up >= 3

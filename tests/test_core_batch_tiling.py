"""Feature-map tiling in the batch core model against the compiler and the scalar core model.

``core_batch.tiled_layers`` plans the bands of every layer with ``autochip.builder.tiling`` and
lays them out as ``compile_model`` does: on random cores whose buffers force row bands, group
bands and vector channel bands, every descriptor field the cycle model reads and every DRAM
address equals the compiled program's, and ``evaluate_core(..., tiled=True)`` gives
``core_model.core_cycles`` of the compiled program (every band, summed per layer) and refuses
exactly the cores the compiler refuses; weights-outer bands (a pass's weights kept over its row
bands) included.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autochip.builder.compiler import CompileError, compile_model
from autochip.builder.core import core_params
from autochip.builder.explore_build import integer_workload
from autochip.hw import hardware_spec_from_dict
from autochip.predictor.core_batch import (
    _band_cycles,
    core_configs,
    core_workload,
    evaluate_core,
    tiled_layers,
)
from autochip.predictor.core_model import core_cycles

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "rtl_tests" / "core"))
from core_models import random_model, tiled_model  # noqa: E402

KEYS = ("in_addr", "in2_addr", "out_addr", "p_addr", "w_addr", "in_len", "in_runs", "in_stride",
        "out_run", "out_stride", "ntiles", "kt", "kg", "t", "tpp", "tile_w", "npt", "c_pq",
        "pq")  # fmt: skip


def _spec(rng: np.random.Generator, top: int, kb: tuple[list[float], ...]) -> object:
    return hardware_spec_from_dict({
        "pe": {"kind": "mac", "a_bits": 8, "w_bits": 8},
        "array": {"rows": int(rng.integers(1, top + 1)), "cols": int(rng.integers(1, top + 1))},
        "buffers": {b: {"size_kb": float(rng.choice(v))}
                    for b, v in zip(("ifmap", "weight", "ofmap"), kb, strict=True)},
        "dram": {"bandwidth": float(2 ** rng.integers(2, 6))},
    })  # fmt: skip


@pytest.mark.parametrize("name", ["tiled", "random", "resnet20"])
def test_tiled_layers_equal_the_compiled_program(name: str) -> None:
    if name == "resnet20":
        from autochip.compress.ptq import calibration_inputs, ptq
        from autochip.ir import graph_for, load_model

        lm = load_model("resnet20")
        cal = calibration_inputs(None, tuple(lm.example_input.shape[1:]), 8)
        model = ptq(lm.model, lm.example_input, cal.x)
        wl = core_workload(graph_for("resnet20"))
        kb = ([8, 16, 32, 64], [1, 2, 8], [1, 2, 4, 8])
        top = 8
    else:
        model = tiled_model() if name == "tiled" else random_model()
        wl = integer_workload(model, name)  # type: ignore[arg-type]
        kb = ([0.25, 0.5, 1, 2], [0.25, 1, 4], [0.125, 0.25, 0.5, 1])
        top = 8
    rng = np.random.default_rng(41)
    tiled = compiled = refused = kept = 0
    for _ in range(30 if name != "resnet20" else 16):
        hw = _spec(rng, top, kb)
        core = core_params(hw)  # type: ignore[arg-type]
        cfg = core_configs([hw])  # type: ignore[list-item]
        bands = tiled_layers(wl, cfg, 0)
        res = evaluate_core(wl, cfg, tiled=True)
        try:
            prog = compile_model(model, core)  # type: ignore[arg-type]
        except CompileError:
            assert bands is None and not res.feasible[0]
            refused += 1
            continue
        assert bands is not None and res.feasible[0]
        compiled += 1
        tiled += any("@" in lay.name for lay in prog.layers)
        kept += any(lay.get("op") >> 7 & 1 for lay in prog.layers)  # weights-outer bands
        assert [b.name.partition("@")[2] for b in bands] == [
            lay.name.partition("@")[2] for lay in prog.layers
        ]  # the same bands (the names of untiled layers are the graph's or the model's)
        for b, lay in zip(bands, prog.layers, strict=True):
            keys = KEYS if lay.mode != "vector" else ("in_addr", "in2_addr", "out_addr",
                                                      "in_len", "c_pq")  # fmt: skip
            assert {k: b.get(k) for k in keys} == {k: lay.get(k) for k in keys}, lay.name
        ref = core_cycles(core, prog.layers)
        if not any("@" in lay.name for lay in prog.layers):
            # an untiled program keeps feature maps resident (residency.py), which the band
            # path (programs with bands) does not model: the batch model's untiled path costs it
            assert int(res.total_cycles[0]) == sum(c.total for c in ref)
            continue
        mine = core_cycles(core, bands)
        assert [c.as_dict() for c in mine] == [c.as_dict() for c in ref]
        # the bands' cycles with numpy (strided runs in closed form), band by band
        phases, end = _band_cycles(core.rows, core.cols, core.bus_bytes, core.p_tile, bands)
        assert phases.T.tolist() == [
            [c.fetch, c.load, c.compute, c.writeback, c.control] for c in ref[:-1]
        ]
        assert end == ref[-1].layer
        assert int(res.total_cycles[0]) == sum(c.total for c in ref)
        # per layer: the sums over its bands, in the layer's row of the result
        per = np.zeros(len(wl), dtype=np.int64)
        for b, c in zip(bands, ref[:-1], strict=True):
            per[b.get("layer")] += c.layer
        assert res.cycles[0].tolist() == per.tolist()
    assert tiled >= 3 and compiled >= 5 and refused >= 1 and kept >= 2


def test_band_costs_of_an_untiled_core_equal_the_batch_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The band-by-band path (``_cost_tiled``) on cores that need no tiling (one band per
    layer) gives the batch model's cycles and energy: the same counts, the same formulas. (Odd
    row counts: R does not divide the bus, so no feature map is resident, which only the
    untiled path models: a program with bands keeps every load; nor does a program with bands
    watermark its first load, so the untiled path here has its watermark taken out.)"""
    from autochip.hw.platform import load_platform
    from autochip.ir import graph_for
    from autochip.predictor import core_batch
    from autochip.predictor.core_batch import CoreConfigs, _cost_tiled

    def no_watermark(wl: Any, cfg: Any, *args: Any) -> tuple[Any, Any]:
        zero = np.zeros(len(cfg), dtype=np.int64)
        return zero, zero

    monkeypatch.setattr(core_batch, "_watermark0", no_watermark)

    wl = core_workload(graph_for("resnet20"))
    rng = np.random.default_rng(43)
    n = 40
    cfg = CoreConfigs(rows=2 * rng.integers(1, 8, n) + 1, cols=rng.integers(1, 17, n),
                      a_bits=np.full(n, 8), w_bits=np.full(n, 8), adder=np.zeros(n, dtype=np.int64),
                      if_bytes=rng.integers(40, 60, n) * 1024 * 16, w_bytes=np.full(n, 64 * 1024),
                      o_bytes=np.full(n, 256 * 1024), clock_mhz=np.full(n, 150.0),
                      bus_bytes=1 << rng.integers(2, 6, n))  # fmt: skip
    plat = load_platform("xc7z045")
    for per_layer in (True, False):
        ref = evaluate_core(wl, cfg, plat, per_layer=per_layer)
        assert ref.feasible.all()
        got = evaluate_core(wl, cfg, plat, per_layer=per_layer)
        got.feasible[:] = False
        for arr in (got.fetch, got.load, got.compute, got.writeback, got.control, got.energy_pj):
            arr[:] = 0
        _cost_tiled(wl, cfg, got, plat, per_layer)
        assert got.feasible.all()
        assert (got.cycles == ref.cycles).all() and (got.end_cycles == ref.end_cycles).all()
        np.testing.assert_allclose(got.energy_pj, ref.energy_pj, rtol=1e-12)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "resnet20"])
def test_tiled_batch_equals_the_bands_one_by_one(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vectorised planner and band table (``_cost_tiled``: every design at once) equal
    the band lists of ``tiled_layers`` costed one design at a time (``_cost_tiled_each``):
    refusals, every layer's phases, the end descriptor and the energy, on random cores whose
    buffers hold only bands of the feature maps (row, group and channel bands)."""
    from autochip.hw.platform import load_platform
    from autochip.ir import graph_for
    from autochip.predictor import core_batch
    from autochip.predictor.core_batch import CoreConfigs, _cost_tiled, _cost_tiled_each

    monkeypatch.setattr(core_batch, "TILED_BLOCK", 7)  # band tables of 7 designs at a time
    wl = core_workload(graph_for(name))
    rng = np.random.default_rng(44)
    n = 60
    cfg = CoreConfigs(rows=rng.integers(1, 33, n), cols=rng.integers(1, 65, n),
                      a_bits=np.full(n, 8), w_bits=np.full(n, 8), adder=np.zeros(n, dtype=np.int64),
                      if_bytes=rng.integers(8, 512, n) * 1024,
                      w_bytes=rng.integers(64, 2048, n) * 1024,
                      o_bytes=rng.integers(4, 512, n) * 1024, clock_mhz=np.full(n, 150.0),
                      bus_bytes=1 << rng.integers(2, 7, n))  # fmt: skip
    plat = load_platform("xcvu9p")
    for per_layer in (True, False):
        a = evaluate_core(wl, cfg, plat, per_layer=per_layer)
        b = evaluate_core(wl, cfg, plat, per_layer=per_layer)
        tiled = ~a.feasible
        _cost_tiled(wl, cfg, a, plat, per_layer)
        _cost_tiled_each(wl, cfg, b, plat, per_layer)
        assert (a.feasible == b.feasible).all()
        ran = tiled & a.feasible
        assert ran.sum() >= 10 and (tiled & ~a.feasible).sum() >= 3  # tiled and refused
        for p in ("fetch", "load", "compute", "writeback", "control"):
            assert (getattr(a, p)[ran] == getattr(b, p)[ran]).all(), p
        assert (a.end_cycles[ran] == b.end_cycles[ran]).all()
        np.testing.assert_allclose(a.energy_pj[ran], b.energy_pj[ran], rtol=1e-12)

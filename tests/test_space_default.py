"""The default design space is the core's: every array dimension 1..64, buffer sizes between the
powers of two; every design of it that the search may choose builds.

Authorities: ``core.core_params`` and ``compile_model`` (a design the batch model runs must
compile, with the cycles ``core_model.core_cycles`` gives the compiled program); the exhaustive
sweep (the evolutionary search must find its optimum on a space with every dimension).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from autochip.builder.compiler import CompileError, compile_model
from autochip.builder.core import core_params
from autochip.builder.explore import explore, mutation_steps
from autochip.builder.space import (
    PARAMETERS,
    default_space,
    expert_designs,
    parse_budget,
    space_from_dict,
)
from autochip.hw import hardware_spec_from_dict
from autochip.hw.platform import load_platform
from autochip.ir import graph_for
from autochip.predictor.core_batch import core_feasible, core_workload, evaluate_core
from autochip.predictor.core_model import core_cycles

CORE = Path(__file__).resolve().parents[1] / "rtl_tests" / "core"
sys.path.insert(0, str(CORE))
from core_models import integer_model  # noqa: E402


@pytest.fixture(scope="module")
def lenet_wl() -> object:
    return core_workload(graph_for("lenet_digits"))


def test_default_space_holds_every_dimension_and_fine_buffers(lenet_wl: object) -> None:
    space = default_space(lenet_wl, load_platform("ultra96"))  # type: ignore[arg-type]
    assert space.of("rows") == space.of("cols") == tuple(float(x) for x in range(1, 65))
    for k in ("ifmap_kb", "weight_kb", "ofmap_kb"):
        kb = set(space.of(k))
        # four steps per octave, 1 KB .. 4 MB, not only powers of two
        assert {1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 96.0, 112.0, 4096.0} <= kb
        assert min(kb) >= 1.0 and max(kb) <= 4096.0


def test_default_space_designs_build_with_the_modelled_cycles(lenet_wl: object) -> None:
    """Random designs of the default space (odd dimensions, buffers between powers of two)
    that the batch model runs whole compile, with the batch model's cycles; those it refuses
    the compiler refuses or tiles."""
    plat = load_platform("pynq-z2")
    space = default_space(lenet_wl, plat)  # type: ignore[arg-type]
    model = integer_model("lenet_digits", "quant")
    rng = np.random.default_rng(11)
    # small buffers, so that some designs are refused: the first 24 sizes (1 .. 48 KB)
    shape = list(space.shape)
    kb_i = [PARAMETERS.index(k) for k in ("ifmap_kb", "weight_kb", "ofmap_kb")]
    idx = [rng.integers(0, min(n, 24) if i in kb_i else n, 60) for i, n in enumerate(shape)]
    flat = np.ravel_multi_index(tuple(idx), tuple(shape)).astype(np.int64)
    cfg = space.configs(flat)
    whole = core_feasible(lenet_wl, cfg)  # type: ignore[arg-type]
    res = evaluate_core(lenet_wl, cfg, plat)  # type: ignore[arg-type]
    built = odd = 0
    for i in range(len(flat)):
        hw = hardware_spec_from_dict(cfg.spec(i))
        core = core_params(hw)  # every value of the space is one the core takes
        try:
            prog = compile_model(model, core)
        except CompileError:
            assert not whole[i]
            continue
        if any("@" in lay.name for lay in prog.layers):
            assert not whole[i]  # tiled: tests/test_core_batch_tiling.py
            continue
        assert whole[i]
        ref = core_cycles(core, prog.layers)
        assert int(res.total_cycles[i]) == sum(c.total for c in ref)
        built += 1
        r, c = int(cfg.rows[i]), int(cfg.cols[i])
        odd += bool(r & (r - 1) or c & (c - 1))
    assert built >= 10 and odd >= 5
    assert (~whole).sum() >= 1


def test_mutation_steps_scale_with_the_value_list() -> None:
    rng = np.random.default_rng(0)
    for n, top in ((1, 2), (11, 2), (64, 8), (113, 14)):
        s = mutation_steps(rng, np.full(20000, n, dtype=np.int64))
        assert set(np.abs(s).tolist()) == set(range(1, top + 1))
        assert (s > 0).mean() == pytest.approx(0.5, abs=0.02)
        assert (np.abs(s) == 1).mean() > (np.abs(s) == top).mean()  # mostly local
    a = mutation_steps(np.random.default_rng(5), np.arange(1, 200))
    b = mutation_steps(np.random.default_rng(5), np.arange(1, 200))
    assert np.array_equal(a, b)


def test_evolve_finds_the_optimum_with_every_dimension(lenet_wl: object) -> None:
    """Every dimension 1..64 (64 x 64 shapes) and a few buffer sizes: the evolutionary search
    on a twentieth of the space finds the exhaustive optimum's latency within 1 %."""
    plat = load_platform("xc7z045")
    kb = [1.5, 3, 6, 12, 48]
    space = space_from_dict(
        {"ifmap_kb": kb, "weight_kb": kb, "ofmap_kb": [1, 2.5, 6, 24], "bus_bytes": [16]},
        default_space(lenet_wl, plat),  # type: ignore[arg-type]
    )
    budget = parse_budget("dsp=300", plat)
    warm = expert_designs(lenet_wl, space)  # type: ignore[arg-type]
    assert len(warm) <= 64 * 64
    full = explore(lenet_wl, plat, space, budget, "latency", strategy="exhaustive",  # type: ignore[arg-type]
                   progress=False, tiled_samples=0)  # fmt: skip
    assert full.evaluated == space.size == 64 * 64 * 100
    best = full.metrics["latency_s"][full.chosen]
    for seed in (0, 1):
        got = explore(lenet_wl, plat, space, budget, "latency", samples=space.size // 20,  # type: ignore[arg-type]
                      seed=seed, strategy="evolve", progress=False, tiled_samples=0)  # fmt: skip
        assert got.metrics["latency_s"][got.chosen] <= best * 1.01

"""The load watermark (op bit 16) where later pixel tiles do wait: bit-exact whatever the timing.

The compiler sets the bit only where ``watermark.plan`` proves that no pixel tile after the
first waits (so the cycle model stays exact), which leaves the RTL's check for later tiles
and the DMA's yielding to forwarded writes under heavy load untested by the compiled
programs. Here the planner is replaced by one that always watermarks, with one-row groups,
on cores and networks where it would refuse (short tiles whose column walk forwards a write
every cycle of the period, a 32-bit bus), and the outputs must still be bit-exact. The
cycle model is not checked here (it does not model these waits); the first layer takes at
least the cycles of its compute.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autochip.builder import watermark
from autochip.builder.core_build import build_core
from autochip.builder.core_sim import simulate_core
from autochip.hw import load_hardware_spec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from core_models import random_inputs, resident_model, short_tile_model  # noqa: E402

RES = HERE / "core_resident4x4.yaml"  # R divides the bus: outputs forwarded into the ifmap
WIDE = HERE / "core_small4x8.yaml"  # T < R < C: the walk is as long as the tile period


def _always(**kw: Any) -> tuple[Any, Any, Any]:
    """Watermark every design, groups of one input row, whatever the proof says."""
    shape = np.broadcast(*(np.asarray(v) for v in kw.values() if not isinstance(v, int))).shape
    grp = np.full(shape, kw["wd"], dtype=np.int64)
    return np.ones(shape, dtype=bool), grp, np.ones(shape, dtype=np.int64)


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "make", "hw"),
    [("resident", resident_model, RES), ("short-tiles-4x8", short_tile_model, WIDE)],
)
def test_forced_watermark_is_bit_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, make: Any, hw: Path
) -> None:
    monkeypatch.setattr(watermark, "plan", _always)
    model = make()
    x = random_inputs(model, 2)
    res = build_core(model, load_hardware_spec(hw), tmp_path / name, x)
    first = res.program.layers[0]
    assert first.get("op") >> 16 & 1 and first.get("in_grp") == first.get("w")
    assert first.get("hw") > first.get("in_grp")  # several groups
    rep = simulate_core(res.out_dir, model, x)
    bad = [(lay.name, lay.mismatches) for lay in rep.layers if not lay.bit_exact]
    assert not bad and rep.bit_exact, bad
    # the first layer still computes all its tiles (and may wait for its rows)
    lay0 = rep.layers[0]
    beats = first.get("npt") * first.get("ntiles") * first.get("t")
    assert lay0.cycles_measured >= beats
    if name == "short-tiles-4x8":  # 3-beat tiles outrun the 1-row groups: later tiles wait
        assert lay0.cycles_measured > 1.1 * lay0.cycles_predicted  # (498 vs 415 when written)

"""Design-space search over the core ``autochip build`` emits (the Chip Builder).

``explore(wl, platform, space, budget, objective)`` evaluates designs of a
:class:`~autochip.builder.space.DesignSpace` with the vectorised core model
(:func:`autochip.predictor.core_batch.evaluate_core`, whole network per design), keeps the
designs that fit the budget, their Pareto front over (latency, energy, resources) and the best
design for the objective:

* ``exhaustive``: every design, in chunks (chosen when the space has at most ``samples``
  designs);
* ``evolve``: a seeded evolutionary search in index space (elites of the objective and of the
  Pareto front, mutated one or two parameters by one or two steps), ``samples`` designs in all;
* ``random``: ``samples`` designs drawn uniformly (the comparison baseline, docs/explore.md).

Resources in the Pareto front are one number: the largest fraction of the budget any of
LUT/FF/DSP/BRAM uses (FPGA), or the area in mm^2 (ASIC). Everything is deterministic for a seed
unless ``time_s`` ends the search first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from autochip._progress import Counter
from autochip.builder.space import Budget, DesignSpace, expert_designs
from autochip.errors import AutochipError
from autochip.hw.platform import Platform, load_platform
from autochip.predictor.core_batch import (
    CoreWorkload,
    core_area_um2,
    core_feasible,
    core_resources_batch,
    evaluate_core,
)

__all__ = [
    "OBJECTIVES",
    "TILED_SAMPLES",
    "ExploreError",
    "ExploreResult",
    "evaluate_designs",
    "explore",
    "pareto_mask",
]

OBJECTIVES = ("latency", "throughput", "energy", "edp", "resources")
STRATEGIES = ("auto", "exhaustive", "evolve", "random")
CHUNK = 8192
TILED_SAMPLES = 20_000  # a tiled search when nothing holds the feature maps whole (~20 s)
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class ExploreError(AutochipError):
    """The search cannot run or finds no design (the message says why)."""


def evaluate_designs(
    wl: CoreWorkload,
    platform: Platform | str,
    space: DesignSpace,
    budget: Budget,
    flat: I64,
    tiled: bool = False,
) -> dict[str, Any]:
    """Metrics of designs ``flat`` (flat indices of ``space``): arrays of one entry per design.

    ``ok`` marks designs the core can run that fit the budget and whose clock is within their
    predicted Fmax (where the core model has one for the platform's FPGA family,
    ``fmax_mhz``, NaN elsewhere: no bound); ``latency_s``, ``energy_j``, ``res`` (the Pareto
    resource measure), ``power_w``, ``cycles`` and the resources. With ``tiled`` the designs
    whose buffers need feature-map tiling are costed too, band by band
    (``evaluate_core(tiled=True)``: about 1,000 ResNet-18 designs per second)."""
    plat = load_platform(platform) if isinstance(platform, str) else platform
    cfg = space.configs(flat)
    n = len(flat)
    caps = budget.caps
    # cheap (per design) checks first: the compiler's limits and the resource budget
    ok = np.ones(n, dtype=bool) if tiled else core_feasible(wl, cfg)
    out: dict[str, Any] = {"flat": flat}
    if plat.is_fpga:
        assert plat.device is not None
        used = core_resources_batch(cfg, plat.device.synth_target)
        frac = np.zeros(n)
        for k in ("lut", "ff", "dsp", "bram"):
            out[k] = used[k]
            frac = np.maximum(frac, used[k] / caps[k])
            ok &= used[k] * (1.0 + budget.margin) <= caps[k]
        out["res"] = frac
        out["fmax_mhz"] = used["fmax_mhz"]
        ok &= ~(cfg.clock_mhz > used["fmax_mhz"])  # NaN (no Fmax model): no bound
    else:
        out["area_mm2"] = core_area_um2(cfg, plat) / 1e6
        out["res"] = out["area_mm2"]
        if "area_mm2" in caps:
            ok &= out["area_mm2"] <= caps["area_mm2"]
    sub = np.flatnonzero(ok)
    r = evaluate_core(wl, cfg.take(sub), plat, per_layer=False, tiled=tiled)
    if tiled:  # what runs neither untiled nor tiled
        ok[sub[~r.feasible]] = False
        sub, keep = sub[r.feasible], np.flatnonzero(r.feasible)
    else:
        keep = np.arange(len(sub))
    cycles = np.full(n, np.inf)
    energy = np.full(n, np.inf)
    cycles[sub] = r.total_cycles[keep]
    energy[sub] = r.energy_pj[keep, 0] * 1e-12
    lat = cycles / (cfg.clock_mhz * 1e6)
    with np.errstate(invalid="ignore"):
        power = energy / lat
    if "power_w" in caps:
        ok &= power <= caps["power_w"]
    out.update(cycles=cycles, latency_s=lat, energy_j=energy, power_w=power, ok=ok)
    return out


def objective_values(m: dict[str, Any], objective: str) -> F64:
    """Smaller is better for every objective (throughput at batch 1 is 1 / latency)."""
    lat, en = m["latency_s"], m["energy_j"]
    v = {
        "latency": lat,
        "throughput": lat,
        "energy": en,
        "edp": en * lat,
        "resources": m["res"],
    }[objective]
    out: F64 = np.where(m["ok"], v, np.inf)
    return out


def pareto_mask(points: F64) -> npt.NDArray[np.bool_]:
    """Non-dominated rows of ``points`` (n, d), minimising every column; equal points are all
    kept (neither dominates the other)."""
    n = len(points)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    order = np.lexsort(points.T[::-1])
    front = np.empty((0, points.shape[1]))
    for start in range(0, n, 2048):
        blk = order[start : start + 2048]
        pts = points[blk]
        if len(front):
            le = (front[None, :, :] <= pts[:, None, :]).all(axis=2)
            lt = (front[None, :, :] < pts[:, None, :]).any(axis=2)
            dominated = (le & lt).any(axis=1)
        else:
            dominated = np.zeros(len(blk), dtype=bool)
        for i in np.flatnonzero(~dominated):
            p = pts[i]
            if len(front):
                le1 = (front <= p).all(axis=1)
                lt1 = (front < p).any(axis=1)
                if (le1 & lt1).any():
                    continue
            # sorted order: nothing later dominates an earlier point, so just append
            front = np.vstack([front, p])
            keep[blk[i]] = True
    return keep


@dataclass
class ExploreResult:
    space: DesignSpace
    strategy: str
    objective: str
    evaluated: int
    seconds: float
    metrics: dict[str, Any]  # every design that fits the budget (arrays)
    pareto: I64  # positions in ``metrics`` on the front
    chosen: int  # position in ``metrics``
    notes: list[str] = field(default_factory=list)


def _merge(acc: dict[str, list[Any]], m: dict[str, Any]) -> None:
    ok = m["ok"]
    for k, v in m.items():
        acc.setdefault(k, []).append(np.asarray(v)[ok])


def explore(
    wl: CoreWorkload,
    platform: Platform,
    space: DesignSpace,
    budget: Budget,
    objective: str = "latency",
    *,
    samples: int = 200_000,
    seed: int = 0,
    strategy: str = "auto",
    time_s: float | None = None,
    progress: bool | None = None,
    scheduler: str | None = None,
    announce: Callable[[str], None] | None = None,
    tiled: bool = False,
) -> ExploreResult:
    """Search ``space`` for ``wl`` on ``platform`` within ``budget`` (see the module doc)."""
    if objective not in OBJECTIVES:
        raise ExploreError(f"--objective: expected one of {list(OBJECTIVES)}, found {objective!r}")
    if strategy not in STRATEGIES:
        raise ExploreError(f"strategy: expected one of {list(STRATEGIES)}, found {strategy!r}")
    if samples < 1:
        raise ExploreError(f"--samples: expected at least 1, found {samples}")
    if wl.problems:
        raise ExploreError(
            f"the core cannot run '{wl.name}': " + "; ".join(wl.problems[:3])
            + (f" (and {len(wl.problems) - 3} more)" if len(wl.problems) > 3 else "")
        )  # fmt: skip
    if strategy == "auto":
        strategy = "exhaustive" if space.size <= samples else "evolve"
    total = space.size if strategy == "exhaustive" else min(samples, space.size)
    with Counter("explore", "design", enabled=progress is not False) as show:  # terminal only
        runner = _Runner(wl, platform, space, budget, scheduler, tiled)
        t0 = time.perf_counter()
        # a short timing run sizes the expected time
        n_probe = 128 if tiled else 512
        probe = np.unique(np.random.default_rng(seed).integers(0, space.size, n_probe))
        tp = time.perf_counter()
        evaluate_designs(wl, platform, space, budget, probe, tiled)
        rate = len(probe) / max(time.perf_counter() - tp, 1e-9)
        if announce is not None:
            announce(
                f"design space: {space.size:,} designs ({' x '.join(map(str, space.shape))}); "
                f"{strategy} search of {total:,} designs, expected {total / rate:.1f} s"
            )
        acc: dict[str, list[Any]] = {}
        evaluated = 0
        deadline = None if time_s is None else t0 + time_s
        notes: list[str] = []
        if strategy == "exhaustive":
            chunks = [np.arange(s, min(s + CHUNK * 4, space.size), dtype=np.int64)
                      for s in range(0, space.size, CHUNK * 4)]  # fmt: skip
            for m in runner.map(chunks):
                _merge(acc, m)
                evaluated += len(m["flat"])
                show(evaluated, total)
                if deadline is not None and time.perf_counter() > deadline:
                    notes.append(f"time budget reached after {evaluated:,} designs")
                    break
        else:
            rng = np.random.default_rng(seed)
            seen: set[int] = set()
            first = min(total, max(256, total // 4)) if strategy == "evolve" else total
            warm = np.zeros(0, dtype=np.int64)
            if strategy == "evolve":  # expert-sized buffers for every array shape: the warm start
                warm = _fresh(expert_designs(wl, space), seen, first)
            rand = _fresh(rng.integers(0, space.size, size=first * 2), seen, first - len(warm))
            batch = np.union1d(warm, rand)
            best: dict[str, Any] = {}
            while len(batch) and evaluated < total:
                ms = runner.map([batch[s : s + CHUNK] for s in range(0, len(batch), CHUNK)])
                for m in ms:
                    _merge(acc, m)
                    evaluated += len(m["flat"])
                show(evaluated, total)
                if deadline is not None and time.perf_counter() > deadline:
                    notes.append(f"time budget reached after {evaluated:,} designs")
                    break
                left = total - evaluated
                if left <= 0:
                    break
                if strategy == "random":
                    batch = _fresh(rng.integers(0, space.size, size=left * 2), seen, left)
                    continue
                best = _concat(acc)
                batch = _children(
                    rng, space, best, objective, seen, min(left, max(256, total // 8))
                )
                if not len(batch):
                    batch = _fresh(rng.integers(0, space.size, size=left * 2), seen, left)
        show(max(evaluated, total), total)
        m = _concat(acc)
        if not len(m.get("flat", [])):
            raise ExploreError(
                f"no design of the space fits the budget ({_caps(budget)}) and runs '{wl.name}' "
                f"on '{platform.name}' ({evaluated:,} designs evaluated); widen --space or --budget"
            )
        pts = np.stack([m["latency_s"], m["energy_j"], m["res"]], axis=1)
        front = np.flatnonzero(pareto_mask(pts))
        obj = objective_values(m, objective)
        order = np.lexsort((m["flat"], m["res"], m["energy_j"], m["latency_s"], obj))
        return ExploreResult(
            space=space,
            strategy=strategy,
            objective=objective,
            evaluated=evaluated,
            seconds=time.perf_counter() - t0,
            metrics=m,
            pareto=front,
            chosen=int(order[0]),
            notes=notes,
        )


def _caps(budget: Budget) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in budget.caps.items()) or "device"


def _concat(acc: dict[str, list[Any]]) -> dict[str, Any]:
    return {k: np.concatenate(v) for k, v in acc.items()}


def _fresh(cand: I64, seen: set[int], n: int) -> I64:
    out: list[int] = []
    for x in cand.tolist():
        if x not in seen:
            seen.add(x)
            out.append(x)
            if len(out) >= n:
                break
    return np.array(sorted(out), dtype=np.int64)


def _children(
    rng: np.random.Generator,
    space: DesignSpace,
    m: dict[str, Any],
    objective: str,
    seen: set[int],
    n: int,
) -> I64:
    """Mutations of the best designs so far (objective elites and Pareto members)."""
    if not len(m.get("flat", [])):
        return np.zeros(0, dtype=np.int64)
    obj = objective_values(m, objective)
    elite = m["flat"][np.argsort(obj, kind="stable")[:32]]
    pts = np.stack([m["latency_s"], m["energy_j"], m["res"]], axis=1)
    front = m["flat"][pareto_mask(pts)]
    parents = np.concatenate([elite, front[rng.permutation(len(front))[:32]]])
    shape = np.array(space.shape)
    idx = np.stack(np.unravel_index(parents, space.shape), axis=1)
    reps = max(1, math.ceil(4 * n / len(parents)))
    kids = np.repeat(idx, reps, axis=0)
    for _ in range(2):
        dim = rng.integers(0, len(shape), size=len(kids))
        step = rng.choice(np.array([-2, -1, 1, 2]), size=len(kids))
        kids[np.arange(len(kids)), dim] += step
    kids = np.clip(kids, 0, shape - 1)
    flat = np.ravel_multi_index(tuple(kids.T), space.shape).astype(np.int64)
    return _fresh(rng.permutation(flat), seen, n)


class _Runner:
    """Evaluates chunks of designs locally or on a Dask cluster (``--scheduler``)."""

    def __init__(
        self,
        wl: CoreWorkload,
        platform: Platform,
        space: DesignSpace,
        budget: Budget,
        scheduler: str | None,
        tiled: bool = False,
    ) -> None:
        self.args = (wl, platform.name, space, budget)
        self.tiled = tiled
        self.platform = platform
        self.client: Any = None
        if scheduler:
            from autochip.builder.cluster import connect

            self.client = connect(scheduler)

    def map(self, chunks: list[I64]) -> list[dict[str, Any]]:
        wl, name, space, budget = self.args
        if self.client is None:
            return [evaluate_designs(wl, self.platform, space, budget, c, self.tiled)
                    for c in chunks]  # fmt: skip
        futures = self.client.map(
            evaluate_designs, [wl] * len(chunks), [name] * len(chunks),
            [space] * len(chunks), [budget] * len(chunks), chunks,
            [self.tiled] * len(chunks), pure=False,
        )  # fmt: skip
        out: list[dict[str, Any]] = self.client.gather(futures)
        return out

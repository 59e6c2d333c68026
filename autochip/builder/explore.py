"""Design-space search over the core ``autochip build`` emits (the Chip Builder).

``explore(wl, platform, space, budget, objective)`` evaluates designs of a
:class:`~autochip.builder.space.DesignSpace` with the vectorised core model
(:func:`autochip.predictor.core_batch.evaluate_core`, whole network per design), keeps the
designs that fit the budget, their Pareto front over (latency, energy, resources) and the best
design for the objective:

* ``exhaustive``: every design, in chunks (chosen when the space has at most ``samples``
  designs);
* ``evolve``: a seeded evolutionary search in index space (elites of the objective and of the
  Pareto front, mutated in one or two parameters by a few steps of their value lists,
  :func:`mutation_steps`), ``samples`` designs in all;
* ``random``: ``samples`` designs drawn uniformly (the comparison baseline, docs/explore.md).

Designs whose buffers hold some layer's feature maps only in bands (feature-map tiling) cost
about 100x more to evaluate (band by band), so they are searched in a second phase of
``tiled_samples`` designs, with the same strategy, warm-started from the designs of the first
phase that fit the budget but need tiling, its mutations drawing on the best designs of both
phases; the front and the choice are over both.

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
    CoreConfigs,
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
    "budget_fit",
    "evaluate_designs",
    "explore",
    "pareto_mask",
]

OBJECTIVES = ("latency", "throughput", "energy", "edp", "resources")
STRATEGIES = ("auto", "exhaustive", "evolve", "random")
CHUNK = 8192
TILED_SAMPLES = 20_000  # the tiled phase's designs (ResNet-18: ~1,300 per second)
ELITES = 128  # evolve: parents per generation, of the objective and of the Pareto front each
GENERATIONS = 8  # evolve: each generation is 1 / GENERATIONS of the designs (at least 256)
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class ExploreError(AutochipError):
    """The search cannot run or finds no design (the message says why)."""


def budget_fit(
    cfg: CoreConfigs, plat: Platform, budget: Budget
) -> tuple[npt.NDArray[np.bool_], dict[str, Any]]:
    """Which configurations fit the budget's resources (FPGA LUT/FF/DSP/BRAM raised by the
    margin, and a clock within the predicted Fmax where there is a model; ASIC area), per
    design and without costing the network; the resource columns and ``res`` (the Pareto
    resource measure)."""
    n = len(cfg)
    caps = budget.caps
    ok = np.ones(n, dtype=bool)
    out: dict[str, Any] = {}
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
    return ok, out


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
    (``evaluate_core(tiled=True)``: about 1,000 ResNet-18 designs per second); ``tiled``
    marks them; without it, ``needs_tiling`` marks them (they fit the budget's resources but
    hold some layer's feature maps only in bands): the candidates of the search's tiled
    phase."""
    plat = load_platform(platform) if isinstance(platform, str) else platform
    cfg = space.configs(flat)
    n = len(flat)
    # cheap (per design) checks first: the resource budget and the compiler's limits
    fits, res = budget_fit(cfg, plat, budget)
    out: dict[str, Any] = {"flat": flat, **res}
    ok = fits.copy()
    whole = core_feasible(wl, cfg)
    out["tiled"] = ~whole  # runs in bands (where ``ok``)
    if not tiled:
        out["needs_tiling"] = fits & ~whole
        ok &= whole
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
    if "power_w" in budget.caps:
        ok &= power <= budget.caps["power_w"]
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
    evaluated: int  # designs evaluated, both phases
    seconds: float
    metrics: dict[str, Any]  # every design that fits the budget (arrays)
    pareto: I64  # positions in ``metrics`` on the front
    chosen: int  # position in ``metrics``
    notes: list[str] = field(default_factory=list)
    evaluated_tiled: int = 0  # of ``evaluated``: in the tiled phase


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
    tiled_samples: int = TILED_SAMPLES,
) -> ExploreResult:
    """Search ``space`` for ``wl`` on ``platform`` within ``budget`` (see the module doc).

    Two phases: ``samples`` designs costed as the core runs them with whole feature maps
    (designs whose buffers need feature-map tiling are set aside as candidates), then a
    search of up to ``tiled_samples`` designs that need tiling, costed band by band (about
    100x slower per design): every candidate when the first phase was exhaustive and they
    are at most ``tiled_samples``, else the same strategy warm-started from the candidates
    and mutating the best designs of both phases. ``tiled_samples=0`` skips the second phase;
    ``tiled`` makes the whole search one phase in which every design may tile."""
    if objective not in OBJECTIVES:
        raise ExploreError(f"--objective: expected one of {list(OBJECTIVES)}, found {objective!r}")
    if strategy not in STRATEGIES:
        raise ExploreError(f"strategy: expected one of {list(STRATEGIES)}, found {strategy!r}")
    if samples < 1:
        raise ExploreError(f"--samples: expected at least 1, found {samples}")
    if tiled_samples < 0:
        raise ExploreError(f"--tiled-samples: expected at least 0, found {tiled_samples}")
    if wl.problems:
        raise ExploreError(
            f"the core cannot run '{wl.name}': " + "; ".join(wl.problems[:3])
            + (f" (and {len(wl.problems) - 3} more)" if len(wl.problems) > 3 else "")
        )  # fmt: skip
    if strategy == "auto":
        strategy = "exhaustive" if space.size <= samples else "evolve"
    total = space.size if strategy == "exhaustive" else min(samples, space.size)
    n_tiled = 0 if tiled else min(tiled_samples, space.size)
    with Counter("explore", "design", enabled=progress is not False) as show:  # terminal only
        runner = _Runner(wl, platform, space, budget, scheduler)
        t0 = time.perf_counter()
        # short timing runs size the expected time: 512 designs (128 when they may tile)
        rng_probe = np.random.default_rng(seed)
        expected = total / _rate(runner, rng_probe, space.size, tiled)
        msg = f"{strategy} search of {total:,} designs"
        if n_tiled:
            expected += n_tiled / _rate(runner, rng_probe, space.size, True)
            msg += f", then of up to {n_tiled:,} that need feature-map tiling"
        if announce is not None:
            announce(
                f"design space: {space.size:,} designs ({' x '.join(map(str, space.shape))}); "
                f"{msg}, expected {expected:.1f} s"
            )
        deadline = None if time_s is None else t0 + time_s
        s = _Search(runner, space, objective, show, deadline, total + n_tiled)
        rng = np.random.default_rng(seed)
        seen: set[int] = set()
        if strategy == "exhaustive":
            chunks = [np.arange(a, min(a + CHUNK * 4, space.size), dtype=np.int64)
                      for a in range(0, space.size, CHUNK * 4)]  # fmt: skip
            s.run_chunks(chunks, tiled)
        else:
            warm = expert_designs(wl, space) if strategy == "evolve" else None
            s.evolve(rng, strategy, total, seen, warm, None, tiled)
        first = s.evaluated
        found_whole = sum(len(f) for f in s.acc.get("flat", [])) > 0
        if n_tiled and not s.stopped:
            cand = np.unique(np.concatenate(s.candidates)) if s.candidates else s.candidates_empty
            if strategy == "exhaustive" and len(cand) <= tiled_samples:
                s.run_chunks([cand[a : a + CHUNK] for a in range(0, len(cand), CHUNK)], True)
            elif len(cand) or strategy != "exhaustive":
                # exhaustive: the candidates are every design that may tile (a pool);
                # otherwise any design not costed yet, the candidates first
                pool = cand if strategy == "exhaustive" else None
                seen2 = set() if pool is not None else seen - set(cand.tolist())
                s.evolve(rng, strategy, tiled_samples, seen2, rng.permutation(cand), pool, True)
        show(max(s.evaluated, total), max(s.evaluated, total))
        m = _concat(s.acc)
        notes = s.notes
        if not len(m.get("flat", [])):
            least = ", ".join(f"{k} {v:,.6g}" for k, v in s.least.items())
            raise ExploreError(
                f"no design of the space fits the budget ({_caps(budget)}) and runs '{wl.name}' "
                f"on '{platform.name}' ({s.evaluated:,} designs evaluated; the least any of "
                f"them needs, each alone: {least}); widen --space or --budget"
            )
        if s.evaluated > first and not found_whole:
            notes.insert(0, f"no design of the space holds the feature maps whole: searched "
                            f"{s.evaluated - first:,} designs that tile them")  # fmt: skip
        pts = np.stack([m["latency_s"], m["energy_j"], m["res"]], axis=1)
        front = np.flatnonzero(pareto_mask(pts))
        obj = objective_values(m, objective)
        order = np.lexsort((m["flat"], m["res"], m["energy_j"], m["latency_s"], obj))
        return ExploreResult(
            space=space,
            strategy=strategy,
            objective=objective,
            evaluated=s.evaluated,
            seconds=time.perf_counter() - t0,
            metrics=m,
            pareto=front,
            chosen=int(order[0]),
            notes=notes,
            evaluated_tiled=s.evaluated - first if not tiled else s.evaluated,
        )


def _rate(runner: _Runner, rng: np.random.Generator, size: int, tiled: bool) -> float:
    """Designs per second of a short timing run on random designs of the space (512); for the
    tiled phase, on those of 2,048 random designs that fit the budget but need tiling (that
    phase's designs; its own first draws), else on 128 random designs."""
    probe = np.unique(rng.integers(0, size, 2048 if tiled else 512))
    if tiled:
        _, _, space, budget = runner.args
        cfg = space.configs(probe)
        fits, _ = budget_fit(cfg, runner.platform, budget)
        cand = probe[fits & ~core_feasible(runner.args[0], cfg)]
        probe = cand if len(cand) else probe[:128]
    t = time.perf_counter()
    runner.map([probe], tiled)
    return len(probe) / max(time.perf_counter() - t, 1e-9)


class _Search:
    """The designs evaluated so far (those that fit: ``acc``), the candidates for the tiled
    phase, the progress bar and the time budget, shared by both phases."""

    candidates_empty = np.zeros(0, dtype=np.int64)

    def __init__(self, runner: _Runner, space: DesignSpace, objective: str,
                 show: Callable[[int, int], None], deadline: float | None,
                 shown_total: int) -> None:  # fmt: skip
        self.runner, self.space, self.objective = runner, space, objective
        self.show, self.deadline, self.shown_total = show, deadline, shown_total
        self.acc: dict[str, list[Any]] = {}
        self.candidates: list[I64] = []
        self.least: dict[str, float] = {}  # the least of each resource any design needs
        self.evaluated = 0
        self.stopped = False
        self.notes: list[str] = []

    def _take(self, ms: list[dict[str, Any]]) -> bool:
        """Merge evaluated chunks; False when the time budget is spent."""
        for m in ms:
            tile = m.pop("needs_tiling", None)
            if tile is not None and tile.any():
                self.candidates.append(m["flat"][tile])
            for k in ("lut", "ff", "dsp", "bram", "area_mm2"):
                if k in m and len(m[k]):
                    self.least[k] = min(self.least.get(k, math.inf), float(np.min(m[k])))
            ok = m["ok"]
            for k, v in m.items():
                self.acc.setdefault(k, []).append(np.asarray(v)[ok])
            self.evaluated += len(m["flat"])
        self.show(self.evaluated, self.shown_total)
        if self.deadline is not None and time.perf_counter() > self.deadline:
            self.notes.append(f"time budget reached after {self.evaluated:,} designs")
            self.stopped = True
        return not self.stopped

    def run_chunks(self, chunks: list[I64], tiled: bool) -> None:
        for m in self.runner.map(chunks, tiled, lazy=True):
            if not self._take([m]):
                return

    def _draw(self, rng: np.random.Generator, pool: I64 | None, n: int) -> I64:
        if pool is None:
            return rng.integers(0, self.space.size, size=n)
        return pool[rng.integers(0, len(pool), size=n)] if len(pool) else pool

    def evolve(self, rng: np.random.Generator, strategy: str, total: int, seen: set[int],
               warm: I64 | None, pool: I64 | None, tiled: bool) -> None:  # fmt: skip
        """``total`` designs not in ``seen`` (from ``pool`` when given): ``warm`` and random
        ones first (a quarter of ``total`` for ``evolve``, all for ``random``), then
        generations of mutations of the best designs evaluated so far."""
        first = min(total, max(256, total // 4)) if strategy == "evolve" else total
        warm_ = _fresh(warm, seen, first) if warm is not None else np.zeros(0, dtype=np.int64)
        rand = _fresh(self._draw(rng, pool, first * 2), seen, first - len(warm_))
        batch = np.union1d(warm_, rand)
        done = 0
        while len(batch) and done < total:
            before = self.evaluated
            more = self._take(self.runner.map(
                [batch[a : a + CHUNK] for a in range(0, len(batch), CHUNK)], tiled))  # fmt: skip
            done += self.evaluated - before
            left = total - done
            if not more or left <= 0:
                break
            if strategy == "random":
                batch = _fresh(self._draw(rng, pool, left * 2), seen, left)
                continue
            batch = _children(rng, self.space, _concat(self.acc), self.objective, seen,
                              min(left, max(256, total // GENERATIONS)), pool)  # fmt: skip
            if not len(batch):
                batch = _fresh(self._draw(rng, pool, left * 2), seen, left)


def _caps(budget: Budget) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in budget.caps.items()) or "device"


def _concat(acc: dict[str, list[Any]]) -> dict[str, Any]:
    return {k: np.concatenate(v) for k, v in acc.items()}


def _fresh(cand: I64, seen: set[int], n: int) -> I64:
    """The first ``n`` designs of ``cand`` not in ``seen`` (added to it), sorted."""
    out: list[int] = []
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
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
    pool: I64 | None = None,
) -> I64:
    """Mutations of the best designs so far (objective elites and Pareto members); only
    those in ``pool`` (sorted) when given."""
    if not len(m.get("flat", [])):
        return np.zeros(0, dtype=np.int64)
    obj = objective_values(m, objective)
    elite = m["flat"][np.argsort(obj, kind="stable")[:ELITES]]
    pts = np.stack([m["latency_s"], m["energy_j"], m["res"]], axis=1)
    front = m["flat"][pareto_mask(pts)]
    parents = np.concatenate([elite, front[rng.permutation(len(front))[:ELITES]]])
    shape = np.array(space.shape)
    idx = np.stack(np.unravel_index(parents, space.shape), axis=1)
    reps = max(1, math.ceil(4 * n / len(parents)))
    kids = np.repeat(idx, reps, axis=0)
    free = np.flatnonzero(shape > 1)  # parameters with a choice
    if not len(free):
        return np.zeros(0, dtype=np.int64)
    for _ in range(2):
        dim = free[rng.integers(0, len(free), size=len(kids))]
        kids[np.arange(len(kids)), dim] += mutation_steps(rng, shape[dim])
    kids = np.clip(kids, 0, shape - 1)
    flat = np.ravel_multi_index(tuple(kids.T), space.shape).astype(np.int64)
    if pool is not None:
        flat = flat[np.isin(flat, pool)]
    return _fresh(rng.permutation(flat), seen, n)


def mutation_steps(rng: np.random.Generator, lengths: I64) -> I64:
    """One mutation's move in each of the value lists of ``lengths`` values: a sign and a
    size drawn log-uniformly from 1 .. max(2, length // 8) steps (1 or 2 on the short lists,
    up to 8 on the 64 array dimensions), so long lists are crossed in a few generations while
    most moves stay local."""
    top = np.maximum(2, lengths // 8).astype(np.float64)
    size = np.floor(np.exp(rng.random(len(lengths)) * np.log(top + 1))).astype(np.int64)
    size = np.clip(size, 1, top.astype(np.int64))
    sign = np.where(rng.random(len(lengths)) < 0.5, -1, 1)
    out: I64 = sign * size
    return out


class _Runner:
    """Evaluates chunks of designs locally or on a Dask cluster (``--scheduler``)."""

    def __init__(
        self,
        wl: CoreWorkload,
        platform: Platform,
        space: DesignSpace,
        budget: Budget,
        scheduler: str | None,
    ) -> None:
        self.args = (wl, platform.name, space, budget)
        self.platform = platform
        self.client: Any = None
        if scheduler:
            from autochip.builder.cluster import connect

            self.client = connect(scheduler)

    def map(self, chunks: list[I64], tiled: bool = False, lazy: bool = False) -> Any:
        """The metrics of every chunk, in order (``lazy``: one at a time, locally)."""
        wl, name, space, budget = self.args
        if self.client is None:
            it = (evaluate_designs(wl, self.platform, space, budget, c, tiled) for c in chunks)
            return it if lazy else list(it)
        futures = self.client.map(
            evaluate_designs, [wl] * len(chunks), [name] * len(chunks),
            [space] * len(chunks), [budget] * len(chunks), chunks,
            [tiled] * len(chunks), pure=False,
        )  # fmt: skip
        out: list[dict[str, Any]] = self.client.gather(futures)
        return out

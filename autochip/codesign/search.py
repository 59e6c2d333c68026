"""The joint search: successive halving over compressed candidates, each with its best cores.

Every candidate of the compression space (``trials`` of them, drawn with the seed, the uniform
int8 dense reference always among them) is trained for the first rung's epochs and costed on
its best hardware under the budget; the best ``1/eta`` of a rung (by non-dominated rank on
(validation accuracy, hardware objective), then the objective) go on to the next rung's epochs,
continuing their checkpoints, until the last rung. The reference is trained at every rung so
the knee is compared with it at the same training. A time budget (``hours``) stops launching
training after the running rung; what was measured stays (anytime), and the cache (see
:mod:`autochip.codesign.accuracy`) makes a rerun or a wider search reuse every training.

The joint front is over (test accuracy, latency, energy, resources) of every candidate's
hardware front at its highest measured fidelity. The chosen design is the best ``objective``
among front points whose accuracy is within ``max_loss`` of the reference's (at the same
epochs), and it is compared with the reference on the reference's own best core.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autochip.codesign.accuracy import Context, cached, measure
from autochip.codesign.candidate import REFERENCE, Candidate, JointSpace
from autochip.codesign.hardware import HardwareSearch, hardware_for

__all__ = ["Settings", "codesign", "joint_front"]


@dataclass(frozen=True)
class Settings:
    rungs: tuple[int, ...] = (1, 3)  # cumulative epochs per rung
    eta: int = 3  # keep the best 1/eta of a rung
    trials: int | None = None  # candidates drawn from the space (None: all)
    hours: float | None = None  # stop launching training after this
    max_loss: float = 0.005  # accuracy loss (fraction) the chosen design may have
    seed: int = 0
    workers: int = 1
    scheduler: str | None = None
    latency_target: float | None = None  # seconds per inference the chosen design must meet
    energy_target: float | None = None  # joules per inference


def _train_task(ctx: Context, cand: Candidate, schedule: tuple[int, ...]) -> dict[str, Any]:
    return measure(ctx, cand, schedule)


def _hw_task(npz: str, hs: HardwareSearch, name: str) -> dict[str, Any]:
    return hardware_for(npz, hs, name)


def _map(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    st: Settings,
    done: Callable[[int, Any], None] = lambda i, r: None,
    deadline: float | None = None,
) -> list[Any]:
    """``fn(*job)`` for every job, results in job order (``done(i, result)`` as each one
    finishes): on the Dask cluster of ``st.scheduler``, else on ``st.workers`` local processes,
    else here. Past ``deadline`` (here only) the remaining jobs are not started: None."""
    if not jobs:
        return []
    if st.scheduler is not None:
        from autochip.builder.cluster import connect

        client = connect(st.scheduler)
        futs = [client.submit(fn, *job, pure=False) for job in jobs]
        for i, f in enumerate(futs):  # reported in job order as they come in
            done(i, f.result())
        return list(client.gather(futs))
    if st.workers > 1 and len(jobs) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(min(st.workers, len(jobs)), mp.get_context("spawn")) as ex:
            pf = {ex.submit(fn, *job): i for i, job in enumerate(jobs)}
            out: list[Any] = [None] * len(jobs)
            for f in as_completed(pf):
                out[pf[f]] = f.result()
                done(pf[f], out[pf[f]])
            return out
    res: list[Any] = []
    for i, job in enumerate(jobs):
        if deadline is not None and time.perf_counter() > deadline:
            res += [None] * (len(jobs) - i)
            break
        res.append(fn(*job))
        done(i, res[-1])
    return res


def _reporter(
    say: Callable[[str], None], alive: list[Candidate], sched: tuple[int, ...], n: int
) -> Callable[[int, dict[str, Any]], None]:
    """The progress line of each finished training."""
    count = [0]

    def done(i: int, t: dict[str, Any]) -> None:
        count[0] += 1
        say(f"  [{count[0]}/{n}] {alive[i].label:34s} e{sched[-1]:<3d} "
            f"val {100 * t['accuracy_val']:6.2f} %  test {100 * t['accuracy']:6.2f} %"
            + ("  (cached)" if t.get("cached") else f"  ({t['train_wall_s']:.0f} s)"))  # fmt: skip

    return done


def pick_candidates(space: JointSpace, st: Settings) -> list[Candidate]:
    cands = space.candidates()
    if REFERENCE not in cands:
        cands.insert(0, REFERENCE)
    if st.trials is not None and st.trials < len(cands):
        rng = np.random.default_rng(st.seed)
        others = [c for c in cands if c != REFERENCE]
        take = rng.choice(len(others), size=max(0, st.trials - 1), replace=False)
        cands = [REFERENCE] + [others[i] for i in sorted(take.tolist())]
    return cands


def schedule_of(rungs: tuple[int, ...], r: int) -> tuple[int, ...]:
    return tuple(rungs[: r + 1])


def plan_size(n: int, st: Settings) -> list[int]:
    """Candidates trained per rung."""
    sizes = [n]
    for _ in st.rungs[1:]:
        sizes.append(max(1, math.ceil(sizes[-1] / st.eta)))
    return sizes


def _rank(points: np.ndarray) -> np.ndarray:
    """Non-dominated sorting rank (0: the front) of rows of ``points`` (smaller is better)."""
    n = len(points)
    rank = np.full(n, -1)
    left = np.arange(n)
    r = 0
    while left.size:
        sub = points[left]
        dom = np.array([np.any(np.all(sub <= p, axis=1) & np.any(sub < p, axis=1)) for p in sub])
        rank[left[~dom]] = r
        left = left[dom]
        r += 1
    return rank


def _crowding(points: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row within its rank: per objective, the normalised gap
    between its neighbours along that rank's front, summed; the extremes of every objective
    get ``inf`` (a rank's ends are kept before its middle)."""
    dist = np.zeros(len(points))
    for r in np.unique(rank):
        idx = np.flatnonzero(rank == r)
        for m in range(points.shape[1]):
            v = points[idx, m]
            order = idx[np.argsort(v, kind="stable")]
            span = float(v.max() - v.min())
            dist[order[0]] = dist[order[-1]] = np.inf
            if span > 0 and len(order) > 2:
                gaps = (points[order[2:], m] - points[order[:-2], m]) / span
                dist[order[1:-1]] += gaps
    return dist


def promote(
    records: list[dict[str, Any]],
    keep: int,
    reference: dict[str, Any] | None = None,
    max_loss: float = 0.0,
) -> list[int]:
    """Indices of the ``keep`` records that train on (the reference, trained at every rung
    anyway, takes no slot). Half the slots (rounded up) go to the candidates the chosen design
    is picked from: validation accuracy within ``max_loss`` of the ``reference``'s at this rung,
    best objective first; the rest, and any left over, by non-dominated rank on (-validation
    accuracy, objective), within a rank by crowding distance (its most accurate and its fastest
    candidates first, then those in the widest gaps), then objective. (Until 2026-12-03 a rank
    went by objective alone: ResNet-8's three-point front sent its two fastest, pruned w4/a4
    candidates on, not the dense w4/a4 one 1.5 points more accurate.)"""
    ok = [i for i, r in enumerate(records)
          if "error" not in r["hardware"] and r is not reference]  # fmt: skip
    if not ok or keep < 1:
        return []
    pts = np.array([[-records[i]["accuracy_val"], records[i]["hardware"]["chosen"]["objective"]]
                    for i in ok])  # fmt: skip
    rank = _rank(pts)
    crowd = _crowding(pts, rank)
    order = sorted(range(len(ok)),
                   key=lambda j: (rank[j], -crowd[j], pts[j, 1], pts[j, 0], ok[j]))  # fmt: skip
    picked: list[int] = []
    if reference is not None:
        floor = reference["accuracy_val"] - max_loss - 1e-12
        near = sorted((j for j in range(len(ok)) if -pts[j, 0] >= floor),
                      key=lambda j: (pts[j, 1], pts[j, 0], ok[j]))  # fmt: skip
        picked = near[: math.ceil(keep / 2)]
    picked += [j for j in order if j not in picked][: keep - len(picked)]
    return [ok[j] for j in picked]


def codesign(
    name: str,
    ctx: Context,
    space: JointSpace,
    hs: HardwareSearch,
    st: Settings,
    say: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Run the joint search; the result as JSON-ready data (see the module doc)."""
    t0 = time.perf_counter()
    deadline = None if st.hours is None else t0 + st.hours * 3600
    cands = pick_candidates(space, st)
    sizes = plan_size(len(cands), st)
    n_cached = sum(cached(ctx, c, schedule_of(st.rungs, 0)) is not None for c in cands)
    say(f"joint space: {len(space.candidates())} compressions x the core's hardware space; "
        f"{len(cands)} candidates, successive halving over epochs {list(st.rungs)} "
        f"(eta {st.eta}): up to {sum(sizes) + len(st.rungs) - 1} trainings "
        f"({n_cached} of the first rung cached)")  # fmt: skip
    best: dict[Candidate, dict[str, Any]] = {}  # each candidate's highest rung, with hardware
    reference: dict[int, dict[str, Any]] = {}  # rung -> the reference's record
    alive = list(cands)
    trainings = 0
    stopped = False
    rungs_done = 0
    for r in range(len(st.rungs)):
        if deadline is not None and time.perf_counter() > deadline:
            stopped = True
            break
        sched = schedule_of(st.rungs, r)
        jobs = [(ctx, c, sched) for c in alive]
        say(f"rung {r + 1}/{len(st.rungs)}: {len(jobs)} candidates to {sched[-1]} epochs")
        trained_one = _reporter(say, alive, sched, len(jobs))
        trained = _map(_train_task, jobs, st, trained_one, deadline)
        if any(t is None for t in trained):
            stopped = True
            alive = [c for c, t in zip(alive, trained, strict=True) if t is not None]
            trained = [t for t in trained if t is not None]
        trainings += sum(not t.get("cached") for t in trained)
        hw = _map(_hw_task, [(t["integer_model"], hs, f"{name}-{t['key'][:8]}") for t in trained],
                  st)  # fmt: skip
        recs = []
        for c, t, h in zip(alive, trained, hw, strict=True):
            rec = {**t, "hardware": h}
            recs.append(rec)
            best[c] = rec
            if c == REFERENCE:
                reference[r] = rec
            lat = h["chosen"]["latency_s"] * 1e6 if "chosen" in h else float("nan")
            say(f"  {c.label:34s} e{sched[-1]:<3d} test {100 * t['accuracy']:6.2f} %  "
                f"{lat:10.2f} us on its best core"
                + (f"  [{h['error']}]" if "error" in h else ""))  # fmt: skip
        if stopped:
            rungs_done = r + 1 if trained else r
            break
        rungs_done = r + 1
        if r + 1 == len(st.rungs):
            break
        ref_rec = next((rec for c, rec in zip(alive, recs, strict=True) if c == REFERENCE), None)
        keep = promote(recs, sizes[r + 1], ref_rec, st.max_loss)
        alive = [alive[i] for i in keep]
        if REFERENCE not in alive:
            alive.insert(0, REFERENCE)  # trained first: a time limit never cuts it
    out = joint_front(best, reference, hs, st)
    out.update(
        model=name,
        rungs=list(st.rungs),
        rungs_done=rungs_done,
        stopped_by_time=stopped,
        eta=st.eta,
        candidates=len(cands),
        space=space.describe(),
        trainings=trainings,  # run here, not from the cache
        seconds=time.perf_counter() - t0,
    )
    return out


def _design_point(c: Candidate, rec: dict[str, Any], d: dict[str, Any]) -> dict[str, Any]:
    res = d.get("resources")
    return {
        "candidate": c.to_dict(),
        "label": c.label,
        "epochs": rec["epochs"],
        "accuracy": rec["accuracy"],
        "accuracy_val": rec["accuracy_val"],
        "macs": rec["macs"],
        "key": rec["key"],
        "checkpoint": rec["checkpoint"],
        "integer_model": rec["integer_model"],
        "hw": d["hw"],
        "latency_s": d["latency_s"],
        "energy_j": d["energy_j"],
        "throughput_ips": d["throughput_ips"],
        "objective": d["objective"],
        **({"resources": res, "budget_fraction": d["budget_fraction"]} if res is not None
           else {"area_mm2": d["area_mm2"], "power_w": d["power_w"]}),
    }  # fmt: skip


def _res(p: dict[str, Any]) -> float:
    return float(p["budget_fraction"]) if "budget_fraction" in p else float(p["area_mm2"])


def joint_front(
    best: dict[Candidate, dict[str, Any]],
    reference: dict[int, dict[str, Any]],
    hs: HardwareSearch,
    st: Settings,
) -> dict[str, Any]:
    points: list[dict[str, Any]] = []
    rows = []
    for c, rec in best.items():
        row = {"label": c.label, "candidate": c.to_dict(), "epochs": rec["epochs"],
               "accuracy": rec["accuracy"], "accuracy_val": rec["accuracy_val"],
               "macs": rec["macs"], "train_cpu_s": rec.get("train_cpu_s"),
               "cached": rec.get("cached", False)}  # fmt: skip
        h = rec["hardware"]
        if "error" in h:
            row["error"] = h["error"]
        else:
            row["chosen"] = _design_point(c, rec, h["chosen"])
            points += [_design_point(c, rec, d) for d in h["pareto"]]
        rows.append(row)
    out: dict[str, Any] = {"candidates_measured": rows}
    if not points:
        out.update(front=[], chosen=None)
        return out
    pts = np.array([[-p["accuracy"], p["latency_s"], p["energy_j"], _res(p)] for p in points])
    front_idx = np.flatnonzero(_rank(pts) == 0)
    # equal points (two candidates of the same accuracy on the same core, or a candidate's
    # chosen design repeated in its front): the first in candidate order, i.e. the widest
    seen: set[tuple[float, ...]] = set()
    uniq = []
    for i in front_idx:
        k = tuple(pts[i].tolist())
        if k not in seen:
            seen.add(k)
            uniq.append(points[i])
    uniq.sort(key=lambda p: (-p["accuracy"], p["latency_s"]))
    for n, p in enumerate(uniq):
        p["id"] = f"f{n}"
    out["front"] = uniq
    ref_rec = reference[max(reference)] if reference else None
    ref = None
    if ref_rec is not None and "error" not in ref_rec["hardware"]:
        ref = _design_point(REFERENCE, ref_rec, ref_rec["hardware"]["chosen"])
        out["reference"] = ref
    floor = (ref["accuracy"] if ref else max(p["accuracy"] for p in points)) - st.max_loss
    ref_epochs = ref_rec["epochs"] if ref_rec is not None else 0
    lt = math.inf if st.latency_target is None else st.latency_target
    et = math.inf if st.energy_target is None else st.energy_target
    for p in points:
        p["meets_targets"] = p["latency_s"] <= lt and p["energy_j"] <= et
    ok = [p for p in points if p["accuracy"] >= floor - 1e-12 and p["epochs"] >= ref_epochs]
    if not ok:
        ok = [p for p in points if p["accuracy"] >= floor - 1e-12]
    if st.latency_target is not None or st.energy_target is not None:
        met = [p for p in points if p["meets_targets"]]
        out["targets"] = {"latency_s": st.latency_target, "energy_j": st.energy_target}
        if not met:
            out["targets_unmet"] = (
                f"no measured design meets the targets: the fastest has latency "
                f"{min(p['latency_s'] for p in points):.6g} s, the most frugal energy "
                f"{min(p['energy_j'] for p in points):.6g} J"
            )
        # within the targets: the most accurate of those within the loss, else of all
        ok = [p for p in ok if p["meets_targets"]] or sorted(
            met, key=lambda p: -p["accuracy"])[:1]  # fmt: skip
    chosen = min(ok, key=lambda p: (p["objective"], -p["accuracy"], p["latency_s"])) if ok else None
    out["chosen"] = chosen
    out["max_loss"] = st.max_loss
    if chosen is not None and ref is not None:
        out["latency_ratio"] = ref["latency_s"] / chosen["latency_s"]
        out["energy_ratio"] = ref["energy_j"] / chosen["energy_j"]
        out["accuracy_loss_points"] = 100 * (ref["accuracy"] - chosen["accuracy"])
    return out

"""The hardware half: a compressed candidate's best cores under the budget (the Chip Builder).

The candidate's integer model (``model.npz``) is compiled to the core's workload exactly as
``autochip build`` compiles it (:func:`autochip.builder.explore_build.integer_workload`), and
the Chip Builder's search (:func:`autochip.builder.explore.explore`) finds its cores: the
core's PE kind and widths are fixed by the candidate's arithmetic (the widest layer), the rest
of the space is the default one (or ``--space``'s ``hardware`` keys). With a fixed hardware spec
(``--fixed-hw``) every candidate runs on that one core instead, costed by the same model. Every
design carries ``hw`` (a ``--hw`` spec), so ``autochip predict --fidelity rtl --hw`` re-costs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autochip.builder.explore import budget_fit, evaluate_designs, explore, objective_values
from autochip.builder.space import (
    PARAMETERS,
    Budget,
    DesignSpace,
    default_space,
    space_from_dict,
)
from autochip.errors import SpecError
from autochip.hw.platform import Platform

__all__ = ["HardwareSearch", "fixed_space", "hardware_for"]

# Designs kept per candidate for the joint front (the candidate's own front, thinned): the
# joint front is over (accuracy, latency, energy, resources) and a candidate's hardware front
# can have hundreds of points that differ by a few LUTs.
KEEP = 24


@dataclass(frozen=True)
class HardwareSearch:
    """How each candidate's hardware is found (plain data: sent to Dask workers)."""

    platform: str
    budget: str | None
    objective: str
    samples: int
    seed: int
    margin: float
    tiled_samples: int
    space: Mapping[str, Any] | None = None  # --space's hardware keys
    fixed_hw: str | None = None  # a --hw YAML: every candidate on this one core


def fixed_space(hw_path: str) -> DesignSpace:
    """The one-design space of a hardware spec (the core's parameters from ``hw_path``)."""
    from autochip.hw.spec import load_hardware_spec
    from autochip.predictor.core_batch import core_configs

    cfg = core_configs([load_hardware_spec(hw_path)], source=hw_path)
    kb = 1024.0
    vals = {
        "pe_kind": float(cfg.adder[0]),
        "a_bits": float(cfg.a_bits[0]),
        "w_bits": float(cfg.w_bits[0]),
        "rows": float(cfg.rows[0]),
        "cols": float(cfg.cols[0]),
        "ifmap_kb": cfg.if_bytes[0] / kb,
        "weight_kb": cfg.w_bytes[0] / kb,
        "ofmap_kb": cfg.o_bytes[0] / kb,
        "clock_mhz": float(cfg.clock_mhz[0]),
        "bus_bytes": float(cfg.bus[0]),
    }
    return DesignSpace(tuple((vals[k],) for k in PARAMETERS))


def hardware_for(npz: str, hs: HardwareSearch, name: str) -> dict[str, Any]:
    """The candidate's cores: ``chosen`` (best ``objective``), ``pareto`` (up to KEEP designs of
    its hardware front, JSON-ready design dicts), ``evaluated``, ``seconds``; or ``error``
    (why no design runs it within the budget)."""
    from autochip.builder.baselines import design_dict
    from autochip.builder.explore import ExploreError
    from autochip.builder.explore_build import integer_workload
    from autochip.builder.space import parse_budget
    from autochip.hw.platform import load_platform
    from autochip.reference import load_integer_model

    platform: Platform = load_platform(hs.platform)
    budget: Budget = parse_budget(hs.budget, platform, hs.margin)
    wl = integer_workload(load_integer_model(npz), name)
    if hs.fixed_hw is not None:
        sp = fixed_space(hs.fixed_hw)
        problems = _fixed_problems(wl, sp)
        if problems:
            return {"error": f"--fixed-hw {hs.fixed_hw}: " + "; ".join(problems)}
        m = evaluate_designs(wl, platform, sp, budget, np.zeros(1, dtype=np.int64), True)
        if not bool(m["ok"][0]):
            from autochip.predictor.core_batch import why_infeasible

            cfg = sp.configs(np.zeros(1, dtype=np.int64))
            fits, _ = budget_fit(cfg, platform, budget)
            why = (
                ["it does not fit the budget"]
                if not fits[0]
                else (why_infeasible(wl, cfg, 0, tiled=True) or ["it cannot run the network"])
            )
            return {"error": f"--fixed-hw {hs.fixed_hw}: " + "; ".join(why[:3])}
        d = design_dict(sp, m, 0, platform, "fixed")
        d["objective"] = float(objective_values(m, hs.objective)[0])
        return {"chosen": d, "pareto": [d], "evaluated": 1, "seconds": 0.0}
    space = default_space(wl, platform)
    if hs.space:
        space = space_from_dict(dict(hs.space), space, "--space: hardware")
    try:
        res = explore(wl, platform, space, budget, hs.objective, samples=hs.samples,
                      seed=hs.seed, progress=False, tiled_samples=hs.tiled_samples)  # fmt: skip
    except ExploreError as exc:
        return {"error": str(exc)}
    m = res.metrics
    obj = objective_values(m, hs.objective)
    front = sorted(res.pareto.tolist(), key=lambda i: (m["latency_s"][i], int(m["flat"][i])))
    if len(front) > KEEP:  # evenly along latency, always with the chosen design
        pick = np.unique(np.linspace(0, len(front) - 1, KEEP).round().astype(int))
        front = sorted({front[i] for i in pick} | {res.chosen},
                       key=lambda i: (m["latency_s"][i], int(m["flat"][i])))  # fmt: skip
    pareto = []
    for n, i in enumerate(front):
        d = design_dict(res.space, m, i, platform, f"h{n}")
        d["objective"] = float(obj[i])
        pareto.append(d)
    chosen = design_dict(res.space, m, res.chosen, platform, "chosen")
    chosen["objective"] = float(obj[res.chosen])
    return {"chosen": chosen, "pareto": pareto, "evaluated": res.evaluated,
            "seconds": res.seconds, "space_size": res.space.size}  # fmt: skip


def _fixed_problems(wl: Any, sp: DesignSpace) -> list[str]:
    out = []
    w, a, adder = sp.of("w_bits")[0], sp.of("a_bits")[0], sp.of("pe_kind")[0]
    if wl.w_bits > w or wl.a_bits > a:
        out.append(f"the network needs w{wl.w_bits}/a{wl.a_bits} PEs, found w{int(w)}/a{int(a)}")
    if wl.adder and not adder:
        out.append("the network has adder layers: expected pe.kind 'adder', found 'mac'")
    return out


def check_search(hs: HardwareSearch) -> list[str]:
    """Problems of the hardware settings, found before any training."""
    from autochip.builder.space import parse_budget
    from autochip.hw.platform import load_platform

    problems: list[str] = []
    try:
        platform = load_platform(hs.platform)
    except SpecError as exc:
        return [f"{exc.source}: {p}" for p in exc.problems]
    try:
        parse_budget(hs.budget, platform, hs.margin)
    except SpecError as exc:
        problems += [f"{exc.source}: {p}" for p in exc.problems]
    if platform.is_fpga and platform.device is not None:
        from autochip.predictor.core_model import RESOURCE_TARGETS

        if platform.device.synth_target not in RESOURCE_TARGETS:
            problems.append(
                f"--platform {hs.platform}: the whole-core resource model is calibrated for "
                f"{' and '.join(RESOURCE_TARGETS)} devices, found a "
                f"{platform.device.synth_target} device"
            )
    if hs.fixed_hw is not None:
        if not Path(hs.fixed_hw).is_file():
            problems.append(f"--fixed-hw: expected a hardware spec YAML, found no file at "
                            f"'{hs.fixed_hw}'")  # fmt: skip
        else:
            try:
                fixed_space(hs.fixed_hw)
            except SpecError as exc:
                problems += [f"{exc.source}: {p}" for p in exc.problems]
    if hs.space:
        try:
            space_from_dict(dict(hs.space), _probe_space(), "--space: hardware")
        except SpecError as exc:
            problems += [f"{exc.source}: {p}" for p in exc.problems]
    return problems


def _probe_space() -> DesignSpace:
    return DesignSpace(tuple((1.0,) for _ in PARAMETERS))

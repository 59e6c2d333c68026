"""Expert baselines for the Chip Builder, and designs as JSON-ready dicts.

Each baseline is a configuration an engineer would pick by hand, sized to the same budget and
clock as the search and with buffers sized as an expert would for the network (each buffer just
large enough for the network's largest layer, :func:`expert_buffers`):

* ``largest-square``: the largest n x n array that fits the budget (on FPGAs usually the DSPs);
* ``tpu-like``: a weight-bound square (TPU v1 style): the largest power-of-two square, with the
  largest weight buffer of the space that still fits;
* ``shidiannao-like``: an 8 x 8 array (ShiDianNao, Du et al., ISCA 2015: 8 x 8 PEs);
* ``platform-default``: the platform's default accelerator (rows and cols capped at the core's
  64), its buffers raised to the network's needs where they are too small;
* ``tensil-pynq-z1`` / ``tensil-ultra96``: Tensil's published architectures
  (tensil-ai/tensil ``drivers/tcu_pynq/architecture.py``): array 8 with 8192 x 8 local and
  2048 x 8 accumulator words, and array 16 with 20480 x 16 and 4096 x 16; 16-bit words, so
  local memory 128 KB / 640 KB (split evenly between ifmap and weights here) and accumulators
  32 KB / 128 KB (the ofmap buffer).

Every baseline's AXI bus is the platform's whole DRAM bandwidth (``platform_bus``), as an
engineer would wire it, and its clock the highest of the search's clock targets that it meets
(its predicted Fmax, where the core model has one). Where buffers that hold the network's
feature maps whole do not fit the budget, the expert keeps the array and tiles the feature
maps (as the core's compiler does, and Tensil's): a published architecture's buffers as
published, then the largest buffer halved until the design fits (:func:`_buffer_options`).
A baseline that fits with no buffers is shrunk (square arrays by one row and column at a
time) until it does; one that cannot fit at all is reported as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from autochip.builder.explore import budget_fit, evaluate_designs
from autochip.builder.space import PARAMETERS, Budget, DesignSpace, buffer_needs, platform_bus
from autochip.hw.platform import Platform
from autochip.predictor.core_batch import CoreWorkload

__all__ = ["Baseline", "baselines", "design_dict", "expert_buffers"]


@dataclass(frozen=True)
class Baseline:
    name: str
    rule: str
    metrics: dict[str, Any] | None  # one design's metrics (scalars), None if none fits
    space: DesignSpace | None
    note: str = ""


def expert_buffers(wl: CoreWorkload, rows: int, cols: int) -> tuple[float, float, float]:
    """Smallest ifmap/weight/ofmap sizes (KB, whole KB) that let the core run every layer."""
    return buffer_needs(wl, rows, cols)


def _one(space: DesignSpace, **over: float) -> DesignSpace:
    vals = list(space.values)
    for k, v in over.items():
        vals[PARAMETERS.index(k)] = (float(v),)
    return DesignSpace(tuple(vals))


def _eval(wl: CoreWorkload, platform: Platform, sp: DesignSpace, budget: Budget) -> dict[str, Any]:
    """The design of ``sp`` (one value per parameter but the clock) at the highest clock of
    the space that it meets (its predicted Fmax, the budget's power), else at the highest;
    feature maps tiled where its buffers need it."""
    assert sp.size == len(sp.of("clock_mhz"))
    m = evaluate_designs(wl, platform, sp, budget, np.arange(sp.size, dtype=np.int64), True)
    ok = np.flatnonzero(m["ok"])
    i = int(ok[-1]) if ok.size else sp.size - 1  # clocks in ascending order
    return {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in m.items()}


_BUFS = ("ifmap_kb", "weight_kb", "ofmap_kb")


def _buffer_options(
    wl: CoreWorkload, r: int, c: int, bufs: dict[str, float]
) -> list[tuple[tuple[float, float, float], str]]:
    """The buffers an expert tries for an r x c array, in order: each just large enough for
    the network's largest layer (raised to ``bufs``, a published architecture's sizes); the
    published sizes as they are (the network then runs tiled where they are too small);
    then, from the last, the largest buffer halved again and again down to 1 KB (feature
    maps tiled to fit the budget)."""
    need = expert_buffers(wl, r, c)
    whole = tuple(max(n, bufs.get(k, 0.0)) for k, n in zip(_BUFS, need, strict=True))
    out = [(whole, "")]
    if bufs:
        pub = tuple(bufs[k] for k in _BUFS)
        if pub != whole:
            out.append((pub, "published buffers"))
    cur = list(out[-1][0])
    while max(cur) > 1.0:
        j = int(np.argmax(cur))  # the largest (ties: ifmap, weight, ofmap)
        cur[j] = max(1.0, cur[j] / 2)
        out.append((tuple(cur), "buffers halved to fit the budget"))
    return out  # type: ignore[return-value]


def _first_fit(
    wl: CoreWorkload,
    platform: Platform,
    base: DesignSpace,
    budget: Budget,
    r: int,
    c: int,
    bufs: dict[str, float],
) -> tuple[dict[str, Any], DesignSpace, str] | None:
    """The first of :func:`_buffer_options` with which an r x c core fits the budget and runs
    the network (whole or tiled); the budget's resources are checked first, per design."""
    plat = platform
    for (i, w, o), why in _buffer_options(wl, r, c, bufs):
        sp = _one(base, rows=r, cols=c, ifmap_kb=i, weight_kb=w, ofmap_kb=o)
        fits, _ = budget_fit(sp.configs(np.arange(sp.size, dtype=np.int64)), plat, budget)
        if not fits.any():
            continue
        m = _eval(wl, platform, sp, budget)
        if m["ok"]:
            return m, sp, why
    return None


def baselines(
    wl: CoreWorkload, platform: Platform, base: DesignSpace, budget: Budget
) -> list[Baseline]:
    """Every baseline, evaluated with the same model and budget as the search, on the
    platform's whole DRAM bandwidth (the widest bus, whatever ``--space`` allows the search),
    at the highest clock of the search's clock targets that it meets (its predicted Fmax
    where the model has one, a ``power_w`` budget); with feature-map tiling where its buffers
    cannot hold the network's feature maps whole within the budget."""
    first = {k: base.of(k)[0] for k in ("pe_kind", "a_bits", "w_bits")}  # as --space lists them
    base = _one(base, bus_bytes=platform_bus(platform), **first)
    d = platform.default_hw
    square: list[tuple[str, str, int, int, dict[str, float]]] = [
        ("largest-square", "largest n x n that fits the budget", 64, 64, {}),
        ("shidiannao-like", "8 x 8 array (ShiDianNao)", 8, 8, {}),
        ("platform-default", f"the platform default {d.rows} x {d.cols}",
         min(d.rows, 64), min(d.cols, 64),
         {"ifmap_kb": d.ifmap.size_bytes / 1024, "weight_kb": d.weight.size_bytes / 1024,
          "ofmap_kb": d.ofmap.size_bytes / 1024}),
        ("tensil-pynq-z1", "Tensil PYNQ-Z1: 8 x 8, 64+64 KB local, 32 KB accumulators", 8, 8,
         {"ifmap_kb": 64.0, "weight_kb": 64.0, "ofmap_kb": 32.0}),
        ("tensil-ultra96", "Tensil Ultra96: 16 x 16, 320+320 KB local, 128 KB accumulators",
         16, 16, {"ifmap_kb": 320.0, "weight_kb": 320.0, "ofmap_kb": 128.0}),
    ]  # fmt: skip
    out: list[Baseline] = []
    for name, rule, r, c, bufs in square:
        out.append(_shrink(wl, platform, base, budget, name, rule, r, c, bufs))
    # TPU-like: largest power-of-two square, then the largest weight buffer that fits
    best: Baseline | None = None
    n = 64
    while n >= 1 and best is None:
        got = _first_fit(wl, platform, base, budget, n, n, {})
        if got is not None:
            m, sp, why = got
            for wkb in sorted(base.of("weight_kb"), reverse=True):
                if wkb <= sp.of("weight_kb")[0]:
                    break
                sp2 = _one(sp, weight_kb=wkb)
                m2 = _eval(wl, platform, sp2, budget)
                if m2["ok"]:
                    m, sp = m2, sp2
                    break
            rule = f"weight-bound {n} x {n}, weight buffer {sp.of('weight_kb')[0]:g} KB"
            best = Baseline("tpu-like", rule, m, sp, _note(m, why))
        n //= 2
    out.insert(1, best or Baseline("tpu-like", "weight-bound square", None, None, "nothing fits"))
    return out


def _note(m: dict[str, Any], why: str, *more: str) -> str:
    notes = [*more, why] if why else list(more)
    if m.get("tiled"):
        notes.append("feature maps tiled")
    return "; ".join(notes)


def _shrink(
    wl: CoreWorkload,
    platform: Platform,
    base: DesignSpace,
    budget: Budget,
    name: str,
    rule: str,
    r: int,
    c: int,
    bufs: dict[str, float],
) -> Baseline:
    """The baseline at r x c, else shrunk one row and column at a time until it fits (at each
    size with the buffers of :func:`_buffer_options`)."""
    r0, c0 = r, c
    while r >= 1 and c >= 1:
        got = _first_fit(wl, platform, base, budget, r, c, bufs)
        if got is not None:
            m, sp, why = got
            notes = [f"shrunk to {r} x {c} to fit the budget"] if (r, c) != (r0, c0) else []
            grown = [k for k, v in bufs.items() if sp.of(k)[0] > v]
            if grown:
                notes.append("buffers raised to the network's needs: " + ", ".join(grown))
            return Baseline(name, rule, m, sp, _note(m, why, *notes))
        r, c = r - 1, c - 1
    return Baseline(name, rule, None, None, "no size fits the budget")


def design_dict(
    space: DesignSpace, metrics: dict[str, Any], i: int | None, platform: Platform, ident: str
) -> dict[str, Any]:
    """One design as JSON: ``hw`` (a ``--hw`` spec), latency, energy, throughput, resources."""

    def get(k: str) -> Any:
        v = metrics[k]
        return v if i is None else v[i]

    flat = int(get("flat"))
    cfg = space.configs(np.array([flat], dtype=np.int64))
    hw = cfg.spec(0, ident)
    lat, en = float(get("latency_s")), float(get("energy_j"))
    out: dict[str, Any] = {
        "id": ident,
        "hw": hw,
        "latency_s": lat,
        "energy_j": en,
        "throughput_ips": 1.0 / lat,
        "edp_js": lat * en,
        "power_w": float(get("power_w")),
        "cycles": int(get("cycles")),
        "tiled": bool(get("tiled")) if "tiled" in metrics else False,  # feature maps in bands
    }
    if platform.is_fpga:
        out["resources"] = {k: int(get(k)) for k in ("lut", "ff", "dsp", "bram")}
        fmax = float(get("fmax_mhz")) if "fmax_mhz" in metrics else math.nan
        if math.isfinite(fmax):  # the predicted Fmax the clock is within (ECP5)
            out["fmax_mhz"] = fmax
        out["budget_fraction"] = float(get("res"))
    else:
        out["area_mm2"] = float(get("area_mm2"))
    return out

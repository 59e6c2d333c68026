"""The design space of autochip's core and the budgets a design must meet.

A :class:`DesignSpace` lists the values of every core parameter the search may choose
(:data:`PARAMETERS`); a design is one value per parameter, so the space is their cartesian
product and a design has a flat index into it (``numpy.unravel_index`` order). The default space
(:func:`default_space`) is fixed where the model decides (the PE kind and operand widths the
network's arithmetic needs) and free elsewhere (array rows and columns, the three buffer sizes,
the AXI data bus width: powers of two from 4 bytes up to the platform's DRAM bandwidth,
:func:`platform_bus`; the clock: a few targets up to the platform's clock where the core model
predicts the Fmax of the platform's FPGA family, else the platform's clock,
:func:`clock_targets`). ``--space
FILE`` narrows or widens it: a YAML mapping from parameter to a list of values or ``{min, max,
step}`` / ``{min, max, factor}``; every problem of the file is reported at once.

A :class:`Budget` caps resources on top of the platform's device (FPGA: ``lut ff dsp bram``,
and ``power_w``; ASIC: ``area_mm2`` and ``power_w``), parsed from ``--budget lut=30000,dsp=200``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from autochip.errors import SpecError
from autochip.hw.platform import Platform
from autochip.predictor.core_batch import CoreConfigs, CoreWorkload

__all__ = [
    "PARAMETERS",
    "Budget",
    "DesignSpace",
    "buffer_needs",
    "clock_targets",
    "default_space",
    "expert_designs",
    "has_fmax_model",
    "load_space",
    "parse_budget",
    "platform_bus",
]

I64 = npt.NDArray[np.int64]

PARAMETERS = (
    "pe_kind", "a_bits", "w_bits", "rows", "cols", "ifmap_kb", "weight_kb", "ofmap_kb",
    "clock_mhz", "bus_bytes",
)  # fmt: skip
_LIMITS: dict[str, tuple[float, float]] = {
    "a_bits": (2, 8),
    "w_bits": (2, 8),
    "rows": (1, 64),
    "cols": (1, 64),
    "ifmap_kb": (1 / 64, 65536),
    "weight_kb": (1 / 64, 65536),
    "ofmap_kb": (1 / 64, 65536),
    "clock_mhz": (1, 2000),
    "bus_bytes": (4, 64),  # core.MIN_BUS_BYTES .. core.MAX_BUS_BYTES
}
# Buffer sizes (KB): four steps per octave from 1 KB to 4 MB (1, 1.25, 1.5, 1.75, 2, 2.5, ...);
# the core takes any size (core.core_params rounds each buffer down to its words), and the
# block RAMs a size takes depend on its geometry (core_model.buffer_brams), not on powers of two.
KB_STEPS = 4
_KB_DEFAULT = (
    *((KB_STEPS + i) * 2**e / KB_STEPS for e in range(12) for i in range(KB_STEPS)),
    4096.0,
)
_DIM_DEFAULT = tuple(range(1, 65))  # every array dimension the core takes (core_params: 1..64)
PE_KINDS = ("mac", "adder")


@dataclass(frozen=True)
class DesignSpace:
    """Values per parameter, in :data:`PARAMETERS` order."""

    values: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        assert len(self.values) == len(PARAMETERS)

    def of(self, name: str) -> tuple[float, ...]:
        return self.values[PARAMETERS.index(name)]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def configs(self, flat: I64) -> CoreConfigs:
        """The core configurations of flat design indices."""
        idx = np.unravel_index(flat, self.shape)
        col = {n: np.asarray(v)[i] for n, v, i in zip(PARAMETERS, self.values, idx, strict=True)}
        kb = 1024.0
        return CoreConfigs(
            rows=col["rows"].astype(np.int64),
            cols=col["cols"].astype(np.int64),
            a_bits=col["a_bits"].astype(np.int64),
            w_bits=col["w_bits"].astype(np.int64),
            adder=col["pe_kind"].astype(np.int64),
            if_bytes=np.round(col["ifmap_kb"] * kb).astype(np.int64),
            w_bytes=np.round(col["weight_kb"] * kb).astype(np.int64),
            o_bytes=np.round(col["ofmap_kb"] * kb).astype(np.int64),
            clock_mhz=col["clock_mhz"].astype(np.float64),
            bus_bytes=col["bus_bytes"].astype(np.int64),
        )

    def describe(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for n, v in zip(PARAMETERS, self.values, strict=True):
            out[n] = [PE_KINDS[int(x)] for x in v] if n == "pe_kind" else [_num(x) for x in v]
        return out


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def buffer_needs(wl: CoreWorkload, rows: int, cols: int) -> tuple[float, float, float]:
    """Smallest ifmap/weight/ofmap sizes (whole KB) that let an R x C core run every layer of
    ``wl`` (each buffer just large enough for the network's largest layer)."""
    two = np.where(wl.src2 >= 0, 2, 1)
    comp = ~wl.vector
    need_i = rows * int((wl.in_len * np.where(comp, 1, two)).max(initial=1))
    need_w = cols * int(wl.t[comp].max(initial=1))
    need_o = max(
        cols * int(wl.pq[comp].max(initial=1)), int((wl.c * wl.pq)[wl.vector].max(initial=1))
    )
    return (
        float(max(1, -(-need_i // 1024))),
        float(max(1, -(-need_w // 1024))),
        float(max(1, -(-need_o // 1024))),
    )


def expert_designs(wl: CoreWorkload, space: DesignSpace) -> npt.NDArray[np.int64]:
    """Flat indices of the designs whose buffers are the smallest of the space that hold the
    network (:func:`buffer_needs`), one per array shape and clock, on the widest bus (as an
    expert sizes them, ``baselines``): the warm start of the model-guided search."""
    shape = space.shape
    grids = [np.arange(n) for n in shape]
    names = list(PARAMETERS)
    out: list[int] = []
    kb = {k: np.asarray(space.of(k)) for k in ("ifmap_kb", "weight_kb", "ofmap_kb")}
    for r_i, r in enumerate(space.of("rows")):
        for c_i, c in enumerate(space.of("cols")):
            need = buffer_needs(wl, int(r), int(c))
            pick = []
            for k, n in zip(("ifmap_kb", "weight_kb", "ofmap_kb"), need, strict=True):
                ok = np.flatnonzero(kb[k] >= n)
                pick.append(int(ok[0]) if ok.size else -1)
            if min(pick) < 0:
                continue
            idx = [g[:1] for g in grids]  # first value of the fixed parameters ...
            idx[names.index("clock_mhz")] = grids[names.index("clock_mhz")]  # ... every clock
            idx[names.index("bus_bytes")] = grids[names.index("bus_bytes")][-1:]  # widest bus
            for name, v in (("rows", r_i), ("cols", c_i), ("ifmap_kb", pick[0]),
                            ("weight_kb", pick[1]), ("ofmap_kb", pick[2])):  # fmt: skip
                idx[names.index(name)] = np.array([v])
            for combo in np.array(np.meshgrid(*idx, indexing="ij")).reshape(len(shape), -1).T:
                out.append(int(np.ravel_multi_index(tuple(combo), shape)))
    return np.array(sorted(set(out)), dtype=np.int64)


def platform_bus(platform: Platform) -> int:
    """The widest AXI data bus (bytes) the platform's DRAM feeds every cycle: the largest power
    of two within its default ``dram.bandwidth``, 4 .. 64 (the core's limits)."""
    bw = int(platform.default_hw.dram.bandwidth)
    return max(4, min(64, 1 << max(0, bw.bit_length() - 1)))


CLOCK_FRACTIONS = (0.25, 0.5, 0.75, 1.0)  # default clock targets, of the platform's clock


def has_fmax_model(platform: Platform) -> bool:
    """Whether the core model predicts an Fmax on ``platform``'s FPGA family
    (``core_model.fmax_mhz``, fitted to nextpnr runs: ECP5 only)."""
    if not platform.is_fpga or platform.device is None:
        return False
    from autochip.predictor.core_batch import core_resources_batch
    from autochip.predictor.core_model import RESOURCE_TARGETS

    target = platform.device.synth_target
    if target not in RESOURCE_TARGETS:
        return False
    one = np.ones(1, dtype=np.int64)
    probe = CoreConfigs(rows=one, cols=one, a_bits=8 * one, w_bits=8 * one, adder=0 * one,
                        if_bytes=1024 * one, w_bytes=1024 * one, o_bytes=1024 * one,
                        clock_mhz=np.ones(1), bus_bytes=4 * one)  # fmt: skip
    return bool(np.isfinite(core_resources_batch(probe, target)["fmax_mhz"][0]))


def clock_targets(platform: Platform) -> tuple[float, ...]:
    """The default clock targets (MHz): the platform's clock, and where the core model
    predicts an Fmax for the platform's FPGA family, also 1/4, 1/2 and 3/4 of it (a design
    runs only at targets within its predicted Fmax, ``explore.evaluate_designs``). Never
    above the platform's clock: its DRAM bandwidth (``dram.bandwidth``, bytes per cycle) is
    the platform's at that clock."""
    clk = float(platform.default_hw.clock_mhz)
    if not has_fmax_model(platform):
        return (clk,)
    return tuple(sorted({round(f * clk, 1) for f in CLOCK_FRACTIONS}))


def default_space(wl: CoreWorkload, platform: Platform) -> DesignSpace:
    """The default space for ``wl`` on ``platform`` (see the module docstring)."""
    sized = [buffer_needs(wl, r, c) for r in _DIM_DEFAULT for c in _DIM_DEFAULT]
    lo, hi = _LIMITS["ifmap_kb"]

    def grid(j: int) -> tuple[float, ...]:
        need = {s[j] for s in sized if lo <= s[j] <= hi}
        return tuple(sorted(set(map(float, _KB_DEFAULT)) | need))

    vals: dict[str, tuple[float, ...]] = {
        "pe_kind": (1.0,) if wl.adder else (0.0,),
        "a_bits": (float(wl.a_bits),),
        "w_bits": (float(wl.w_bits),),
        "rows": tuple(map(float, _DIM_DEFAULT)),
        "cols": tuple(map(float, _DIM_DEFAULT)),
        "ifmap_kb": grid(0),
        "weight_kb": grid(1),
        "ofmap_kb": grid(2),
        "clock_mhz": clock_targets(platform),
        "bus_bytes": tuple(float(1 << k) for k in range(2, platform_bus(platform).bit_length())),
    }
    return DesignSpace(tuple(vals[n] for n in PARAMETERS))


def load_space(path: str | Path, base: DesignSpace) -> DesignSpace:
    """``base`` with the parameters the YAML file ``path`` gives replaced; one error lists
    every problem of the file."""
    p = Path(path)
    source = f"--space {path}"
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise SpecError(source, [f"expected a readable YAML file, found: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise SpecError(source, [f"expected valid YAML, found: {exc}"]) from None
    return space_from_dict(data, base, source)


def space_from_dict(data: Any, base: DesignSpace, source: str = "space") -> DesignSpace:
    if not isinstance(data, Mapping) or not data:
        raise SpecError(
            source, [f"expected a mapping of parameters {list(PARAMETERS)}, found {data!r}"]
        )
    problems: list[str] = []
    vals = dict(zip(PARAMETERS, base.values, strict=True))
    for key, raw in data.items():
        if key not in PARAMETERS:
            problems.append(f"{key}: expected one of {list(PARAMETERS)}")
            continue
        got = _values(str(key), raw, problems)
        if got is not None:
            vals[str(key)] = got
    bus = vals["bus_bytes"]
    widest = max(base.of("bus_bytes"))
    bad_bus = any(int(b) & (int(b) - 1) for b in bus) or max(bus) > widest
    if "bus_bytes" in data and bus != base.of("bus_bytes") and bad_bus:
        problems.append(
            f"bus_bytes: expected powers of two from 4 up to the platform's DRAM bandwidth "
            f"({widest:g} bytes per cycle), found {[_num(b) for b in bus]}"
        )
    top = max(base.of("clock_mhz"))
    if "clock_mhz" in data and max(vals["clock_mhz"]) > top:
        problems.append(
            f"clock_mhz: expected clocks up to the platform's {top:g} MHz (its DRAM bandwidth "
            f"is bytes per cycle at that clock), found {[_num(c) for c in vals['clock_mhz']]}"
        )
    if problems:
        raise SpecError(source, problems)
    return DesignSpace(tuple(vals[n] for n in PARAMETERS))


def _values(key: str, raw: Any, problems: list[str]) -> tuple[float, ...] | None:
    if key == "pe_kind":
        items = raw if isinstance(raw, list) else [raw]
        bad = [x for x in items if x not in PE_KINDS]
        if bad or not items:
            problems.append(f"pe_kind: expected a list of {list(PE_KINDS)}, found {raw!r}")
            return None
        return tuple(float(PE_KINDS.index(x)) for x in dict.fromkeys(items))
    lo, hi = _LIMITS[key]
    integral = key in ("a_bits", "w_bits", "rows", "cols", "bus_bytes")
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"min", "max", "step", "factor"}
        nums = {k: raw.get(k) for k in ("min", "max", "step", "factor") if k in raw}
        if unknown or "min" not in raw or "max" not in raw or ("step" in raw) == ("factor" in raw):
            problems.append(
                f"{key}: expected {{min, max, step}} or {{min, max, factor}}, found {dict(raw)}"
            )
            return None
        if not all(_is_num(v) for v in nums.values()):
            problems.append(f"{key}: expected numbers, found {dict(raw)}")
            return None
        a, b = float(nums["min"]), float(nums["max"])  # type: ignore[arg-type]
        items_f: list[float] = []
        if "step" in nums:
            step = float(nums["step"])  # type: ignore[arg-type]
            if step <= 0 or b < a:
                problems.append(f"{key}: expected min <= max and step > 0, found {dict(raw)}")
                return None
            n = math.floor((b - a) / step + 1e-9) + 1
            items_f = [a + i * step for i in range(n)]
        else:
            fac = float(nums["factor"])  # type: ignore[arg-type]
            if fac <= 1 or b < a or a <= 0:
                problems.append(f"{key}: expected 0 < min <= max and factor > 1, found {dict(raw)}")
                return None
            x = a
            while x <= b * (1 + 1e-9):
                items_f.append(x)
                x *= fac
        raw_items: list[Any] = items_f
    elif isinstance(raw, list):
        raw_items = raw
    else:
        raw_items = [raw]
    if not raw_items or not all(_is_num(v) for v in raw_items):
        problems.append(f"{key}: expected a non-empty list of numbers, found {raw!r}")
        return None
    out = []
    for v in raw_items:
        f = float(v)
        if integral and not f.is_integer():
            problems.append(f"{key}: expected integers, found {v!r}")
            return None
        if not lo <= f <= hi:
            problems.append(f"{key}: expected values in {_num(lo)}..{_num(hi)}, found {v!r}")
            return None
        out.append(round(f) if integral else f)
    if len(out) > 4096:
        problems.append(f"{key}: expected at most 4096 values, found {len(out)}")
        return None
    return tuple(sorted(dict.fromkeys(float(x) for x in out)))


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# -- budgets -----------------------------------------------------------------------------------
FPGA_KEYS = ("lut", "ff", "dsp", "bram")
BUDGET_KEYS = (*FPGA_KEYS, "area_mm2", "power_w")


@dataclass(frozen=True)
class Budget:
    """Caps a design must meet: FPGA resources (the device's unless lowered), ASIC area, power."""

    caps: dict[str, float]
    margin: float = 0.0  # predicted FPGA resources are scaled by 1 + margin before the check

    def as_dict(self) -> dict[str, float]:
        return dict(self.caps)


def parse_budget(text: str | None, platform: Platform, margin: float = 0.0) -> Budget:
    """``lut=30000,dsp=200`` or ``area_mm2=2,power_w=1`` on top of the platform's device;
    ``margin``: the fraction by which predicted FPGA resources are raised before they are
    compared with the caps (the resource model's error, docs/core.md)."""
    caps: dict[str, float] = {}
    if platform.device is not None:
        d = platform.device
        caps = {"lut": d.lut, "ff": d.ff, "dsp": d.dsp, "bram": d.bram.count}
    if not 0.0 <= margin < 1.0:
        raise SpecError("--margin", [f"expected a fraction in [0, 1), found {margin}"])
    if not text:
        return Budget(caps, margin)
    problems: list[str] = []
    allowed = (*FPGA_KEYS, "power_w") if platform.is_fpga else ("area_mm2", "power_w")
    seen: set[str] = set()
    for item in text.split(","):
        key, eq, value = item.strip().partition("=")
        key = key.strip().lower()
        if not eq:
            problems.append(f"'{item.strip()}': expected KEY=VALUE")
            continue
        if key not in allowed:
            problems.append(
                f"'{key}': expected one of {', '.join(allowed)} for the {platform.kind} "
                f"platform '{platform.name}'"
            )
            continue
        if key in seen:
            problems.append(f"'{key}': given twice")
            continue
        seen.add(key)
        try:
            v = float(value)
        except ValueError:
            problems.append(f"{key}: expected a number, found '{value.strip()}'")
            continue
        if not math.isfinite(v) or v <= 0:
            problems.append(f"{key}: expected a positive number, found '{value.strip()}'")
            continue
        if key in caps and v > caps[key]:
            problems.append(
                f"{key}: {value.strip()} exceeds the {caps[key]:g} the device '{platform.name}' has"
            )
            continue
        caps[key] = v
    if problems:
        raise SpecError("--budget", problems)
    return Budget(caps, margin)

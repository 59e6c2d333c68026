"""Technology: unit energies and areas of one CMOS node, read from YAML package data.

The 45 nm base table (``data/tech_45nm.yaml``, Horowitz ISSCC 2014) is scaled to other nodes with
the Stillmaker & Baas (2017) equations in ``data/scaling.yaml``; FPGA platforms multiply the
energies of their node by the FPGA/ASIC power gap (Kuon & Rose 2007). No number lives in code.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from autochip._safeio import load_yaml_text
from autochip.errors import SpecError
from autochip.hw._fields import Fields
from autochip.hw.spec import PESpec

__all__ = ["Technology", "load_technology"]

_TABLES = (
    "int_add_pj",
    "int_add_um2",
    "int_mult_pj",
    "int_mult_um2",
    "fp_add_pj",
    "fp_add_um2",
    "fp_mult_pj",
    "fp_mult_um2",
)
_SCALARS = (
    "xnor_lane_pj",
    "xnor_lane_um2",
    "register_pj_per_bit",
    "register_um2_per_bit",
    "sram_write_over_read",
    "sram_um2_per_bit",
    "dram_pj_per_bit",
    "leakage_nw_per_um2",
)


@dataclass(frozen=True)
class Technology:
    """Unit costs of one node; energies already include ``energy_scale``, areas ``area_scale``."""

    name: str
    node_nm: float
    vdd: float
    tables: Mapping[str, tuple[tuple[int, float], ...]] = field(hash=False)
    scalars: Mapping[str, float] = field(hash=False)
    sram_points: tuple[tuple[float, float], ...] = ()
    energy_scale: float = 1.0
    area_scale: float = 1.0
    leakage_scale: float = 1.0

    # -- arithmetic ---------------------------------------------------------------------------
    def _table(self, key: str, bits: int) -> float:
        """The value at the smallest tabulated width >= ``bits`` (the widest if none is)."""
        rows = self.tables[key]
        widths = [w for w, _ in rows]
        i = min(bisect.bisect_left(widths, bits), len(rows) - 1)
        return rows[i][1]

    def _energy(self, key: str, bits: int) -> float:
        return self._table(key, bits) * self.energy_scale

    def _area(self, key: str, bits: int) -> float:
        return self._table(key, bits) * self.area_scale

    def pe_op_energy_pj(self, pe: PESpec) -> float:
        """Energy of one PE operation: a MAC, an adder step, or ``vector`` xnor-popcount lanes."""
        if pe.kind == "xnor":
            lanes = self.scalars["xnor_lane_pj"] * pe.vector * self.energy_scale
            return lanes + self._energy("int_add_pj", pe.acc_bits)
        prefix = "fp" if pe.dtype == "float" else "int"
        width = max(pe.w_bits, pe.a_bits)
        acc = self._energy(f"{prefix}_add_pj", pe.acc_bits)
        if pe.kind == "adder":  # |a - w|: a subtract and an absolute value, then accumulate
            return 2 * self._energy(f"{prefix}_add_pj", width) + acc
        return self._energy(f"{prefix}_mult_pj", width) + acc

    def add_energy_pj(self, bits: int, dtype: str = "int") -> float:
        """Energy of one add (the post-processing unit's elementary operation)."""
        return self._energy("fp_add_pj" if dtype == "float" else "int_add_pj", bits)

    def register_energy_pj(self, bits: float) -> float:
        return self.scalars["register_pj_per_bit"] * bits * self.energy_scale

    def pe_area_um2(self, pe: PESpec) -> float:
        """Area of one PE: its arithmetic plus operand and accumulator registers."""
        regs = (pe.w_bits * pe.vector + pe.a_bits * pe.vector + pe.acc_bits) * self.scalars[
            "register_um2_per_bit"
        ]
        if pe.kind == "xnor":
            logic = self.scalars["xnor_lane_um2"] * pe.vector + self._table(
                "int_add_um2", pe.acc_bits
            )
        else:
            prefix = "fp" if pe.dtype == "float" else "int"
            width = max(pe.w_bits, pe.a_bits)
            acc = self._table(f"{prefix}_add_um2", pe.acc_bits)
            if pe.kind == "adder":
                logic = 2 * self._table(f"{prefix}_add_um2", width) + acc
            else:
                logic = self._table(f"{prefix}_mult_um2", width) + acc
        return (logic + regs) * self.area_scale

    # -- memories -----------------------------------------------------------------------------
    def sram_read_pj_per_bit(self, size_bytes: float) -> float:
        """Read energy per bit of an SRAM of ``size_bytes``: log-log interpolation of [H]."""
        pts = self.sram_points
        x = math.log(max(size_bytes, 1.0))
        xs = [math.log(s) for s, _ in pts]
        ys = [math.log(e) for _, e in pts]
        i = min(max(bisect.bisect_left(xs, x), 1), len(xs) - 1)
        slope = (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1])
        e64 = math.exp(ys[i - 1] + slope * (x - xs[i - 1]))
        return e64 / 64.0 * self.energy_scale

    def sram_write_pj_per_bit(self, size_bytes: float) -> float:
        return self.sram_read_pj_per_bit(size_bytes) * self.scalars["sram_write_over_read"]

    def sram_area_um2(self, size_bytes: float) -> float:
        return size_bytes * 8 * self.scalars["sram_um2_per_bit"] * self.area_scale

    @property
    def dram_pj_per_bit(self) -> float:
        """Off-chip DRAM energy per bit (an interface property: not scaled with the node)."""
        return self.scalars["dram_pj_per_bit"]

    def leakage_w(self, area_um2: float) -> float:
        return area_um2 * self.scalars["leakage_nw_per_um2"] * 1e-9 * self.leakage_scale


def _read_package_yaml(name: str) -> tuple[Any, str]:
    ref = resources.files("autochip.hw") / "data" / name
    source = f"autochip/hw/data/{name}"
    return load_yaml_text(ref.read_text(), source), source


def _energy_factor(coeffs: tuple[float, float, float], vdd: float) -> float:
    a, b, c = coeffs
    return a * vdd * vdd + b * vdd + c


def _node_factors(scaling: Mapping[str, Any], node_nm: float, vdd: float) -> tuple[float, float]:
    """(area factor vs 45 nm, energy factor f(Vdd)) at ``node_nm``, linear between nodes."""
    nodes = sorted((float(n), d) for n, d in scaling["nodes"].items())
    lo_n, _lo = nodes[0]
    hi_n, _hi = nodes[-1]
    if not lo_n <= node_nm <= hi_n:
        raise SpecError(
            "technology",
            [f"node_nm: expected a node between {lo_n:g} and {hi_n:g} nm, found {node_nm:g}"],
        )
    for (n0, d0), (n1, d1) in itertools.pairwise(nodes):
        if n0 <= node_nm <= n1:
            t = 0.0 if n1 == n0 else (node_nm - n0) / (n1 - n0)
            area = d0["area_factor"] + t * (d1["area_factor"] - d0["area_factor"])
            e0 = _energy_factor(tuple(d0["energy_coeffs"]), vdd)
            e1 = _energy_factor(tuple(d1["energy_coeffs"]), vdd)
            return float(area), e0 + t * (e1 - e0)
    raise AssertionError("unreachable")  # pragma: no cover


def load_technology(node_nm: float, vdd: float, fpga_energy_factor: float = 1.0) -> Technology:
    """The 45 nm base table scaled to ``node_nm`` at ``vdd`` (Stillmaker & Baas 2017)."""
    base, source = _read_package_yaml("tech_45nm.yaml")
    scaling, _ = _read_package_yaml("scaling.yaml")
    f = Fields(source)
    tables: dict[str, tuple[tuple[int, float], ...]] = {}
    for key in _TABLES:
        raw = f.mapping(base.get(key), key)
        tables[key] = tuple(sorted((int(k), float(v)) for k, v in raw.items()))
    scalars = {key: f.get(base, key, float, "") for key in _SCALARS}
    sram = f.mapping(base.get("sram_read_64b_pj"), "sram_read_64b_pj")
    f.finish()
    base_node = float(base["node_nm"])
    base_vdd = float(base["vdd"])
    area_b, energy_b = _node_factors(scaling, base_node, base_vdd)
    area_n, energy_n = _node_factors(scaling, node_nm, vdd)
    area_scale = area_n / area_b
    energy_scale = energy_n / energy_b
    return Technology(
        name=f"cmos-{node_nm:g}nm" if fpga_energy_factor == 1.0 else f"fpga-{node_nm:g}nm",
        node_nm=node_nm,
        vdd=vdd,
        tables=tables,
        scalars=scalars,
        sram_points=tuple(sorted((float(k), float(v)) for k, v in sram.items())),
        energy_scale=energy_scale * fpga_energy_factor,
        area_scale=area_scale,
        leakage_scale=energy_scale / area_scale,
    )

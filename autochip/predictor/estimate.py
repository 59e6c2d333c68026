"""``predict(graph, hw, platform) -> Estimate``: the per-design view of the batch model.

A batch of one through :func:`autochip.predictor.batch.evaluate`, arranged as a pandas table per
layer plus totals, the energy breakdown and ASIC area or FPGA resources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from autochip.hw.platform import Platform
from autochip.hw.spec import HardwareSpec
from autochip.ir.graph import AccelGraph
from autochip.predictor.batch import ENERGY_PARTS, BatchResult, config_table, evaluate
from autochip.predictor.resources import AreaBreakdown, FpgaUsage, asic_area, fpga_usage
from autochip.predictor.workload import GEMM, Workload, workload_from_graph

__all__ = [
    "Estimate",
    "Totals",
    "arithmetic_notes",
    "layer_table",
    "predict",
    "predict_workload",
]


@dataclass(frozen=True)
class Totals:
    cycles: int
    compute_cycles: int
    stall_cycles: int
    latency_s: float
    throughput_ips: float
    gops: float
    energy_pj: float
    power_w: float
    edp_js: float
    macs: int


@dataclass(frozen=True)
class Estimate:
    """Everything the predictor says about one design on one workload."""

    workload: str
    hw: HardwareSpec
    platform: str
    layers: pd.DataFrame = field(hash=False, compare=False)
    total: Totals
    energy_breakdown: dict[str, float] = field(hash=False)
    area: AreaBreakdown | None = None
    resources: FpgaUsage | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        t = self.total
        out: dict[str, Any] = {
            "model": self.workload,
            "hardware": self.hw.name,
            "platform": self.platform,
            "total": {
                "cycles": t.cycles,
                "compute_cycles": t.compute_cycles,
                "stall_cycles": t.stall_cycles,
                "latency_s": t.latency_s,
                "throughput_ips": t.throughput_ips,
                "gops": t.gops,
                "energy_pj": t.energy_pj,
                "power_w": t.power_w,
                "edp_js": t.edp_js,
                "macs": t.macs,
            },
            "energy_breakdown": dict(self.energy_breakdown),
            "notes": list(self.notes),
        }
        if self.resources is not None:
            out["resources"] = self.resources.to_dict()
        if self.area is not None:
            out["area_um2"] = self.area.to_dict()
        out["layers"] = self.layers.to_dict(orient="records")
        return out


def layer_table(wl: Workload, res: BatchResult, i: int, clock_hz: float) -> pd.DataFrame:
    """Row ``i`` (one configuration) of a batch result as a per-layer table."""
    rows = wl.rows
    energy = {p: res.energy[p][i] for p in ENERGY_PARTS}
    total_e = sum(energy.values())
    df = pd.DataFrame(
        {
            "name": [r.name for r in rows],
            "op": [r.op for r in rows],
            "arithmetic": [r.arithmetic for r in rows],
            "macs": [r.M * r.F * r.Kw * r.G if r.kind == GEMM else 0 for r in rows],
            "cycles": res.cycles[i].astype(int),
            "stall_cycles": res.stall_cycles[i].astype(int),
            "latency_s": res.total_cycles[i] / clock_hz,
            "utilization": res.utilization[i],
            "mapping_efficiency": res.mapping_efficiency[i],
            "row_folds": res.row_folds[i].astype(int),
            "col_folds": res.col_folds[i].astype(int),
            "sram_reads_ifmap": res.sram_reads_ifmap[i].astype(int),
            "sram_reads_weight": res.sram_reads_weight[i].astype(int),
            "sram_writes_ofmap": res.sram_writes_ofmap[i].astype(int),
            "dram_bytes": (
                res.dram_bytes_ifmap[i] + res.dram_bytes_weight[i] + res.dram_bytes_ofmap[i]
            ),
            "energy_pj": total_e,
        }
    )
    for p in ENERGY_PARTS:
        df[f"energy_{p}_pj"] = energy[p]
    return df


def _pe_label(hw: HardwareSpec) -> str:
    pe = hw.pe
    if pe.kind == "xnor":
        return f"xnor (V={pe.vector})"
    base = f"fp{pe.w_bits}" if pe.dtype == "float" else f"int{pe.w_bits}"
    if pe.dtype == "int" and pe.w_bits != pe.a_bits:
        base = f"w{pe.w_bits}a{pe.a_bits}"
    return base if pe.kind == "mac" else f"{pe.kind}-{base}"


def arithmetic_notes(wl: Workload, hw: HardwareSpec) -> tuple[str, ...]:
    """Layers whose arithmetic the PE does not match, grouped: they are costed as the PE's
    operation at the PE's precision (the hardware decides what an operation costs)."""
    groups: dict[str, list[str]] = {}
    pe = hw.pe
    for r in wl.rows:
        if r.kind != GEMM:
            continue
        if r.arith_kind != pe.kind:
            why = f"{r.arithmetic} layers on {_pe_label(hw)} PEs: costed as the PE's operation"
        elif r.dtype != pe.dtype or r.w_bits > pe.w_bits or r.a_bits > pe.a_bits:
            why = (
                f"{r.arithmetic} layers on {_pe_label(hw)} PEs: costed at the PE's "
                "precision (the model must be quantised to run as predicted)"
            )
        else:
            continue
        groups.setdefault(why, []).append(r.name)
    notes = []
    for why, names in groups.items():
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        notes.append(f"{len(names)} {why} ({shown})")
    return tuple(notes)


def predict_workload(
    wl: Workload, hw: HardwareSpec, platform: Platform, fidelity: str = "analytic"
) -> Estimate:
    """Cost ``wl`` on ``hw`` placed on ``platform`` (a batch of one)."""
    res = evaluate(wl, config_table([hw], platform), fidelity=fidelity)
    clock = hw.clock_mhz * 1e6
    layers = layer_table(wl, res, 0, clock)
    compute = int(layers["cycles"].sum())
    stall = int(layers["stall_cycles"].sum())
    cycles = compute + stall
    latency = cycles / clock
    breakdown = {p: float(res.energy[p][0].sum()) for p in ENERGY_PARTS}
    energy = sum(breakdown.values())
    macs = int(layers["macs"].sum())
    total = Totals(
        cycles=cycles,
        compute_cycles=compute,
        stall_cycles=stall,
        latency_s=latency,
        throughput_ips=1.0 / latency if latency > 0 else 0.0,
        gops=2.0 * macs / latency / 1e9 if latency > 0 else 0.0,
        energy_pj=energy,
        power_w=energy * 1e-12 / latency if latency > 0 else 0.0,
        edp_js=energy * 1e-12 * latency,
        macs=macs,
    )
    return Estimate(
        workload=wl.name,
        hw=hw,
        platform=platform.name,
        layers=layers,
        total=total,
        energy_breakdown=breakdown,
        area=None if platform.is_fpga else asic_area(hw, platform),
        resources=fpga_usage(hw, platform) if platform.is_fpga else None,
        notes=arithmetic_notes(wl, hw),
    )


def predict(
    graph: AccelGraph, hw: HardwareSpec, platform: Platform, fidelity: str = "analytic"
) -> Estimate:
    """The predictor's pure function: cost ``graph`` on ``hw`` placed on ``platform``.

    ``fidelity``: ``analytic`` (any array and dataflow, SCALE-Sim's cycle definition) or
    ``rtl`` (the whole core ``autochip build`` emits: ``core_model`` through ``core_batch``)."""
    if fidelity == "rtl":
        from autochip.predictor.core_estimate import predict_core

        return predict_core(graph, hw, platform)
    return predict_workload(workload_from_graph(graph), hw, platform, fidelity)

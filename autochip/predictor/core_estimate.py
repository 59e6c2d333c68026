"""``predict(..., fidelity="rtl")``: one design through the core model (a batch of one).

The per-layer table, totals, energy breakdown and FPGA resources / ASIC area of
:class:`~autochip.predictor.estimate.Estimate`, computed by
:func:`autochip.predictor.core_batch.evaluate_core` for the core ``autochip build`` emits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from autochip.errors import SpecError
from autochip.hw.platform import Platform
from autochip.hw.spec import HardwareSpec
from autochip.ir.graph import AccelGraph
from autochip.predictor.core_batch import (
    core_brams_batch,
    core_configs,
    core_workload,
    evaluate_core,
    why_infeasible,
)
from autochip.predictor.core_model import fmax_warning
from autochip.predictor.estimate import Estimate, Totals
from autochip.predictor.resources import FpgaUsage, asic_area

__all__ = ["predict_core"]


def predict_core(graph: AccelGraph, hw: HardwareSpec, platform: Platform) -> Estimate:
    """Cost ``graph`` on the core built from ``hw`` (``SpecError`` if it cannot run it)."""
    wl = core_workload(graph)
    cfg = core_configs([hw], f"{hw.name} (fidelity rtl: the core autochip build emits)")
    res = evaluate_core(wl, cfg, platform, tiled=True)  # feature maps tiled where needed
    if not res.feasible[0]:
        raise SpecError(f"{hw.name} (fidelity rtl)", why_infeasible(wl, cfg, 0, tiled=True))
    clock = hw.clock_mhz * 1e6
    cyc = res.cycles[0]
    macs = wl.macs
    arith = "int" + str(hw.pe.w_bits) if hw.pe.w_bits == hw.pe.a_bits else "mixed"
    pes = hw.rows * hw.cols
    layers = pd.DataFrame(
        {
            "name": list(wl.names),
            "op": list(wl.kinds),
            "arithmetic": [arith if not v else "vector" for v in wl.vector],
            "macs": macs,
            "cycles": cyc.astype(int),
            "stall_cycles": np.zeros(len(wl), dtype=int),
            "latency_s": cyc / clock,
            "utilization": macs / (cyc * pes),
            "mapping_efficiency": np.where(wl.vector, 0.0, macs / np.maximum(1, cyc * pes)),
            "fetch_cycles": res.fetch[0],
            "load_cycles": res.load[0],
            "compute_cycles": res.compute[0],
            "writeback_cycles": res.writeback[0],
            "control_cycles": res.control[0],
            "energy_pj": res.energy_pj[0],
        }
    )
    total_cycles = int(res.total_cycles[0])
    latency = total_cycles / clock
    energy = float(res.energy_pj[0].sum())
    static_pj = float(res.static_w[0]) * latency * 1e12
    total = Totals(
        cycles=total_cycles,
        compute_cycles=int(res.compute[0].sum()),
        stall_cycles=total_cycles - int(res.compute[0].sum()),
        latency_s=latency,
        throughput_ips=1.0 / latency,
        gops=2.0 * int(macs.sum()) / latency / 1e9,
        energy_pj=energy,
        power_w=energy * 1e-12 / latency,
        edp_js=energy * 1e-12 * latency,
        macs=int(macs.sum()),
    )
    resources = None
    warning = ""
    if platform.is_fpga:
        dev = platform.device
        assert dev is not None
        r = res.resources
        mem = core_brams_batch(cfg, dev.synth_target)
        bufs = {k: int(mem[k][0]) for k in ("ifmap", "weight", "ofmap", "params")}
        fmax = float(r["fmax_mhz"][0])
        if fmax == fmax and hw.clock_mhz > fmax:  # not NaN: the target has an Fmax model
            warning = fmax_warning(hw.clock_mhz, fmax, dev.synth_target)
        resources = FpgaUsage(
            device=dev.name,
            lut=int(r["lut"][0]),
            ff=int(r["ff"][0]),
            dsp=int(r["dsp"][0]),
            bram=int(r["bram"][0]),
            bram_buffers=bufs,
            available={"lut": dev.lut, "ff": dev.ff, "dsp": dev.dsp, "bram": dev.bram.count},
            array_model="autochip.predictor.core_model (whole core, Yosys-calibrated)",
        )
    return Estimate(
        workload=wl.name,
        hw=hw,
        platform=platform.name,
        layers=layers,
        total=total,
        energy_breakdown={"dynamic": energy - static_pj, "leakage": static_pj},
        area=None if platform.is_fpga else asic_area(hw, platform),
        resources=resources,
        notes=("fidelity rtl: the whole core autochip build emits (core_model), "
               "load/compute/write-back in sequence, so stall_cycles counts every non-compute "
               "phase",) + ((warning,) if warning else ()),
    )  # fmt: skip

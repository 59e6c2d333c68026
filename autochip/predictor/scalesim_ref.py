"""Run SCALE-Sim 3.0.0 itself (the reference peer) and read its reports back.

Used by the agreement tests, ``benchmarks/predictor_speed.py`` and
``scripts/validate_predictor.py``. SCALE-Sim is a development dependency; without it this
raises :class:`ToolError`.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from autochip.errors import ToolError

__all__ = ["ScaleSimLayer", "run_scalesim", "write_scalesim_config"]


@dataclass(frozen=True)
class ScaleSimLayer:
    """One row of SCALE-Sim's COMPUTE_REPORT and DETAILED_ACCESS_REPORT."""

    cycles: int
    stall_cycles: int
    utilization: float
    mapping_efficiency: float
    compute_utilization: float
    sram_ifmap_reads: int
    sram_filter_reads: int
    sram_ofmap_writes: int


def write_scalesim_config(
    path: Path,
    rows: int,
    cols: int,
    dataflow: str,
    sram_kb: tuple[int, int, int] = (64, 64, 64),
    bandwidth: int | None = None,
    run_name: str = "autochip_ref",
) -> None:
    """Write a complete SCALE-Sim 3.0.0 config (its wheel ships none)."""
    mode = "CALC" if bandwidth is None else "USER"
    bw = 10 if bandwidth is None else bandwidth
    path.write_text(
        f"""[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {sram_kb[0]}
FilterSramSzkB: {sram_kb[1]}
OfmapSramSzkB: {sram_kb[2]}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: {bw}
Dataflow: {dataflow}
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: {bw}
IfmapSRAMBankNum: 1
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: {bw}
FilterSRAMBankNum: 1
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: {mode}
UseRamulatorTrace: False
"""
    )


def _report(path: Path) -> list[list[str]]:
    with path.open() as fh:
        return [[c.strip() for c in row] for row in csv.reader(fh)][1:]


def run_scalesim(config: Path, topology: Path, gemm: bool = False) -> list[ScaleSimLayer]:
    """Run SCALE-Sim on ``config`` and ``topology``; one :class:`ScaleSimLayer` per layer."""
    try:
        from scalesim.scale_sim import scalesim
    except ImportError as exc:  # pragma: no cover - dev dependency
        raise ToolError(
            f"SCALE-Sim is not installed (pip install scalesim==3.0.0): {exc}"
        ) from None
    for p in (config, topology):
        if not p.is_file():
            raise ToolError(f"SCALE-Sim input '{p}' does not exist")
    with tempfile.TemporaryDirectory(prefix="autochip-scalesim-") as tmp:
        layout = Path(tmp) / "layout.csv"
        layout.write_text("Layer name,\n")
        out = Path(tmp) / "out"
        # SCALE-Sim opens its CSV inputs without closing them: silence those ResourceWarnings
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            sim = scalesim(
                save_disk_space=True,
                verbose=False,
                config=str(config),
                topology=str(topology),
                layout=str(layout),
                input_type_gemm=gemm,
            )
            sim.run_scale(top_path=str(out))
            del sim
            gc.collect()
        run_dir = next(p for p in out.iterdir() if p.is_dir())
        compute = _report(run_dir / "COMPUTE_REPORT.csv")
        detail = _report(run_dir / "DETAILED_ACCESS_REPORT.csv")
    layers = []
    for c, d in zip(compute, detail, strict=True):
        layers.append(
            ScaleSimLayer(
                cycles=int(float(c[2])),
                stall_cycles=int(float(c[3])),
                utilization=float(c[4]),
                mapping_efficiency=float(c[5]),
                compute_utilization=float(c[6]),
                sram_ifmap_reads=int(float(d[3])),
                sram_filter_reads=int(float(d[6])),
                sram_ofmap_writes=int(float(d[9])),
            )
        )
    return layers

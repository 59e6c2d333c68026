"""Validate the predictor against its authorities and print (or write) the validation table.

Runs, in this process: SCALE-Sim 3.0.0 on conv and GEMM topologies (os/ws/is, square and
non-square arrays, odd shapes and strides, CALC and USER bandwidth), the Timeloop exercise 01
and ZigZag 3.9.1 ``gemm_l1`` cases, and Yosys synthesis of emitted PE arrays against the
FPGA resource model. ``--write`` replaces the table in docs/predictor.md between the
``<!-- validation:begin -->`` / ``<!-- validation:end -->`` markers.

  .venv/bin/python scripts/validate_predictor.py [--write] [--no-yosys]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

from autochip.hw.platform import load_platform
from autochip.hw.spec import BufferSpec, DramSpec, HardwareSpec, PESpec
from autochip.predictor.batch import config_table, evaluate
from autochip.predictor.loopnest import LoopNest, Operand, evaluate_loopnest
from autochip.predictor.scalesim_io import read_scalesim_config, read_scalesim_topology
from autochip.predictor.scalesim_ref import run_scalesim, write_scalesim_config

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "predictor.md"
BEGIN, END = "<!-- validation:begin -->", "<!-- validation:end -->"
CONV = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
    "Num Filter, Strides,"
)
ODD = [
    "c1, 13, 11, 3, 3, 3, 10, 1,",
    "c2, 15, 9, 5, 3, 7, 5, 2,",
    "c3, 9, 9, 1, 1, 17, 33, 1,",
    "c4, 12, 10, 4, 4, 5, 3, 3,",
    "DP5, 8, 8, 3, 3, 3, 1, 1,",
    "fc6, 1, 1, 1, 1, 40, 11, 1,",
]
CNN = [  # a CIFAR-sized network: padding folded into the ifmap, as SCALE-Sim expects
    "conv1, 34, 34, 3, 3, 3, 32, 1,",
    "conv2, 34, 34, 3, 3, 32, 32, 2,",
    "conv3, 18, 18, 3, 3, 32, 64, 1,",
    "conv4, 16, 16, 1, 1, 64, 128, 2,",
    "DPconv5, 10, 10, 3, 3, 16, 1, 1,",
    "fc, 1, 1, 1, 1, 2048, 10, 1,",
]
GEMM = ["g1, 17, 9, 23,", "g2, 64, 31, 70,", "g3, 1, 400, 64,"]
# (case, rows, cols, dataflow, topology, gemm, USER bandwidth or None = CALC, SRAM kB)
SCALESIM_CASES = [
    (
        "alexnet_part (REFERENCE golden)",
        32,
        32,
        "ws",
        ["Conv1, 224, 224, 11, 11, 3, 96, 4,"],
        False,
        None,
        64,
    ),
    ("odd layers", 8, 8, "os", ODD, False, None, 64),
    ("odd layers", 4, 7, "ws", ODD, False, None, 64),
    ("odd layers", 6, 5, "is", ODD, False, None, 64),
    ("small CNN", 16, 16, "os", CNN, False, None, 64),
    ("small CNN", 8, 32, "ws", CNN, False, None, 64),
    ("small CNN", 12, 8, "is", CNN, False, None, 64),
    ("GEMM", 5, 3, "os", GEMM, True, None, 64),
    ("GEMM", 16, 8, "ws", GEMM, True, None, 64),
    ("GEMM", 3, 9, "is", GEMM, True, None, 64),
    ("small CNN, USER bandwidth", 16, 16, "os", CNN, False, 10, 64),
    ("small CNN, USER bandwidth", 16, 16, "ws", CNN, False, 10, 64),
    ("odd layers, starved DRAM", 5, 8, "ws", ODD[:4], False, 2, 1),
    ("odd layers, starved DRAM", 8, 4, "os", ODD[:4], False, 4, 1),
]


def pct(a: float, b: float) -> float:
    """Relative difference in percent; float round-off (< 1e-9 %) shows as 0."""
    d = 100.0 * abs(a - b) / max(abs(b), 1e-12)
    return 0.0 if d < 1e-9 else d


def scalesim_rows(tmp: Path) -> list[str]:
    plat = load_platform("asic-45nm")
    out = []
    for i, (case, r, c, df, layers, gemm, bw, kb) in enumerate(SCALESIM_CASES):
        cfg, topo = tmp / f"c{i}.cfg", tmp / f"t{i}.csv"
        write_scalesim_config(cfg, r, c, df, (kb, kb, kb), bw)
        topo.write_text("\n".join(["Layer, M, N, K," if gemm else CONV, *layers]) + "\n")
        t0 = time.perf_counter()
        ref = run_scalesim(cfg, topo, gemm=gemm)
        t_ref = time.perf_counter() - t0
        sim_cfg = read_scalesim_config(cfg)
        res = evaluate(
            read_scalesim_topology(topo),
            config_table([sim_cfg.hw], plat),
            np.asarray([sim_cfg.ports]),
        )
        cyc = max(pct(res.cycles[0, j], s.cycles - s.stall_cycles) for j, s in enumerate(ref))
        meff = max(
            pct(100 * res.mapping_efficiency[0, j], s.mapping_efficiency) for j, s in enumerate(ref)
        )
        sram = max(
            max(
                pct(res.sram_reads_ifmap[0, j], s.sram_ifmap_reads),
                pct(res.sram_reads_weight[0, j], s.sram_filter_reads),
                pct(res.sram_writes_ofmap[0, j], s.sram_ofmap_writes),
            )
            for j, s in enumerate(ref)
        )
        util = (
            max(
                pct(100 * res.utilization[0, j], s.utilization)
                for j, s in enumerate(ref)
                if s.stall_cycles == 0 and res.stall_cycles[0, j] == 0
            )
            if bw is None
            else None
        )
        total_ref = sum(s.cycles - s.stall_cycles for s in ref)
        stall_ref = sum(s.stall_cycles for s in ref)
        stall_mine = int(res.stall_cycles[0].sum())
        mode = "CALC" if bw is None else f"USER {bw} w/cyc, {kb} kB"
        util_s = f"{util:.2g} %" if util is not None else "n/a (stalls)"
        out.append(
            f"| SCALE-Sim 3.0.0 | {case}: {len(ref)} layers, {r}x{c} {df}, {mode} | "
            f"{total_ref:,} compute cycles; max per-layer error {cyc:.2g} % | "
            f"mapping eff. {meff:.2g} %, utilisation {util_s}, SRAM accesses {sram:.2g} % | "
            f"stalls: SCALE-Sim {stall_ref:,}, autochip {stall_mine:,} | {t_ref:.2f} s |"
        )
    return out


def timeloop_row() -> str:
    ops = (
        Operand("W", (("R",),), 8, "b", 8),
        Operand("I", (("P", "R"),), 8, "b", 8),
        Operand("O", (("P",),), 8, "b", 8, is_output=True),
    )
    r = evaluate_loopnest(
        LoopNest(
            {"R": 3, "P": 16},
            (),
            (("R", 3), ("P", 16)),
            ops,
            {"b": 32},
            1.0,
            1.0,
            1.0,
            array_holds_operands=False,
        )
    )
    return (
        "| Timeloop ex. 01 (published) | 1-D conv R=3, P=16, 1 MAC, output-stationary | "
        f"48 cycles / {r.cycles} cycles; utilisation 100 % / {100 * r.utilization:.0f} % | "
        f"W reads/fills 48/3 vs {r.elementwise_reads['W']}/{r.fills['W']}, I 48/18 vs "
        f"{r.elementwise_reads['I']}/{r.fills['I']}, O updates 48 vs {r.writes['O']} | "
        "energy: no published figure | analytic |"
    )


def zigzag_row(tmp: Path) -> str:
    ops = (
        Operand("I", (("D0",), ("D2",)), 8, "p1", 512),
        Operand("W", (("D2",), ("D1",)), 8, "p2", 512),
        Operand("O", (("D0",), ("D1",)), 32, "p3", 2048, is_output=True),
    )
    mine = evaluate_loopnest(
        LoopNest(
            {"D0": 128, "D1": 128, "D2": 128},
            (("D0", 8), ("D2", 8), ("D1", 8)),
            (("D1", 16), ("D2", 16), ("D0", 16)),
            ops,
            {"p1": 512, "p2": 512, "p3": 2048},
            0.04,
            22.9,
            52.01,
            True,
            0.02,
        )
    )
    try:
        from zigzag.api import get_hardware_performance_zigzag

        wl = tmp / "gemm.yaml"
        wl.write_text(
            "- id: 0\n  operator_type: Gemm\n  equation: O[d0][d1]+=I[d0][d2]*W[d2][d1]\n"
            "  dimension_relations: []\n  loop_dims: [D0, D1, D2]\n"
            "  loop_sizes: [128, 128, 128]\n"
            "  operand_precision: {W: 8, I: 8, O: 32, O_final: 32}\n"
            "  operand_source: {I: 0, W: 0}\n"
        )
        inputs = resources.files("zigzag") / "inputs"
        logging.disable(logging.WARNING)
        t0 = time.perf_counter()
        e, lat, _ = get_hardware_performance_zigzag(
            str(wl),
            str(inputs / "hardware" / "gemm_l1.yaml"),
            str(inputs / "mapping" / "gemm_l1.yaml"),
            lpf_limit=3,
            dump_folder=str(tmp / "zz"),
            pickle_filename=str(tmp / "zz" / "c.pickle"),
        )
        t_zz = f"{time.perf_counter() - t0:.1f} s"
        logging.disable(logging.NOTSET)
    except ImportError:
        e, lat, t_zz = 511349.76, 8191.0, "published"
    return (
        "| ZigZag 3.9.1 gemm_l1 (run) | 128^3 GEMM, 8x8x8 MACs, 4 MB L1 | "
        f"{lat:,.0f} / {mine.cycles:,} cycles ({pct(mine.cycles, lat):.2g} %) | "
        f"L1 reads I/W/O {mine.reads['I']}/{mine.reads['W']}/{mine.reads['O']}, writes O "
        f"{mine.writes['O']} | energy {e:,.2f} / {mine.energy:,.2f} pJ "
        f"({pct(mine.energy, e):.2g} %) | {t_zz} |"
    )


def yosys_rows(tmp: Path) -> list[str]:
    try:
        from autochip.builder.emit import emit_design
        from autochip.builder.synth import synth_design
        from autochip.hw.fpga_model import estimate_array_resources
    except ImportError as exc:
        return [f"| Yosys | not run: {exc} | | | | |"]
    out = []
    # array shapes and widths outside the RTL library's calibration set (fpga_array_synth.csv)
    for r, c, bits, acc in ((5, 3, 8, 32), (2, 6, 8, 24), (6, 2, 4, 16)):
        hw = HardwareSpec(
            f"v{r}x{c}w{bits}",
            PESpec("mac", "int", bits, bits, acc),
            r,
            c,
            "os",
            BufferSpec(4096),
            BufferSpec(4096),
            BufferSpec(4096),
            DramSpec(4.0),
        )
        try:
            est = estimate_array_resources(hw, "xilinx")
            d = tmp / hw.name
            emit_design(hw, d)
            t0 = time.perf_counter()
            syn = synth_design(d, "xilinx", fmax=False)
            t_syn = time.perf_counter() - t0
        except Exception as exc:  # any tool failure is reported in the table
            out.append(
                f"| Yosys synth_xilinx | {r}x{c} int{bits} acc{acc} os PE array | not run: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]} | | | |"
            )
            continue
        out.append(
            f"| Yosys synth_xilinx | {r}x{c} int{bits} acc{acc} os PE array (not in the "
            f"calibration set) | LUT {syn.lut} / {est.lut} "
            f"({pct(est.lut, syn.lut):.2g} %), FF {syn.ff} / {est.ff} "
            f"({pct(est.ff, syn.ff):.2g} %) | DSP {syn.dsp_blocks} / {est.dsp} | "
            f"fpga_model (RTL library) | {t_syn:.1f} s |"
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="update docs/predictor.md")
    ap.add_argument("--no-yosys", action="store_true", help="skip the Yosys rows")
    args = ap.parse_args()
    header = [
        "| authority | case | cycles (authority / autochip) | accesses | energy / stalls | "
        "authority run time |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="autochip-validate-") as t:
        tmp = Path(t)
        rows = [*scalesim_rows(tmp), timeloop_row(), zigzag_row(tmp)]
        if not args.no_yosys:
            rows += yosys_rows(tmp)
    table = "\n".join(header + rows)
    print(table)
    if args.write:
        text = DOC.read_text()
        if BEGIN not in text or END not in text:
            print(f"{DOC}: markers {BEGIN} / {END} not found", file=sys.stderr)
            return 1
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

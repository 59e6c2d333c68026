"""SCALE-Sim compatibility: its config (``.cfg``) and topology (conv or GEMM ``.csv``) formats.

Read the same files SCALE-Sim 3.0.0 reads and turn them into a :class:`HardwareSpec` and a
:class:`Workload`, so that ``autochip predict --scalesim-config X.cfg --scalesim-topology Y.csv``
gives SCALE-Sim's per-layer cycles without running its cycle-by-cycle simulation.

Conventions kept from SCALE-Sim: one word = one byte; no padding (ofmap = ceil((H - R + s) / s));
a layer whose name contains ``DP`` is depthwise and is split into one layer per channel named
``<name>Channel_<i>``; in a GEMM topology a row ``name, M, N, K`` is an M x K by K x N product.
``InterfaceBandwidth: CALC`` means SCALE-Sim picks the bandwidth, so no stalls; ``USER`` uses the
first ``Bandwidth`` value (words per cycle) as the DRAM bandwidth.
"""

from __future__ import annotations

import configparser
import csv
import math
from dataclasses import dataclass
from pathlib import Path

from autochip.errors import SpecError
from autochip.hw.spec import DATAFLOWS, BufferSpec, DramSpec, HardwareSpec, PESpec
from autochip.predictor.workload import GEMM, LayerRow, Workload, workload_from_rows

__all__ = ["ScaleSimConfig", "read_scalesim_config", "read_scalesim_topology"]


@dataclass(frozen=True)
class ScaleSimConfig:
    """``ports``: the backing bandwidth (words per cycle) of the ifmap and filter SRAMs, which
    SCALE-Sim 3.0.0 takes from ``[layout]`` IfmapSRAMBankBandwidth and FilterSRAMBankBandwidth
    in USER mode (the first ``Bandwidth`` goes to the ofmap SRAM); infinite in CALC mode."""

    run_name: str
    hw: HardwareSpec
    user_bandwidth: bool
    ports: tuple[float, float] = (math.inf, math.inf)


_ARCH_INT = ("ArrayHeight", "ArrayWidth", "IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB")


def read_scalesim_config(path: str | Path) -> ScaleSimConfig:
    """Parse a SCALE-Sim config; every problem is reported in one :class:`SpecError`."""
    p = Path(path)
    src = str(p)
    if not p.is_file():
        raise SpecError(src, [f"expected a SCALE-Sim config file, found no file at '{p}'"])
    cp = configparser.ConfigParser()
    try:
        cp.read_string(p.read_text(), source=src)
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise SpecError(src, [f"not a valid INI-style SCALE-Sim config: {exc}"]) from None
    problems: list[str] = []
    sec = "architecture_presets"
    if not cp.has_section(sec):
        raise SpecError(src, [f"expected a [{sec}] section, found sections {cp.sections()}"])
    vals: dict[str, int] = {}
    for key in _ARCH_INT:
        raw = cp.get(sec, key, fallback=None)
        if raw is None:
            problems.append(f"[{sec}] {key}: required, not given")
            continue
        try:
            vals[key] = int(raw.strip())
        except ValueError:
            problems.append(f"[{sec}] {key}: expected a positive integer, found {raw.strip()!r}")
            continue
        if vals[key] < 1:
            problems.append(f"[{sec}] {key}: expected a positive integer, found {vals[key]}")
    df = cp.get(sec, "Dataflow", fallback="").strip()
    if df not in DATAFLOWS:
        problems.append(f"[{sec}] Dataflow: expected one of {list(DATAFLOWS)}, found {df!r}")
    mode = cp.get("run_presets", "InterfaceBandwidth", fallback="CALC").strip()
    if mode not in ("CALC", "USER"):
        problems.append(f"[run_presets] InterfaceBandwidth: expected CALC or USER, found {mode!r}")
    dram_bw = math.inf
    ports = (math.inf, math.inf)
    if mode == "USER":
        raw_bw = cp.get(sec, "Bandwidth", fallback="").strip()
        try:
            bws = [float(x) for x in raw_bw.split(",") if x.strip()]
        except ValueError:
            bws = []
        if not bws or min(bws) <= 0:
            problems.append(
                f"[{sec}] Bandwidth: InterfaceBandwidth is USER, so expected positive words per "
                f"cycle, found {raw_bw!r}"
            )
        else:
            dram_bw = bws[0]
            bank = []
            for key in ("IfmapSRAMBankBandwidth", "FilterSRAMBankBandwidth"):
                raw = cp.get("layout", key, fallback=str(bws[0])).strip()
                try:
                    bank.append(float(raw))
                except ValueError:
                    problems.append(f"[layout] {key}: expected words per cycle, found {raw!r}")
                    bank.append(1.0)
                if bank[-1] <= 0:
                    problems.append(f"[layout] {key}: expected a positive value, found {raw!r}")
            ports = (bank[0], bank[1])
    if problems:
        raise SpecError(src, problems)
    run_name = cp.get("general", "run_name", fallback=p.stem).strip()

    def buf(kb: int) -> BufferSpec:
        return BufferSpec(size_bytes=kb * 1024, banks=1, bandwidth=math.inf)

    hw = HardwareSpec(
        name=run_name,
        pe=PESpec(kind="mac", dtype="int", w_bits=8, a_bits=8, acc_bits=8),
        rows=vals["ArrayHeight"],
        cols=vals["ArrayWidth"],
        dataflow=df,
        ifmap=buf(vals["IfmapSramSzkB"]),
        weight=buf(vals["FilterSramSzkB"]),
        ofmap=buf(vals["OfmapSramSzkB"]),
        dram=DramSpec(bandwidth=dram_bw),
    )
    return ScaleSimConfig(run_name=run_name, hw=hw, user_bandwidth=mode == "USER", ports=ports)


def _fields(line: str) -> list[str]:
    cells = [c.strip() for c in next(csv.reader([line]))]
    while cells and cells[-1] == "":
        cells.pop()  # SCALE-Sim rows end with a comma
    return cells


def _ints(cells: list[str], names: tuple[str, ...], where: str, problems: list[str]) -> list[int]:
    out = []
    for name, cell in zip(names, cells, strict=False):
        try:
            v = int(cell)
        except ValueError:
            problems.append(f"{where}: {name}: expected a positive integer, found {cell!r}")
            v = 1
        if v < 1:
            problems.append(f"{where}: {name}: expected a positive integer, found {v}")
            v = 1
        out.append(v)
    return out


_CONV = (
    "IFMAP height",
    "IFMAP width",
    "Filter height",
    "Filter width",
    "Channels",
    "Num filter",
    "Strides",
)
_GEMM = ("M", "N", "K")


def _is_gemm_header(header: list[str]) -> bool:
    return [h.strip().lower() for h in header[1:4]] == ["m", "n", "k"] and len(header) <= 5


def read_scalesim_topology(path: str | Path, gemm: bool | None = None) -> Workload:
    """Parse a SCALE-Sim conv topology or GEMM (``name, M, N, K``) file into a workload.

    ``gemm=None`` detects the format from the header row (``..., M, N, K``).
    """
    p = Path(path)
    src = str(p)
    if not p.is_file():
        raise SpecError(src, [f"expected a SCALE-Sim topology CSV, found no file at '{p}'"])
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise SpecError(
            src, [f"expected a UTF-8 CSV file, found bytes that are not: {exc}"]
        ) from None
    numbered = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip()]
    if not numbered:
        raise SpecError(src, ["expected a header row and at least one layer, found an empty file"])
    header = _fields(numbered[0][1])
    as_gemm = _is_gemm_header(header) if gemm is None else gemm
    rows: list[LayerRow] = []
    problems: list[str] = []
    want = _GEMM if as_gemm else _CONV
    for lineno, line in numbered[1:]:
        cells = _fields(line)
        where = f"line {lineno}"
        if len(cells) < 1 + len(want):
            problems.append(
                f"{where}: expected {1 + len(want)} fields (layer name, {', '.join(want)}), "
                f"found {len(cells)}: {line.strip()!r}"
            )
            continue
        name = cells[0]
        before = len(problems)
        v = _ints(cells[1 : 1 + len(want)], want, f"{where} ({name})", problems)
        if len(problems) > before:
            continue
        if as_gemm:
            m, n, k = v
            rows.append(
                LayerRow(
                    name=name,
                    op="gemm",
                    kind=GEMM,
                    M=m,
                    F=n,
                    Kw=k,
                    G=1,
                    in_elems=m * k,
                    w_elems=k * n,
                    out_elems=m * n,
                    w_bits=8,
                    a_bits=8,
                    arithmetic="int8",
                    dtype="int",
                )
            )
            continue
        h, w, r, s, c, nf, st = v
        if r > h or s > w:
            problems.append(
                f"{where} ({name}): filter {r}x{s} is larger than the ifmap {h}x{w}; "
                "SCALE-Sim topologies carry no padding, so the ifmap must include it"
            )
            continue
        per_layer = (
            [(name, c)] if "DP" not in name else [(f"{name}Channel_{i}", 1) for i in range(c)]
        )
        for lname, ch in per_layer:
            ph = math.ceil((h - r + st) / st)
            pw = math.ceil((w - s + st) / st)
            rows.append(
                LayerRow(
                    name=lname,
                    op="conv2d",
                    kind=GEMM,
                    M=ph * pw,
                    F=nf,
                    Kw=r * s * ch,
                    G=1,
                    in_elems=h * w * ch,
                    w_elems=r * s * ch * nf,
                    out_elems=ph * pw * nf,
                    w_bits=8,
                    a_bits=8,
                    arithmetic="int8",
                    dtype="int",
                )
            )
    if problems:
        raise SpecError(src, problems)
    if not rows:
        raise SpecError(src, ["expected at least one layer row after the header, found none"])
    return workload_from_rows(p.stem, rows)

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

from autochip._safeio import name_problem, safe_name
from autochip.errors import SpecError
from autochip.hw.spec import DATAFLOWS, MAX_ARRAY_DIM, BufferSpec, DramSpec, HardwareSpec, PESpec
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
# Upper bounds (named in the messages): files larger than these are refused before any work.
MAX_FILE_BYTES = 1 << 24  # 16 MiB per config or topology file
MAX_LAYERS = 100_000  # layer rows after depthwise layers are split per channel
MAX_DIM = 1 << 20  # any one topology dimension (ifmap, filter, channels, filters, M, N, K)
MAX_LAYER_MACS = 1 << 50  # multiply-accumulates of one layer (int64 cycle counts stay exact)
MAX_SRAM_KB = 1 << 20  # 1 GiB per SRAM
MAX_WORDS_PER_CYCLE = float(1 << 20)  # bandwidths
MAX_PROBLEMS = 50  # problems reported (the rest are not listed)
MAX_NAME_CHARS = 200  # layer names longer than this are cut
_LIMITS = {"ArrayHeight": MAX_ARRAY_DIM, "ArrayWidth": MAX_ARRAY_DIM}


def _read_text(p: Path, what: str) -> str:
    src = str(p)
    if not p.is_file():
        raise SpecError(src, [f"expected {what}, found no file at '{p}'"])
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SpecError(
            src, [f"expected at most {MAX_FILE_BYTES} bytes (MAX_FILE_BYTES), found {size}"]
        )
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(src, [f"expected UTF-8 text, found bytes that are not: {exc}"]) from None
    except OSError as exc:
        raise SpecError(src, [f"expected a readable file, found: {exc.strerror}"]) from None


def _words(raw: str) -> float:
    v = float(raw)
    if not math.isfinite(v) or v <= 0 or v > MAX_WORDS_PER_CYCLE:
        raise ValueError(raw)
    return v


def read_scalesim_config(path: str | Path) -> ScaleSimConfig:
    """Parse a SCALE-Sim config; every problem is reported in one :class:`SpecError`."""
    p = Path(path)
    src = str(p)
    text = _read_text(p, "a SCALE-Sim config file")
    cp = configparser.ConfigParser(interpolation=None)
    try:
        cp.read_string(text, source=src)
    except configparser.Error as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise SpecError(src, [f"not a valid INI-style SCALE-Sim config: {first}"]) from None
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
        limit = _LIMITS.get(key, MAX_SRAM_KB)
        if vals[key] > limit:
            name = "MAX_ARRAY_DIM" if key in _LIMITS else "MAX_SRAM_KB"
            problems.append(f"[{sec}] {key}: expected at most {limit} ({name}), found {vals[key]}")
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
            bws = [_words(x) for x in raw_bw.split(",") if x.strip()]
        except ValueError:
            bws = []
        if not bws:
            problems.append(
                f"[{sec}] Bandwidth: InterfaceBandwidth is USER, so expected positive finite words "
                f"per cycle (at most MAX_WORDS_PER_CYCLE={MAX_WORDS_PER_CYCLE:g}), "
                f"found {raw_bw[:80]!r}"
            )
        else:
            dram_bw = bws[0]
            bank = []
            for key in ("IfmapSRAMBankBandwidth", "FilterSRAMBankBandwidth"):
                raw = cp.get("layout", key, fallback=str(bws[0])).strip()
                try:
                    bank.append(_words(raw))
                except ValueError:
                    problems.append(
                        f"[layout] {key}: expected positive finite words per cycle (at most "
                        f"MAX_WORDS_PER_CYCLE={MAX_WORDS_PER_CYCLE:g}), found {raw[:80]!r}"
                    )
                    bank.append(1.0)
            ports = (bank[0], bank[1])
    if problems:
        raise SpecError(src, problems)
    run_name = cp.get("general", "run_name", fallback=p.stem).strip()[:MAX_NAME_CHARS]
    # SCALE-Sim names its output folder after run_name; the hardware spec's name (which may
    # reach generated files) is its safe form.
    spec_name = run_name if name_problem(run_name) is None else safe_name(run_name or "run")

    def buf(kb: int) -> BufferSpec:
        return BufferSpec(size_bytes=kb * 1024, banks=1, bandwidth=math.inf)

    hw = HardwareSpec(
        name=spec_name,
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
            v = int(cell) if len(cell) <= 20 else -1
        except ValueError:
            problems.append(f"{where}: {name}: expected a positive integer, found {cell[:40]!r}")
            v = 1
        if v < 1:
            problems.append(f"{where}: {name}: expected a positive integer, found {cell[:40]!r}")
            v = 1
        elif v > MAX_DIM:
            problems.append(f"{where}: {name}: expected at most {MAX_DIM} (MAX_DIM), found {v}")
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
    lines = _read_text(p, "a SCALE-Sim topology CSV").splitlines()
    numbered = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip()]
    if not numbered:
        raise SpecError(src, ["expected a header row and at least one layer, found an empty file"])
    if len(numbered) > MAX_LAYERS + 1:
        raise SpecError(
            src,
            [f"expected at most {MAX_LAYERS} layer rows (MAX_LAYERS), found {len(numbered) - 1}"],
        )
    try:
        header = _fields(numbered[0][1])
    except csv.Error as exc:
        raise SpecError(src, [f"line {numbered[0][0]}: not a CSV row: {exc}"]) from None
    as_gemm = _is_gemm_header(header) if gemm is None else gemm
    rows: list[LayerRow] = []
    problems: list[str] = []
    want = _GEMM if as_gemm else _CONV
    for lineno, line in numbered[1:]:
        where = f"line {lineno}"
        if len(problems) >= MAX_PROBLEMS:
            break
        try:
            cells = _fields(line)
        except csv.Error as exc:
            problems.append(f"{where}: not a CSV row: {exc}")
            continue
        if len(cells) < 1 + len(want):
            problems.append(
                f"{where}: expected {1 + len(want)} fields (layer name, {', '.join(want)}), "
                f"found {len(cells)}: {line.strip()[:80]!r}"
            )
            continue
        name = cells[0][:MAX_NAME_CHARS]
        before = len(problems)
        v = _ints(cells[1 : 1 + len(want)], want, f"{where} ({name})", problems)
        if len(problems) > before:
            continue
        macs = v[0] * v[1] * v[2] if as_gemm else v[0] * v[1] * v[2] * v[3] * v[4] * v[5]
        if macs > MAX_LAYER_MACS:
            problems.append(
                f"{where} ({name}): expected at most {MAX_LAYER_MACS} MACs per layer "
                f"(MAX_LAYER_MACS), found {macs}"
            )
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
        if len(rows) + (c if "DP" in name else 1) > MAX_LAYERS:
            problems.append(
                f"{where} ({name}): expected at most {MAX_LAYERS} layers (MAX_LAYERS; a DP layer "
                f"counts one per channel), found more"
            )
            break
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

"""Co-design on Fashion-MNIST: the runs and tables of docs/codesign.md.

  python scripts/codesign_results.py [--only KEY,KEY] [--write] [--build KEY,KEY]

Each run is one `autochip codesign` command (printed, and in the doc); its JSON is kept in
docs/codesign_runs/KEY.json, so --write alone re-renders the doc from the kept records and
--only KEY reruns those (the training cache makes a rerun cheap). --build KEY,KEY also builds
and simulates those runs' chosen designs (`--build`: Verilator, bit-exact on test images).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "codesign.md"
RUNS = ROOT / "docs" / "codesign_runs"
SPACES = ROOT / "examples" / "codesign"

# ResNet-8 trains about 20x slower per image than LeNet-5 (9.3 M MACs): two worker processes
# of one torch thread each (until 2026-12-03 its candidates fine-tuned on 5,000 of the training
# images, when the integer reference's evaluation cost about as much as the training)
R8_ARGS = ["--epochs", "1,3", "--workers", "2", "--threads", "1"]
BITS_ARGS = ["--epochs", "12,24", "--eta", "2", "--workers", "2", "--threads", "1"]
# (model checkpoint, platform, budget, space file, extra arguments). The budgets cap the DSPs
# (and LUTs) below the whole device, where the array size is what the budget buys.
SETUPS: dict[str, tuple[str, str, str, str, list[str]]] = {
    "lenet5_pynq": ("models/lenet5_fashion.fp32.pt", "pynq-z2", "dsp=40",
                    "lenet5.yaml", ["--epochs", "1,3"]),
    "lenet5_ultra96": ("models/lenet5_fashion.fp32.pt", "ultra96", "lut=30000,dsp=60",
                       "lenet5.yaml", ["--epochs", "1,3"]),
    # widths whose PEs need no DSP, with long fine-tuning (rung 1 of 12 epochs, the best half
    # and the reference to 24)
    "lenet5_bits": ("models/lenet5_fashion.fp32.pt", "pynq-z2", "dsp=40", "lenet5_bits.yaml",
                    BITS_ARGS),
    # the same trainings (the cache is shared) on the second platform
    "lenet5_bits_ultra96": ("models/lenet5_fashion.fp32.pt", "ultra96", "lut=30000,dsp=60",
                            "lenet5_bits.yaml", BITS_ARGS),
    "resnet8_pynq": ("models/resnet8_fashion.fp32.pt", "pynq-z2", "dsp=100",
                     "resnet8.yaml", R8_ARGS),
    "resnet8_ultra96": ("models/resnet8_fashion.fp32.pt", "ultra96", "lut=40000,dsp=120",
                        "resnet8.yaml", R8_ARGS),
}  # fmt: skip


def command(key: str, out: Path, build: bool) -> list[str]:
    model, plat, budget, space, extra = SETUPS[key]
    cmd = ["autochip", "codesign", model, "--data", "fashion-mnist", "--platform", plat,
           "--budget", budget, "--space", f"examples/codesign/{space}", *extra,
           "--out", str(out), "--json"]  # fmt: skip
    return cmd + (["--build"] if build else [])


def run(key: str, build: bool) -> dict[str, Any]:
    out = ROOT / "build" / "codesign" / key
    cmd = command(key, out.relative_to(ROOT), build)
    print("$ " + shlex.join(cmd), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    exe = [sys.executable, "-m", "autochip", *cmd[1:]]
    res = subprocess.run(exe, cwd=ROOT, stdout=subprocess.PIPE, check=True, text=True)
    rec: dict[str, Any] = json.loads(res.stdout)
    rec["command"] = shlex.join(cmd)
    rec["wall_s"] = time.perf_counter() - t0
    RUNS.mkdir(parents=True, exist_ok=True)
    (RUNS / f"{key}.json").write_text(json.dumps(_slim(rec), indent=1))
    return rec


def _slim(rec: dict[str, Any]) -> dict[str, Any]:
    """The record without machine-local paths (cache folders) of every point."""
    drop = ("checkpoint", "integer_model")

    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items() if k not in drop}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    out: dict[str, Any] = clean(rec)
    return out


def _res(p: dict[str, Any]) -> str:
    r = p.get("resources")
    if r is None:
        return f"{p['area_mm2']:.3f} mm²"
    return f"{r['lut']:,} / {r['dsp']} / {r['bram']}"


def _row(p: dict[str, Any], mark: str = "") -> str:
    a = p["hw"]["array"]
    return (f"| {mark}{p['label']} | {p['epochs']} | {100 * p['accuracy']:.2f} | "
            f"{p['macs']:,} | {a['rows']}x{a['cols']} | {p['latency_s'] * 1e6:,.1f} | "
            f"{p['energy_j'] * 1e6:,.2f} | {_res(p)} |")  # fmt: skip


def render(records: dict[str, dict[str, Any]]) -> str:
    lines = []
    for key, rec in records.items():
        ch, ref = rec["chosen"], rec.get("reference")
        lines += [
            f"### `{key}`: {rec['model']} on {rec['platform']}, budget `{rec['budget']}`",
            "",
            f"`{rec['command']}`",
            "",
            f"{rec['candidates']} candidates, rungs {rec['rungs']} epochs (eta {rec['eta']}), "
            f"{rec['trainings']} trainings run (the rest from the cache), "
            f"{rec['seconds'] / 60:.1f} min.",
            "",
            "| design | epochs | test accuracy % | MACs | array | latency µs | energy µJ | "
            "LUT / DSP / BRAM |",
            "|---|---|---|---|---|---|---|---|",
        ]
        if ref is not None:
            lines.append(_row(ref, "reference: "))
        lines.append(_row(ch, "**chosen**: "))
        if ref is not None:
            lines += [
                "",
                f"Chosen vs the int8 dense network on its own best core: latency "
                f"**{rec['latency_ratio']:.2f}x** lower, energy **{rec['energy_ratio']:.2f}x** "
                f"lower, accuracy {-rec['accuracy_loss_points']:+.2f} points "
                f"(allowed: -{100 * rec['max_loss']:.1f}).",
            ]
        b = rec.get("build")
        if b is not None:
            s = b["sim"]
            lines += ["", f"Built and simulated (`--build`, {b['images']} test images): "
                      f"bit-exact {s.get('bit_exact')}, "
                      f"{s.get('cycles_total', '?')} cycles measured, "
                      f"{s.get('cycles_predicted_total', '?')} predicted."]  # fmt: skip
        lines += ["", "Every candidate at its highest rung (its best core for the objective):",
                  "", "| candidate | epochs | val % | test % | MACs | array | latency µs |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for c in sorted(rec["candidates_measured"], key=lambda c: -c["accuracy"]):
            if "chosen" in c:
                p = c["chosen"]
                a = p["hw"]["array"]
                lines.append(f"| {c['label']} | {c['epochs']} | {100 * c['accuracy_val']:.2f} | "
                             f"{100 * c['accuracy']:.2f} | {c['macs']:,} | {a['rows']}x{a['cols']} "
                             f"| {p['latency_s'] * 1e6:,.1f} |")  # fmt: skip
            else:
                lines.append(f"| {c['label']} | {c['epochs']} | | {100 * c['accuracy']:.2f} | "
                             f"{c['macs']:,} | — | {c['error'][:80]} |")  # fmt: skip
        lines += ["", f"Joint front: {len(rec['front'])} designs (first 12 by accuracy):", "",
                  "| design | epochs | test accuracy % | MACs | array | latency µs | energy µJ | "
                  "LUT / DSP / BRAM |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        lines += [_row(p) for p in rec["front"][:12]]
        lines.append("")
    return "\n".join(lines)


def write(records: dict[str, dict[str, Any]]) -> None:
    text = DOC.read_text()
    begin, end = "<!-- RESULTS:BEGIN (scripts/codesign_results.py) -->", "<!-- RESULTS:END -->"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    DOC.write_text(head + begin + "\n" + render(records) + "\n" + end + tail)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated keys to (re)run: " + ", ".join(SETUPS))
    ap.add_argument("--build", metavar="KEY[,KEY]",
                    help="also build and simulate these keys' chosen designs")  # fmt: skip
    ap.add_argument("--write", action="store_true", help="render docs/codesign.md")
    args = ap.parse_args()
    keys = args.only.split(",") if args.only else []
    builds = args.build.split(",") if args.build else []
    for k in keys + builds:
        if k not in SETUPS:
            ap.error(f"unknown key {k!r}: expected one of {list(SETUPS)}")
    for k in keys:
        run(k, build=k in builds)
    for k in builds:
        if k not in keys:
            run(k, build=True)
    records = {k: json.loads((RUNS / f"{k}.json").read_text()) for k in SETUPS
               if (RUNS / f"{k}.json").is_file()}  # fmt: skip
    print(render(records))
    if args.write:
        write(records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

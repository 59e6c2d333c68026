"""Re-run the digits compression table of docs/compression.md from real CLI runs.

    .venv/bin/python scripts/compression_results.py [--out DIR] [--doc docs/compression.md]

Each row is one ``autochip compress`` command (shown in the table); the script collects their
``--json`` output and rewrites the block between the RESULTS markers of the document.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

BEGIN = "<!-- RESULTS:BEGIN (scripts/compression_results.py) -->"
END = "<!-- RESULTS:END -->"

# (row label, arguments after `autochip compress lenet_digits`, checkpoint name)
RUNS = [
    ("int8 (W8/A8)", ["--method", "quant", "--bits", "8/8"], "int8.pt"),
    ("int4 (W4/A4)", ["--method", "quant", "--bits", "4/4"], "int4.pt"),
    ("binary, STE", ["--method", "binary"], "binary.pt"),
    ("binary, FDA", ["--method", "binary", "--estimator", "fda"], "binary_fda.pt"),
    ("adder (int8)", ["--method", "adder"], "adder.pt"),
    ("adder (int8) + PKKD", ["--method", "adder", "--kd", "{out}/int8.fp32.pt"], "adder_kd.pt"),
]


def _run(out: Path, args: list[str], ckpt: str) -> tuple[str, dict[str, object]]:
    full = ["lenet_digits", "--data", "digits", *[a.format(out=out) for a in args]]
    full += ["--out", str(out / ckpt), "--json"]
    shown = "autochip compress " + " ".join(full)
    print(f"$ {shown}", file=sys.stderr, flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "autochip", "compress", *full],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    result: dict[str, object] = json.loads(proc.stdout)
    return shown, result


def _pct(v: object) -> str:
    return f"{100 * float(str(v)):.2f}"


def render(rows: list[tuple[str, str, dict[str, object]]]) -> str:
    fp32 = rows[0][2]["accuracy_fp32"]
    lines = [
        BEGIN,
        "",
        "| model | fake-quant accuracy % | integer accuracy % | class agreement % "
        "| max logit diff (LSB) |",
        "|---|---|---|---|---|",
        f"| FP32 (LeNet-digits) | {_pct(fp32)} | — | — | — |",
    ]
    for label, _cmd, r in rows:
        lines.append(
            f"| {label} | {_pct(r['accuracy'])} | {_pct(r['accuracy_integer'])} "
            f"| {_pct(r['agreement'])} | {r['max_logit_diff_lsb']} |"
        )
    lines += [
        "",
        "Commands (each trains its FP32 model first, with the same seed, except the PKKD row, "
        "which distils from the FP32 model that the int8 run wrote):",
        "",
        "```",
    ]
    lines += [cmd for _label, cmd, _r in rows]
    lines += ["```", "", END]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="build/compression", help="folder for the checkpoints")
    p.add_argument("--doc", default="docs/compression.md", help="document to update")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, run_args, ckpt in RUNS:
        shown, result = _run(out, run_args, ckpt)
        rows.append((label, shown, result))
        print(json.dumps({label: result}), file=sys.stderr, flush=True)
    block = render(rows)
    doc = Path(args.doc)
    text = doc.read_text() if doc.is_file() else f"{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        print(f"{doc}: missing the RESULTS markers", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(head + block + tail)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())

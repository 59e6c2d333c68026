"""Re-run the compression tables of docs/compression.md from real CLI runs, over several seeds.

    .venv/bin/python scripts/compression_results.py --data fashion-mnist [--jobs 2] [--seeds 0 1 2]
        [--only KEY ...] [--out build/compression] [--doc docs/compression.md] [--render-only]

Every cell comes from ``autochip compress ... --json`` (the command lines are listed under each
table) plus ``autochip inspect`` (MACs, parameters) and ``autochip predict --hw`` (latency on one
core) of the checkpoint it wrote. Per seed, the first run trains the FP32 model (and reports its
post-training int8 quantisation); every other run of that seed starts from that FP32 checkpoint
and, where the row says so, distils from it.

Recorded and merged: each finished run's record (its command, the CLI's JSON, MACs, parameters,
latency) is merged into ``docs/compression_runs/DATA.json`` under ``<row>_s<seed>`` with a hash
of its command line, in which the start checkpoint is named by its content and the output folder
not at all. A run whose record holds the same hash is not run again, so the script can run any
subset of rows (``--only``) and seeds (``--seeds``) at different times, an interrupted script
continues where it stopped, and a changed recipe re-runs. The tables are rendered from that file
alone (``--render-only`` re-renders without running anything); rows whose seeds are not all
recorded show the number they have (``n``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "docs" / "compression_runs"


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    args: tuple[str, ...]  # after MODEL; {fp} is the seed's FP32 checkpoint
    base: bool = False  # the run that trains the FP32 model


@dataclass(frozen=True)
class Setup:
    model: str
    data: str
    fp32_epochs: int
    batch_size: int
    rows: tuple[Row, ...]
    # A trained FP32 checkpoint every seed starts from (its FP32 row then has one run), or None:
    # each seed trains its own FP32 model (the base row).
    start: str | None = None
    # "One core": the latency column's `autochip predict --hw`, and the core of --criterion hw.
    hw: str = "examples/hw/demo_os8x8_int8.yaml"
    # Evaluate on the first N test images only (a subset data folder; see _subset_data): the
    # integer reference takes ~40 CPU-seconds for LeNet-5 on all 10,000 images; ResNet-8 has 22x
    # its MACs.
    test_limit: int | None = None
    # Validation instead of test: train on the first 60,000 - N training images and evaluate on
    # the last N (a data folder; see _validation_data). Recipes are chosen on this split.
    validation: int | None = None


def _rows(e: dict[str, int]) -> tuple[Row, ...]:
    kd = ("--kd", "{fp}")
    ep = {k: ("--epochs", str(v)) for k, v in e.items()}
    return (
        Row("fp32", "FP32 / int8 post-training (no fine-tuning)",
            ("--method", "quant", "--bits", "8/8", "--epochs", "0"), base=True),
        Row("int8", "int8 (W8/A8), KD", ("--method", "quant", "--bits", "8/8", *kd,
            *ep["int8"], "--lr", "1e-4")),
        Row("int4", "int4 weights (W4/A8), KD", ("--method", "quant", "--bits", "4/8", *kd,
            *ep["int4"], "--lr", "5e-4")),
        Row("int2", "int2 weights (W2/A8), KD", ("--method", "quant", "--bits", "2/8", *kd,
            *ep["int2"], "--lr", "1e-3")),
        Row("int4a4", "int4 weights and activations (W4/A4), KD", ("--method", "quant",
            "--bits", "4/4", *kd, *ep["int4"], "--lr", "5e-4")),
        Row("bin_ste", "binary, STE", ("--method", "binary", "--no-kd", *ep["binary"],
            "--lr", "2e-3")),
        Row("bin_ste_kd", "binary, STE + KD", ("--method", "binary", *kd, "--kd-loss", "kd",
            *ep["binary"], "--lr", "2e-3")),
        Row("bin_ste_skd", "binary, STE + SKD", ("--method", "binary", *kd, "--kd-loss", "skd",
            *ep["binary"], "--lr", "2e-3")),
        Row("bin_fda", "binary, FDA", ("--method", "binary", "--estimator", "fda", "--no-kd",
            *ep["binary"], "--lr", "2e-3")),
        Row("bin_fda_kd", "binary, FDA + KD", ("--method", "binary", "--estimator", "fda", *kd,
            "--kd-loss", "kd", *ep["binary"], "--lr", "2e-3")),
        Row("bin_fda_skd", "binary, FDA + SKD", ("--method", "binary", "--estimator", "fda",
            *kd, "--kd-loss", "skd", *ep["binary"], "--lr", "2e-3")),
        Row("adder", "adder (int8)", ("--method", "adder", "--no-kd", *ep["adder"],
            "--lr", "1e-2")),
        Row("adder_pkkd", "adder (int8) + PKKD", ("--method", "adder", *kd, *ep["adder"],
            "--lr", "1e-2")),
    )  # fmt: skip


def _prune_rows(
    criteria: tuple[str, ...], epochs: int, hw: str, ratios: tuple[str, ...] = ("0.5", "0.3", "0.7")
) -> tuple[Row, ...]:
    rows = []
    for ratio in ratios:
        for crit in criteria:
            extra = ("--hw", hw) if crit == "hw" else ()
            rows.append(
                Row(f"prune_{crit}_{ratio}", f"pruned {crit} −{float(ratio):.0%} MACs, int8",
                    ("--method", "prune", "--ratio", ratio, "--criterion", crit, *extra,
                     "--kd", "{fp}", "--epochs", str(epochs), "--quant-epochs", "1"))
            )  # fmt: skip
    return tuple(rows)


# The 4x4 core the Fashion-MNIST models are simulated on (rtl_tests/core/test_fashion_hw.py):
# the demo core's ifmap rows are too small for LeNet-5's 28x28 feature maps.
FASHION_CORE = "rtl_tests/core/core_fashion4x4.yaml"
# ResNet-8: int8 and pruning only (block pruning needs residual blocks; LeNet-5 has none). One
# ResNet-8 epoch costs about as much as ten LeNet-5 epochs, so its recipes are short.
_R8 = ("--kd", "{fp}", "--epochs", "1", "--quant-epochs", "0")
# The recipes compared on validation (fashion-mnist-val) and then run on test (fashion-mnist).
_BIN_OLD = Row(
    "bin_ste",
    "binary, STE, no batch-norm, no KD",
    ("--method", "binary", "--no-binary-bn", "--no-kd", "--epochs", "4", "--lr", "2e-3"),
)
# Ablation on validation: the same KD recipe without the batch-norms.
_BIN_NOBN = Row("bin_kd_e12_nobn", "binary, STE + KD, no batch-norm, 12 epochs",
                ("--method", "binary", "--no-binary-bn", "--kd", "{fp}", "--epochs", "12",
                 "--lr", "2e-3"))  # fmt: skip
_BIN_BN = Row(
    "bin_bn_kd_e12",
    "binary, STE + batch-norm + KD, 12 epochs",
    ("--method", "binary", "--kd", "{fp}", "--epochs", "12", "--lr", "2e-3"),
)
_PRUNE_E24 = tuple(
    Row(
        f"prune_{crit}_0.5_e24",
        f"pruned {crit} −50% MACs, int8, KD, 24 epochs",
        (
            "--method",
            "prune",
            "--ratio",
            "0.5",
            "--criterion",
            crit,
            *(("--hw", FASHION_CORE) if crit == "hw" else ()),
            "--kd",
            "{fp}",
            "--epochs",
            "24",
            "--quant-epochs",
            "1",
        ),
    )
    for crit in ("l1", "hw")
)
# hw pruning at 50 % cuts the first conv to 3 of 6 filters (docs/compression.md): longer KD
# fine-tuning, chosen on validation.
_HW48 = ("--method", "prune", "--ratio", "0.5", "--criterion", "hw", "--hw", FASHION_CORE, "--kd",
         "{fp}", "--epochs", "48", "--quant-epochs", "1")  # fmt: skip
_PRUNE_HW_E48 = Row("prune_hw_0.5_e48", "pruned hw −50% MACs, int8, KD, 48 epochs", _HW48)
SETUPS = {
    "fashion-mnist-val": Setup(
        "lenet5_fashion", "fashion-mnist", 20, 128,
        (
            Row("fp32", "FP32 / int8 post-training (no fine-tuning)",
                ("--method", "quant", "--bits", "8/8", "--epochs", "0"), base=True),
            _BIN_OLD, _BIN_NOBN, _BIN_BN, *_PRUNE_E24, _PRUNE_HW_E48,
        ),
        hw=FASHION_CORE,
        validation=5000,
    ),
    "fashion-mnist": Setup(
        "lenet5_fashion", "fashion-mnist", 20, 128,
        _rows({"int8": 1, "int4": 2, "int2": 3, "binary": 4, "adder": 2})
        + _prune_rows(("l1", "hw"), 4, FASHION_CORE)
        # The missed targets, with the longer recipes chosen on validation (fashion-mnist-val).
        + (
            *_PRUNE_E24,
            _BIN_BN,
            _PRUNE_HW_E48,
            Row("adder_pkkd_e6", "adder (int8) + PKKD, 6 epochs", ("--method", "adder",
                "--kd", "{fp}", "--kd-loss", "pkkd", "--epochs", "6", "--lr", "1e-2")),
        ),
        start="models/lenet5_fashion.fp32.pt",
        hw=FASHION_CORE,
    ),
    "fashion-mnist-resnet8": Setup(
        "resnet8_fashion", "fashion-mnist", 20, 128,
        (
            Row("fp32", "FP32 / int8 post-training (no fine-tuning)",
                ("--method", "quant", "--bits", "8/8", "--epochs", "0"), base=True),
            Row("prune_block_0.3", "pruned block −30% MACs, int8 (no QAT)",
                ("--method", "prune", "--ratio", "0.3", "--criterion", "block", *_R8)),
            Row("prune_l1_0.5", "pruned l1 −50% MACs, int8 (no QAT)",
                ("--method", "prune", "--ratio", "0.5", "--criterion", "l1", *_R8)),
            Row("prune_hw_0.5", "pruned hw −50% MACs, int8 (no QAT)",
                ("--method", "prune", "--ratio", "0.5", "--criterion", "hw", "--hw",
                 FASHION_CORE, *_R8)),
            Row("prune_l1_0.3", "pruned l1 −30% MACs, int8 (no QAT)",
                ("--method", "prune", "--ratio", "0.3", "--criterion", "l1", *_R8)),
            Row("prune_hw_0.3", "pruned hw −30% MACs, int8 (no QAT)",
                ("--method", "prune", "--ratio", "0.3", "--criterion", "hw", "--hw",
                 FASHION_CORE, *_R8)),
            Row("prune_l1_0.7", "pruned l1 −70% MACs, int8 (no QAT)",
                ("--method", "prune", "--ratio", "0.7", "--criterion", "l1", *_R8)),
            Row("prune_hw_0.7", "pruned hw −70% MACs, int8 (no QAT)",
                ("--method", "prune", "--ratio", "0.7", "--criterion", "hw", "--hw",
                 FASHION_CORE, *_R8)),
            Row("int8", "int8 (W8/A8), KD", ("--method", "quant", "--bits", "8/8", "--kd",
                "{fp}", "--epochs", "1", "--lr", "1e-4")),
            # The 50 % target with a longer recipe (LeNet-5 needed 24 epochs; a ResNet-8 epoch
            # costs about ten of LeNet-5's).
            Row("prune_l1_0.5_e6", "pruned l1 −50% MACs, int8 (no QAT), KD, 6 epochs",
                ("--method", "prune", "--ratio", "0.5", "--criterion", "l1", "--kd", "{fp}",
                 "--epochs", "6", "--quant-epochs", "0")),
            # binary blocks read the residual stream through sign layers (docs: binarisation)
            Row("bin_bn_kd_e2", "binary, STE + batch-norm + KD, 2 epochs", ("--method", "binary",
                "--kd", "{fp}", "--epochs", "2", "--lr", "2e-3")),
        ),
        start="models/resnet8_fashion.fp32.pt",
        hw=FASHION_CORE,
        test_limit=2000,
    ),
    "digits": Setup(
        "lenet_digits", "digits", 30, 32,
        _rows({"int8": 5, "int4": 15, "int2": 15, "binary": 30, "adder": 30})
        + _prune_rows(("l1", "hw"), 15, "examples/hw/demo_os8x8_int8.yaml"),
    ),
}  # fmt: skip
TARGETS = (
    "int8",
    "int4",
    "bin_ste",
    "prune_l1_0.5",
    "prune_hw_0.5",
    "adder",
    "prune_l1_0.5_e24",
    "adder_pkkd_e6",
    "prune_hw_0.5_e24",
    "bin_bn_kd_e12",
    "prune_hw_0.5_e48",
)
# Order in which rows run (the table keeps the order above): the targets of the issue first.
PRIORITY = (
    "bin_bn_kd_e12", "prune_hw_0.5_e24", "prune_hw_0.5_e48", "prune_l1_0.5_e24", "adder_pkkd_e6",
    "int8", "int4", "bin_ste", "prune_l1_0.5", "prune_hw_0.5", "adder", "prune_block_0.3",
    "int2", "bin_ste_skd", "bin_ste_kd", "bin_fda", "adder_pkkd", "prune_l1_0.3", "prune_hw_0.3",
    "prune_l1_0.7", "prune_hw_0.7", "bin_fda_kd",
    "bin_fda_skd", "int4a4",
)  # fmt: skip


FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _idx(path: Path, dims: int) -> tuple[bytes, list[int], int, bytes]:
    """A gzipped idx file: its raw bytes, its shape, the bytes per item and the items' bytes."""
    import gzip
    import struct

    raw = gzip.decompress(path.read_bytes())
    shape = list(struct.unpack(f">{dims}I", raw[4 : 4 + 4 * dims]))
    per = 1
    for d in shape[1:]:
        per *= d
    return raw, shape, per, raw[4 + 4 * dims :]


def _subset_data(limit: int) -> str:
    """A Fashion-MNIST folder with all 60,000 training images and the first ``limit`` test
    images (idx files, written once under build/): the ``--data`` of a ``test_limit`` setup."""
    import struct

    folder = Path("build") / f"fashion-mnist-test{limit}"
    if not (ROOT / folder / "t10k-labels-idx1-ubyte").is_file():
        (ROOT / folder).mkdir(parents=True, exist_ok=True)
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
            link = ROOT / folder / f"{name}.gz"
            if not link.exists():
                link.symlink_to(FASHION_DIR / f"{name}.gz")
        for name, dims in (("t10k-images-idx3-ubyte", 3), ("t10k-labels-idx1-ubyte", 1)):
            raw, shape, per, body = _idx(FASHION_DIR / f"{name}.gz", dims)
            head = raw[:4] + struct.pack(f">{dims}I", limit, *shape[1:])
            (ROOT / folder / name).write_bytes(head + body[: limit * per])
    return f"fashion-mnist:{folder}"


def _validation_data(n: int) -> str:
    """A Fashion-MNIST folder whose training set is the first ``60,000 - n`` training images
    and whose test set is the last ``n`` (idx files, written once under build/): the ``--data``
    of a ``validation`` setup, on which recipes are chosen without looking at the test set."""
    import struct

    folder = Path("build") / f"fashion-mnist-val{n}"
    if not (ROOT / folder / "t10k-labels-idx1-ubyte").is_file():
        (ROOT / folder).mkdir(parents=True, exist_ok=True)
        for kind, dims in (("images-idx3-ubyte", 3), ("labels-idx1-ubyte", 1)):
            raw, shape, per, body = _idx(FASHION_DIR / f"train-{kind}.gz", dims)
            cut = (shape[0] - n) * per
            for name, part in (("train", body[:cut]), ("t10k", body[cut:])):
                head = raw[:4] + struct.pack(f">{dims}I", len(part) // per, *shape[1:])
                (ROOT / folder / f"{name}-{kind}").write_bytes(head + part)
    return f"fashion-mnist:{folder}"


def _data(setup: Setup) -> str:
    if setup.validation:
        return _validation_data(setup.validation)
    return _subset_data(setup.test_limit) if setup.test_limit else setup.data


def _argv(setup: Setup, row: Row, seed: int, out: Path, fp: str | None = None) -> list[str]:
    """The command line; ``fp`` replaces the FP32 checkpoint's path (for the cache key)."""
    if setup.start is not None:
        fp = fp or setup.start
        model = fp
    else:
        fp = fp or str(out / f"fp32_s{seed}.fp32.pt")
        model = setup.model if row.base else fp
    data = _data(setup)
    argv = [model, "--data", data, *[a.format(fp=fp) for a in row.args]]
    argv += ["--fp32-epochs", str(setup.fp32_epochs), "--batch-size", str(setup.batch_size)]
    argv += ["--seed", str(seed), "--out", str(out / f"{row.key}_s{seed}.pt"), "--json"]
    return argv


def _key(setup: Setup, row: Row, seed: int) -> str:
    """Hash of the command line with the start checkpoint named by its content, not its path, and
    the output folder left out (records move between checkouts)."""
    start = ""
    if setup.start is not None:
        start = hashlib.sha256((ROOT / setup.start).read_bytes()).hexdigest()
    argv = _argv(setup, row, seed, Path("OUT"), fp="{fp}")
    return hashlib.sha1(json.dumps([start, *argv]).encode()).hexdigest()[:12]


def _records_file(name: str) -> Path:
    return RECORDS / f"{name}.json"


def _load_records(name: str) -> dict[str, dict[str, object]]:
    path = _records_file(name)
    if not path.is_file():
        return {}
    recs: dict[str, dict[str, object]] = json.loads(path.read_text())
    return recs


def _merge_record(name: str, slot: str, record: dict[str, object]) -> None:
    """Add one run's record to the data set's file (read, update, write: other runs of this
    script may have added theirs meanwhile)."""
    with _lock:
        recs = _load_records(name)
        recs[slot] = record
        path = _records_file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(sorted(recs.items())), indent=1) + "\n")
        tmp.replace(path)


def _seeds(setup: Setup, row: Row, seeds: list[int]) -> list[int]:
    return seeds[:1] if (row.base and setup.start is not None) else seeds


def _cli(args: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        ["nice", "-n", str(NICE), sys.executable, "-m", "autochip", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"autochip {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}")
    return proc.stdout


def _in_process(args: list[str]) -> str:
    """``autochip ARGS`` in this process (no torch start-up per call): inspect and predict."""
    import contextlib
    import io

    sys.path.insert(0, str(ROOT))
    from autochip.cli import main as cli_main

    buf, err = io.StringIO(), io.StringIO()
    with _lock, contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        code = cli_main(args)
    if code != 0:
        raise RuntimeError(f"autochip {' '.join(args)}: exit {code}\n{err.getvalue()}")
    return buf.getvalue()


_lock = threading.Lock()
NICE = 10  # --nice
JOBS = 1  # --jobs


def run_one(setup: Setup, row: Row, seed: int, out: Path, name: str) -> dict[str, object] | None:
    argv = _argv(setup, row, seed, out)
    cached = _cached(setup, row, seed, name)
    if cached is not None:
        return cached
    shown = "autochip compress " + " ".join(argv)
    with _lock:
        print(f"$ {shown}", file=sys.stderr, flush=True)
    t0, cpu0 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        result = json.loads(_cli(["compress", *argv]).replace(f"{ROOT}/", ""))
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.monotonic() - t0
        ckpt = str(out / f"{row.key}_s{seed}.pt")
        info = json.loads(_in_process(["inspect", ckpt, "--json"]))
        pred = json.loads(_in_process(["predict", ckpt, "--hw", setup.hw, "--json"]))
    except (RuntimeError, json.JSONDecodeError) as exc:
        with _lock:
            print(f"FAILED {row.key} seed {seed}: {exc}", file=sys.stderr, flush=True)
        return None
    record: dict[str, object] = {
        "hash": _key(setup, row, seed),
        "command": shown.replace(f"{ROOT}/", ""),
        "result": result,
        "macs": info["total_macs"],
        "params": info["total_params"],
        "latency_s": pred["total"]["latency_s"],
        "wall_s": round(wall, 1),
    }
    if JOBS == 1:  # the children's CPU time is this run's only when runs do not overlap
        record["cpu_s"] = round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1)
    if row.base:  # the FP32 model's size, for the FP32 line of the table
        fp_ckpt = setup.start or str(out / f"fp32_s{seed}.fp32.pt")
        fp_info = json.loads(_in_process(["inspect", fp_ckpt, "--json"]))
        record["fp32_macs"], record["fp32_params"] = fp_info["total_macs"], fp_info["total_params"]
    _merge_record(name, f"{row.key}_s{seed}", record)
    with _lock:
        print(f"done {row.key} seed {seed}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return record


def _cached(setup: Setup, row: Row, seed: int, name: str) -> dict[str, object] | None:
    """The recorded run of ``row`` on ``seed`` if its recipe is the current one."""
    with _lock:
        rec = _load_records(name).get(f"{row.key}_s{seed}")
    return rec if rec is not None and rec.get("hash") == _key(setup, row, seed) else None


def _ms(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


# The targets: largest loss against FP32, in points, per row.
TARGET_LOSS = {"int8": 0.3, "int4": 1.0, "adder": 1.0, "adder_pkkd": 1.0, "prune_l1_0.5": 1.0,
               "prune_hw_0.5": 1.0, "bin_ste": 5.0, "bin_ste_kd": 5.0, "bin_ste_skd": 5.0,
               "bin_fda": 5.0, "bin_fda_kd": 5.0, "bin_fda_skd": 5.0,
               "prune_l1_0.5_e24": 1.0,
               "prune_hw_0.5_e24": 1.0, "adder_pkkd_e6": 1.0, "bin_bn_kd_e12": 5.0,
               "prune_hw_0.5_e48": 1.0, "bin_kd_e12_nobn": 5.0, "bin_bn_kd_e2": 5.0,
               "prune_l1_0.5_e6": 1.0}  # fmt: skip


def _f(rec: dict[str, object], key: str) -> float:
    result = rec["result"]
    assert isinstance(result, dict)
    return float(result[key])


def _epochs(row: Row) -> str:
    a = list(row.args)
    ep = a[a.index("--epochs") + 1] if "--epochs" in a else "—"
    if "--quant-epochs" in a:
        ep += f" + {a[a.index('--quant-epochs') + 1]} int8"
    return ep


def _target(row: Row, delta: list[float]) -> str:
    limit = TARGET_LOSS.get(row.key)
    if limit is None or not delta:
        return "—"
    loss = -statistics.mean(delta)
    # Fewer than the three seeds: the verdict says on how many it rests.
    few = f" (n = {len(delta)})" if len(delta) < 3 else ""
    if loss <= limit:
        return f"≤ {limit:g}: met{few}"
    return f"≤ {limit:g}: missed by {loss - limit:.2f}{few}"


def render(setup: Setup, seeds: list[int], name: str) -> str:
    begin, end = markers(name)
    against = (
        f"the FP32 checkpoint every run starts from (`{setup.start}`)"
        if setup.start
        else "the FP32 model of the same seed"
    )
    lines = [
        begin,
        "",
        f"`{setup.model}` on {setup.data}"
        + (
            f" (accuracies on the first {setup.test_limit:,} of the 10,000 test images: "
            f"`--data {_subset_data(setup.test_limit)}`, written by this script)"
            if setup.test_limit
            else ""
        )
        + (
            f" (validation: trained on the first {60_000 - setup.validation:,} training images, "
            f"accuracies on the last {setup.validation:,}: "
            f"`--data {_validation_data(setup.validation)}`, written by this script)"
            if setup.validation
            else ""
        )
        + "; mean ± sample standard deviation over the seeds "
        f"that finished (`n` of {', '.join(map(str, seeds))}); one value when `n` is 1. Δ is the "
        f"accuracy minus that of {against}, in points. Epochs: fine-tuning epochs over the "
        f"training set. Params: `autochip inspect CKPT` (a compressed checkpoint's include its "
        f"quantisers' step sizes). Latency: `autochip predict CKPT --hw {setup.hw}` (one int8 "
        "MAC core; xnor and adder layers costed as its MAC).",
        "",
        "| model | epochs | n | accuracy % | Δ (points) | target loss | integer accuracy % "
        "| agreement % | MACs | params | latency µs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    commands = []
    for row in setup.rows:
        recs = {s: _cached(setup, row, s, name) for s in _seeds(setup, row, seeds)}
        done = [r for r in recs.values() if r is not None]
        if not done:
            continue
        acc = [100 * _f(r, "accuracy") for r in done]
        delta = [100 * (_f(r, "accuracy") - _f(r, "accuracy_fp32")) for r in done]
        integer = [100 * _f(r, "accuracy_integer") for r in done]
        agree = [100 * _f(r, "agreement") for r in done]
        lat = [1e6 * float(str(r["latency_s"])) for r in done]
        macs = "/".join(f"{m:,}" for m in sorted({int(str(r["macs"])) for r in done}))
        params = "/".join(f"{p:,}" for p in sorted({int(str(r["params"])) for r in done}))
        label, epochs = row.label, _epochs(row)
        if row.base:
            fp = [100 * _f(r, "accuracy_fp32") for r in done]
            fp_macs = f"{int(str(done[0]['fp32_macs'])):,}"
            fp_params = f"{int(str(done[0]['fp32_params'])):,}"
            n_fp = "1" if setup.start else str(len(done))
            fp_epochs = (
                f"{setup.fp32_epochs} (checkpoint)" if setup.start else str(setup.fp32_epochs)
            )
            lines.append(
                f"| FP32 | {fp_epochs} | {n_fp} | {_ms(fp)} | — | — | — | — | {fp_macs} "
                f"| {fp_params} "
                "| — |"
            )
            label, epochs = "int8 post-training (no fine-tuning)", "0"
        lines.append(
            f"| {label} | {epochs} | {len(done)} | {_ms(acc)} | {_ms(delta)} "
            f"| {_target(row, delta)} | {_ms(integer)} | {_ms(agree)} | {macs} | {params} "
            f"| {_ms(lat)} |"
        )
        commands.append(str(done[0]["command"]))
    lines += [
        "",
        "Commands (the first finished seed; the others differ only in `--seed` and the "
        "`_s<seed>` file names):",
        "",
        "```",
        *commands,
        "```",
        "",
        end,
    ]
    return "\n".join(lines)


def markers(data: str) -> tuple[str, str]:
    return (
        f"<!-- RESULTS:{data}:BEGIN (scripts/compression_results.py) -->",
        f"<!-- RESULTS:{data}:END -->",
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--data", choices=sorted(SETUPS), default="fashion-mnist", help="table to run (SETUPS)"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=1, help="runs at a time")
    p.add_argument("--only", nargs="+", help="row keys to run (the FP32 rows always run)")
    p.add_argument("--out", default=None, help="folder for checkpoints (build/compression/DATA)")
    p.add_argument("--doc", default="docs/compression.md", help="document to update")
    p.add_argument("--render-only", action="store_true", help="render the cached runs only")
    p.add_argument("--nice", type=int, default=10, help="niceness of the runs (10)")
    args = p.parse_args()
    global NICE, JOBS
    NICE, JOBS = args.nice, args.jobs
    setup = SETUPS[args.data]
    out = Path(args.out or ROOT / "build" / "compression" / args.data).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not args.render_only:
        rows = [r for r in setup.rows if r.base or not args.only or r.key in args.only]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            base = [r for r in rows if r.base]
            list(
                pool.map(
                    lambda s: run_one(setup, base[0], s, out, args.data),
                    _seeds(setup, base[0], args.seeds),
                )
            )
            rank = {k: i for i, k in enumerate(PRIORITY)}
            ordered = sorted((r for r in rows if not r.base), key=lambda r: rank.get(r.key, 99))
            # The targets first, one seed of each before the next seed; then the rest,
            # also seed by seed (every row gets one seed before any gets a second).
            first = [r for r in ordered if r.key in TARGETS]
            rest = [r for r in ordered if r.key not in TARGETS]
            todo = [(r, s) for s in args.seeds for r in first]
            todo += [(r, s) for s in args.seeds for r in rest]
            list(pool.map(lambda rs: run_one(setup, rs[0], rs[1], out, args.data), todo))
    if not _load_records(args.data):
        # A table printed before the records existed stays as it is until its rows are run.
        print(f"{_records_file(args.data)}: no run records; {args.doc} left as it is")
        return 1
    block = render(setup, args.seeds, args.data)
    doc = Path(args.doc)
    begin, end = markers(args.data)
    text = doc.read_text()
    if begin not in text or end not in text:
        print(f"{doc}: missing the markers {begin} ... {end}", file=sys.stderr)
        return 1
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(head + block + tail)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())

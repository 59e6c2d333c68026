"""Co-design: compression against the hardware budget; a Pareto front of accuracy against
latency, energy and resources, every point trained and costed, the chosen design built.

  autochip codesign models/lenet5_fashion.fp32.pt --data fashion-mnist --platform pynq-z2 \\
      --budget lut=20000,dsp=40 --out build/codesign [--epochs 1,3] [--trials N | --hours H] \\
      [--space SPACE.yaml] [--fixed-hw HW.yaml] [--json] [--plot F.png] [--build]

MODEL is a trained FP32 checkpoint (autochip compress's <stem>.fp32.pt) or a zoo name, trained
here first for --fp32-epochs (cached). The compression space is the inner layers' PE kind (mac,
adder, binary xnor) and widths, the first/last layers' widths (int8 by default) and the
fraction of MACs pruned (L1 filter pruning, or whole residual blocks); --space YAML narrows or
widens it (keys `compression:` kind, bits, edge_bits, prune, criterion; `hardware:` the keys of
`autochip explore --space`). Widths are per network, not per layer: the core runs every layer
at its widest layer's width and stores every value in a byte, so a narrower layer would cost
accuracy and save nothing (docs/codesign.md).

Each candidate is fine-tuned from MODEL with distillation (KD from MODEL) and measured as an
integer model (the reference the RTL matches bit-exactly): validation accuracy, on --val-images
held out of the training split, ranks candidates; test accuracy is reported. Successive halving
(--epochs: cumulative epochs per rung, --eta) spends epochs on the promising ones; every
training is cached by content (--cache), so a rerun, a wider search or an interrupted one
reuses it. Each candidate's hardware is the Chip Builder's search on --platform within
--budget (or the one core of --fixed-hw). The chosen design is the best --objective on the front
within --max-loss points of the uniform int8 dense network (trained alike), which is always a
candidate; it is compared with that network on its own best core. --latency-target and
--energy-target restrict the chosen design to those that meet them (none: exit 2, the trainings
stay cached).

Writes DIR/codesign.json (front, chosen, every candidate), DIR/front.csv and DIR/chosen/
(policy.json, hw.yaml, model.pt: the checkpoint, model.npz: the integer model). With --build,
DIR/build is `autochip build` of the chosen design and `autochip sim` runs --sim-images test
images on it, bit-exact against the integer model; with --synth, Yosys synthesises the chosen
core and reports its resources against the prediction and the budget. --scheduler trains and
costs candidates on a Dask cluster (the cache must be on a file system the workers share);
--workers on local processes.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from autochip._safeio import (
    atomic_path,
    atomic_write_text,
    output_dir_problems,
    output_file_problems,
)
from autochip.builder.explore import OBJECTIVES
from autochip.errors import SpecError

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="trained FP32 checkpoint (.pt) or zoo name")
    p.add_argument("--data", required=True, metavar="DATA",
                   help="digits, fashion-mnist[:DIR] or a dataset folder")  # fmt: skip
    p.add_argument("--platform", required=True, metavar="NAME", help="FPGA device/board or ASIC")
    p.add_argument("--budget", metavar="K=V,...", help="lut=,ff=,dsp=,bram= | area_mm2=,power_w=")
    p.add_argument("--margin", type=float, default=0.05,
                   help="raise predicted FPGA resources by this fraction against the budget "
                   "(0.05)")  # fmt: skip
    p.add_argument("--objective", choices=OBJECTIVES, default="latency", help="what to optimise")
    p.add_argument("--space", metavar="SPACE.yaml", help="compression and hardware space")
    p.add_argument("--fixed-hw", metavar="HW.yaml", help="one core for every candidate")
    p.add_argument(
        "--epochs",
        default="1,3",
        metavar="E1,E2,..",
        help="cumulative fine-tuning epochs of the successive-halving rungs (1,3)",
    )
    p.add_argument("--eta", type=int, default=3, help="keep the best 1/eta of a rung (3)")
    p.add_argument("--trials", type=int, metavar="N", help="candidates drawn from the space")
    p.add_argument("--hours", type=float, metavar="H", help="stop launching training after H")
    p.add_argument(
        "--max-loss",
        type=float,
        default=0.5,
        help="accuracy points the chosen design may lose against int8 (0.5)",
    )
    p.add_argument("--latency-target", type=float, metavar="S",
                   help="seconds per inference the chosen design must meet")  # fmt: skip
    p.add_argument("--energy-target", type=float, metavar="J",
                   help="joules per inference the chosen design must meet")  # fmt: skip
    p.add_argument("--samples", type=int, default=20_000,
                   help="hardware designs searched per candidate (20000)")  # fmt: skip
    p.add_argument("--tiled-samples", type=int, default=1_000, metavar="N",
                   help="of which tiling feature maps (1000)")  # fmt: skip
    p.add_argument("--val-images", type=int, default=5000, help="validation images (5000)")
    p.add_argument("--train-images", type=int, metavar="N", help="training images (all)")
    p.add_argument("--test-images", type=int, metavar="N", help="test images (all)")
    p.add_argument("--batch-size", type=int, default=128, help="(128)")
    p.add_argument("--fp32-epochs", type=int, default=20, help="for a zoo MODEL (20)")
    p.add_argument("--seed", type=int, default=0, help="(0)")
    p.add_argument("--cache", metavar="DIR", help="training cache (~/.cache/autochip/codesign)")
    p.add_argument("--workers", type=int, default=1, help="local processes (1)")
    p.add_argument("--threads", type=int, help="torch threads per training (cores / workers)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="Dask scheduler address")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", metavar="F.png", help="write a PNG of the front")
    p.add_argument("--build", action="store_true", help="build and simulate the chosen design")
    p.add_argument("--sim-images", type=int, default=8, help="test images simulated (8)")
    p.add_argument("--synth", action="store_true",
                   help="synthesise the chosen core with Yosys for the platform's FPGA family "
                        "(minutes): resources against the prediction and the budget, Fmax on "
                        "ECP5")  # fmt: skip


def _rungs(text: str, problems: list[str]) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if not vals or vals[0] < 1 or any(b <= a for a, b in itertools.pairwise(vals)):
        problems.append(f"--epochs: expected increasing positive integers like 1,3,9, found "
                        f"'{text}'")  # fmt: skip
        return (1,)
    return vals


def _check(args: argparse.Namespace) -> list[str]:
    bad: list[str] = []
    args.rungs = _rungs(args.epochs, bad)
    for flag, v, lo in (
        ("--eta", args.eta, 2),
        ("--trials", args.trials, 1),
        ("--samples", args.samples, 1),
        ("--tiled-samples", args.tiled_samples, 0),
        ("--val-images", args.val_images, 1),
        ("--train-images", args.train_images, 1),
        ("--test-images", args.test_images, 1),
        ("--batch-size", args.batch_size, 1),
        ("--fp32-epochs", args.fp32_epochs, 1),
        ("--workers", args.workers, 1),
        ("--threads", args.threads, 1),
        ("--sim-images", args.sim_images, 1),
    ):
        if v is not None and v < lo:
            bad.append(f"{flag}: expected an integer >= {lo}, found {v}")
    if args.hours is not None and not (math.isfinite(args.hours) and args.hours > 0):
        bad.append(f"--hours: expected a positive number, found {args.hours}")
    if not (math.isfinite(args.max_loss) and 0 <= args.max_loss <= 100):
        bad.append(f"--max-loss: expected accuracy points 0..100, found {args.max_loss}")
    for flag, v in (("--latency-target", args.latency_target),
                    ("--energy-target", args.energy_target)):  # fmt: skip
        if v is not None and not (math.isfinite(v) and v > 0):
            bad.append(f"{flag}: expected a positive number, found {v}")
    if not (math.isfinite(args.margin) and 0 <= args.margin < 1):
        bad.append(f"--margin: expected a fraction 0..1, found {args.margin}")
    bad += output_dir_problems("--out", args.out)
    bad += output_file_problems("--plot", args.plot)
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        bad.append(f"--plot {args.plot}: expected a .png file name")
    if args.cache is not None:
        bad += output_dir_problems("--cache", args.cache)
    if args.space is not None and not Path(args.space).is_file():
        bad.append(f"--space: expected a YAML file, found no file at '{args.space}'")
    if args.scheduler is not None and not args.scheduler.startswith(
        ("tcp://", "tls://", "inproc://")
    ):
        bad.append(f"--scheduler: expected an address like tcp://HOST:PORT, found "
                   f"'{args.scheduler}'")  # fmt: skip
    return bad


def run(args: argparse.Namespace) -> int:
    from autochip.codesign.accuracy import Context, default_cache, load_fp32, split_data
    from autochip.codesign.candidate import load_joint_space
    from autochip.codesign.hardware import HardwareSearch, check_search
    from autochip.codesign.search import Settings, codesign

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    problems = _check(args)
    space: Any = None
    hw_space: dict[str, Any] = {}
    if args.space is not None and Path(args.space).is_file():
        try:
            space, hw_space = load_joint_space(args.space)
        except SpecError as exc:
            problems += [f"{exc.source}: {p}" for p in exc.problems]
    hs = HardwareSearch(args.platform, args.budget, args.objective, args.samples, args.seed,
                        args.margin, args.tiled_samples, hw_space or None,
                        args.fixed_hw)  # fmt: skip
    problems += check_search(hs)
    if args.synth:
        from autochip.hw.platform import load_platform

        try:
            if load_platform(args.platform).device is None:
                problems.append(f"--synth: expected an FPGA platform, found the ASIC "
                                f"'{args.platform}'")  # fmt: skip
        except SpecError:
            pass  # check_search has said what is wrong with --platform
    if problems:
        raise SpecError("command line", problems)
    if space is None:
        space, _ = load_joint_space(None)
    cache = args.cache or default_cache()
    model = _fp32_checkpoint(args, cache, say)
    _, example, name = load_fp32(model)
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    ctx = Context(model, args.data, args.val_images, args.train_images, args.test_images,
                  args.seed, args.batch_size, str(Path(cache).resolve()), threads)  # fmt: skip
    split_data(ctx, tuple(example.shape[1:]))  # data problems before any training
    st = Settings(args.rungs, args.eta, args.trials, args.hours, args.max_loss / 100, args.seed,
                  args.workers, args.scheduler, args.latency_target,
                  args.energy_target)  # fmt: skip
    out = codesign(Path(name).stem, ctx, space, hs, st, say)
    out.update(platform=args.platform, budget=args.budget, objective=args.objective,
               data=args.data, fp32_checkpoint=model, fixed_hw=args.fixed_hw)  # fmt: skip
    if "targets_unmet" in out:
        raise SpecError("codesign", [out["targets_unmet"] + " (the trainings are cached: a "
                                     "rerun with other targets reuses them)"])  # fmt: skip
    if out.get("chosen") is None:
        raise SpecError(
            "codesign",
            [
                "no candidate has a core within the budget: "
                + "; ".join(r.get("error", "") for r in out["candidates_measured"])[:800]
            ],
        )
    _write(Path(args.out), out, args)
    if args.build:
        out["build"] = _build(Path(args.out), out, ctx, example, args)
    if args.synth:
        out["synth"] = _synth(out, args)
    if args.build or args.synth:
        atomic_write_text(Path(args.out) / "codesign.json", json.dumps(out, indent=1))
    out["out"] = str(args.out)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(_table(out))
    return 0


def _fp32_checkpoint(args: argparse.Namespace, cache: str, say: Any) -> str:
    """MODEL as a trained FP32 checkpoint: itself, or a zoo model trained here (cached)."""
    if args.model.endswith(".pt"):
        if not Path(args.model).is_file():
            raise SpecError("command line", [f"MODEL: expected a checkpoint, found no file at "
                                             f"'{args.model}'"])  # fmt: skip
        return str(args.model)
    from autochip.codesign.candidate import digest
    from autochip.compress.checkpoint import save_checkpoint
    from autochip.compress.data import load_data
    from autochip.compress.train import TrainConfig, seed_everything, train
    from autochip.ir import load_model
    from autochip.ir.loader import zoo_names

    if args.model not in zoo_names():
        raise SpecError("command line", [
            f"MODEL: expected a trained FP32 checkpoint (.pt, `autochip compress` writes "
            f"<stem>.fp32.pt) or a zoo name, found '{args.model}'"])  # fmt: skip
    key = digest({"model": args.model, "data": args.data, "epochs": args.fp32_epochs,
                  "seed": args.seed, "batch": args.batch_size, "lr": 3e-3})  # fmt: skip
    path = Path(cache) / "fp32" / f"{args.model}-{key[:16]}.fp32.pt"
    if path.is_file():
        return str(path)
    seed_everything(args.seed)  # before the model's own initialisation
    loaded = load_model(args.model)
    data = load_data(args.data, tuple(loaded.example_input.shape[1:]))
    say(f"training the FP32 {args.model} on {data.name} for {args.fp32_epochs} epochs")
    seed_everything(args.seed)
    train(loaded.model, data, TrainConfig(epochs=args.fp32_epochs, lr=3e-3,
          batch_size=args.batch_size, seed=args.seed), desc="fp32")  # fmt: skip
    save_checkpoint(path, args.model, None, loaded.model, {"method": "fp32"})
    return str(path)


def _write(root: Path, out: dict[str, Any], args: argparse.Namespace) -> None:
    import shutil

    import yaml

    root.mkdir(parents=True, exist_ok=True)
    ch = out["chosen"]
    chosen = root / "chosen"
    chosen.mkdir(exist_ok=True)
    from autochip.codesign.candidate import Candidate

    cand = Candidate.from_dict(ch["candidate"])
    policy = {"candidate": cand.to_dict(), "label": cand.label, "policy": cand.policy().to_dict(),
              "epochs": ch["epochs"], "accuracy": ch["accuracy"], "macs": ch["macs"]}  # fmt: skip
    atomic_write_text(chosen / "policy.json", json.dumps(policy, indent=1))
    atomic_write_text(chosen / "hw.yaml", yaml.safe_dump(ch["hw"], sort_keys=False))
    for src, dst in ((ch["checkpoint"], "model.pt"), (ch["integer_model"], "model.npz")):
        with atomic_path(chosen / dst) as tmp:
            shutil.copyfile(src, tmp)
    atomic_write_text(root / "codesign.json", json.dumps(out, indent=1))
    with atomic_path(root / "front.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "epochs", "accuracy", "latency_s", "energy_j", "resource",
                    "rows", "cols", "ifmap_kb", "weight_kb", "ofmap_kb", "bus_bytes",
                    "clock_mhz", "macs"])  # fmt: skip
        for p in out["front"]:
            hw = p["hw"]
            b = hw["buffers"]
            res = p.get("budget_fraction", p.get("area_mm2"))
            w.writerow([p["id"], p["label"], p["epochs"], p["accuracy"], p["latency_s"],
                        p["energy_j"], res, hw["array"]["rows"], hw["array"]["cols"],
                        b["ifmap"]["size_kb"], b["weight"]["size_kb"], b["ofmap"]["size_kb"],
                        hw["dram"]["bandwidth"], hw["clock_mhz"], p["macs"]])  # fmt: skip
    if args.plot:
        _plot(Path(args.plot), out)


def _build(root: Path, out: dict[str, Any], ctx: Any, example: Any, args: argparse.Namespace
           ) -> dict[str, Any]:  # fmt: skip
    """`autochip build` of the chosen design, `autochip sim` on test images (bit-exact)."""
    import numpy as np

    from autochip.cli import main as cli
    from autochip.codesign.accuracy import split_data

    train, _ = split_data(ctx, tuple(example.shape[1:]))
    x = train.x_test[: args.sim_images].numpy()
    images = root / "chosen" / "test_images.npy"
    with atomic_path(images) as tmp:
        np.save(tmp, x)
    build = root / "build"
    argv = ["build", str(root / "chosen" / "model.npz"), "--hw", str(root / "chosen" / "hw.yaml"),
            "--platform", args.platform, "--out", str(build), "--json"]  # fmt: skip
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli(argv)
    if rc != 0:
        raise SpecError("--build", [f"autochip {' '.join(argv)} failed (exit {rc})"])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli(["sim", str(build), "--input", str(images), "--json"])
    if rc != 0:
        raise SpecError("--build", [f"autochip sim {build} failed (exit {rc})"])
    sim = json.loads(buf.getvalue())
    return {"folder": str(build), "images": len(x), "sim": sim}


def _synth(out: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Yosys on the chosen core, as `autochip explore --synth` verifies its finalists:
    synthesised against predicted LUT/FF/DSP/BRAM, whether it fits --budget (the caps, without
    --margin), and on ECP5 nextpnr's Fmax against the clock."""
    from autochip.builder.finalists import verify_finalists
    from autochip.builder.space import parse_budget
    from autochip.hw.platform import load_platform

    caps = parse_budget(args.budget, load_platform(args.platform)).as_dict()
    chosen = out["chosen"]
    probe = {"designs": [chosen], "chosen": chosen, "budget": caps}
    report = verify_finalists(probe, args.platform, 1)[0]
    if probe.get("notes"):
        out.setdefault("notes", []).extend(probe["notes"])
    return {k: v for k, v in report.items() if k != "hw"}


def _plot(path: Path, out: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    front = out["front"]
    labels = sorted({p["label"] for p in front})
    cmap = plt.get_cmap("tab10")
    for n, lab in enumerate(labels):
        pts = [p for p in front if p["label"] == lab]
        ax.scatter([p["latency_s"] * 1e6 for p in pts], [100 * p["accuracy"] for p in pts],
                   s=14, color=cmap(n % 10), label=lab)  # fmt: skip
    c = out["chosen"]
    ax.scatter([c["latency_s"] * 1e6], [100 * c["accuracy"]], marker="*", s=220, color="red",
               zorder=3, label="chosen")  # fmt: skip
    if "reference" in out:
        r = out["reference"]
        ax.scatter([r["latency_s"] * 1e6], [100 * r["accuracy"]], marker="s", s=50,
                   color="black", zorder=3, label="int8 dense on its best core")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("latency per inference (us)")
    ax.set_ylabel("test accuracy (%), integer model")
    ax.set_title(f"{out['model']} on {out['platform']}: accuracy vs latency (joint front)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def _res(p: dict[str, Any]) -> str:
    if "resources" in p:
        r = p["resources"]
        return f"LUT {r['lut']:>6} FF {r['ff']:>6} DSP {r['dsp']:>4} BRAM {r['bram']:>4}"
    return f"area {p['area_mm2']:.3f} mm^2"


def _line(p: dict[str, Any]) -> str:
    a = p["hw"]["array"]
    return (f"{p.get('id', ''):<8} {p['label']:<30} e{p['epochs']:<3} {100 * p['accuracy']:6.2f} % "
            f"{a['rows']:>3}x{a['cols']:<3} {p['latency_s'] * 1e6:10.2f} us "
            f"{p['energy_j'] * 1e6:9.3f} uJ  {_res(p)}")  # fmt: skip


def _table(out: dict[str, Any]) -> str:
    lines = [
        f"{out['model']} on {out['platform']} ({out.get('budget') or 'whole device'}): "
        f"{out['candidates']} candidates, rungs {out['rungs']} "
        f"({out['rungs_done']} run{', stopped by --hours' if out['stopped_by_time'] else ''}), "
        f"{out['seconds']:.0f} s",
        "",
        f"joint front ({len(out['front'])} designs):",
        *[_line(p) for p in out["front"][:40]],
        "",
        "chosen:    " + _line(out["chosen"]),
    ]
    if "reference" in out:
        lines.append("reference: " + _line(out["reference"]))
        lines.append(
            f"chosen vs int8 dense on its best core: latency {out['latency_ratio']:.2f}x lower, "
            f"energy {out['energy_ratio']:.2f}x lower, accuracy "
            f"{-out['accuracy_loss_points']:+.2f} points"
        )
    if "build" in out:
        sim = out["build"]["sim"]
        lines.append(f"built and simulated ({out['build']['images']} test images): bit-exact "
                     f"{sim.get('bit_exact')}, {sim.get('cycles_total')} cycles measured, "
                     f"{sim.get('cycles_predicted_total')} predicted")  # fmt: skip
    if "synth" in out:
        lines.append("synthesised: " + out["synth"]["summary"])
    lines += [f"note: {n}" for n in out.get("notes", [])]
    lines.append(f"wrote {out.get('out', '')}".rstrip())
    return "\n".join(lines)

"""`autochip codesign`: the joint space, the front (every point measured, re-costed by the
core model, non-dominated), the cache, the Dask cluster, and bad input (exit 2, nothing
written). Digits-sized runs (LeNet on scikit-learn's digits) keep it to seconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from autochip.cli import main
from autochip.codesign.candidate import (
    REFERENCE,
    SAME,
    Candidate,
    JointSpace,
    joint_space_from_dict,
)
from autochip.errors import SpecError

BASE = ["--data", "digits", "--platform", "pynq-z2", "--budget", "lut=30000,dsp=60",
        "--val-images", "300", "--fp32-epochs", "3", "--batch-size", "32", "--samples", "3000",
        "--tiled-samples", "0"]  # fmt: skip


def test_joint_space_enumerates_what_the_core_can_tell_apart() -> None:
    sp = JointSpace(kinds=("mac", "adder", "binary"), bits=((8, 8), (6, 4), (4, 4)),
                    edge_bits=((8, 8), SAME), prune=(0.0, 0.5))  # fmt: skip
    cands = sp.candidates()
    assert len(cands) == len(set(cands))
    for c in cands:
        # never a network whose inner layers are narrower than its edges (same core, less
        # accuracy); adder layers have w == a
        if c.kind != "binary":
            assert c.w_bits >= c.edge_w_bits and c.a_bits >= c.edge_a_bits
        if c.kind == "adder":
            assert c.w_bits == c.a_bits
    assert REFERENCE in cands
    assert Candidate("mac", 6, 4, 6, 4, 0.5) in cands
    assert Candidate("adder", 6, 4, 6, 4) not in cands
    assert sp.skipped() > 0
    # the policy is what autochip compress trains; the core width is the widest layer's
    c = Candidate("mac", 4, 4, 8, 8)
    assert c.policy().default.w_bits == 4 and c.policy().first.w_bits == 8  # type: ignore[union-attr]
    assert c.core_bits == (8, 8)
    assert Candidate.from_dict(c.to_dict()) == c


def test_joint_space_yaml_errors_name_every_problem() -> None:
    with pytest.raises(SpecError) as e:
        joint_space_from_dict({"kind": ["mac", "fp16"], "bits": ["9/8"], "prune": [1.2],
                               "colour": [1], "stage_weights": [[0, 0], "late"]},
                              "s.yaml")  # fmt: skip
    text = str(e.value)
    for bit in ("fp16", "'9/8'", "prune", "colour", "stage_weights[0]", "stage_weights[1]"):
        assert bit in text
    sp = joint_space_from_dict({"bits": ["4/4"], "edge_bits": ["same"], "prune": [0, 0.3]}, "s")
    assert sp.candidates() == [Candidate("mac", 4, 4, 4, 4, 0.0), Candidate("mac", 4, 4, 4, 4, 0.3)]
    # per-stage pruning: only pruned l1 candidates carry weights; uniform keeps its old key
    sp = joint_space_from_dict({"bits": ["8/8"], "edge_bits": ["8/8"], "prune": [0, 0.3],
                                "criterion": ["l1", "block"],
                                "stage_weights": ["uniform", [0.5, 1, 1.5]]}, "s")  # fmt: skip
    staged = Candidate("mac", 8, 8, 8, 8, 0.3, "l1", (0.5, 1.0, 1.5))
    assert set(sp.candidates()) == {REFERENCE, Candidate("mac", 8, 8, 8, 8, 0.3), staged,
                                    Candidate("mac", 8, 8, 8, 8, 0.3, "block")}  # fmt: skip
    assert "stages" not in REFERENCE.to_dict() and Candidate.from_dict(staged.to_dict()) == staged
    assert staged.label.endswith("stages 0.5/1/1.5")


@pytest.mark.parametrize(
    "extra, what",
    [
        (["--epochs", "3,1"], "--epochs"),
        (["--budget", "lut=-5"], "lut"),
        (["--platform", "no-such-board"], "no-such-board"),
        (["--max-loss", "-1"], "--max-loss"),
        (["--space", "missing.yaml"], "--space"),
        (["--scheduler", "localhost:1"], "--scheduler"),
    ],
)
def test_bad_input_is_one_error_exit_2_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], what: str
) -> None:
    out = tmp_path / "out"
    args = ["codesign", "lenet_digits", *BASE, "--out", str(out), "--cache",
            str(tmp_path / "cache"), *extra]  # fmt: skip
    # the later flag wins in argparse: a bad --budget / --platform replaces BASE's
    assert main(args) == 2
    err = capsys.readouterr().err
    assert what in err
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_bad_space_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = tmp_path / "s.yaml"
    space.write_text("compression:\n  bits: [4/12]\nhardware:\n  rows: [0]\n")
    out = tmp_path / "out"
    args = ["codesign", "lenet_digits", *BASE, "--out", str(out), "--space", str(space)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "4/12" in err and "rows" in err
    assert not out.exists()


def _run(tmp: Path, name: str, cache: Path, capsys: Any, *extra: str) -> dict[str, Any]:
    out = tmp / name
    args = ["codesign", "lenet_digits", *BASE, "--out", str(out), "--cache", str(cache),
            "--space", str(tmp / "space.yaml"), "--epochs", "1,2", "--json", *extra]  # fmt: skip
    assert main(args) == 0
    res: dict[str, Any] = json.loads(capsys.readouterr().out)
    return res


@pytest.fixture(scope="module")
def space_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("codesign")
    (d / "space.yaml").write_text(yaml.safe_dump({
        "compression": {"bits": ["8/8", "4/4"], "edge_bits": ["same"], "prune": [0, 0.5]},
        "hardware": {"rows": [1, 2, 4, 8], "cols": [1, 2, 4, 8, 16]},
    }))  # fmt: skip
    return d


def _dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ka = (-a["accuracy"], a["latency_s"], a["energy_j"], a["budget_fraction"])
    kb = (-b["accuracy"], b["latency_s"], b["energy_j"], b["budget_fraction"])
    return all(x <= y for x, y in zip(ka, kb, strict=True)) and ka != kb


def test_codesign_front_is_measured_recostable_and_cached(
    space_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from autochip.reference import load_integer_model, quantize_input, run

    cache = space_dir / "cache"
    res = _run(space_dir, "out", cache, capsys, "--plot", str(space_dir / "front.png"))
    front = res["front"]
    assert front and res["chosen"] is not None and res["trainings"] > 0
    assert res["candidates"] == 4 and res["rungs_done"] == 2
    # non-dominated, and every candidate's measured points are dominated by or on the front
    for a in front:
        assert not any(_dominates(b, a) for b in front)
    # every front point's accuracy is its integer model's, re-measured here on the test split
    from autochip.compress.data import load_digits

    d = load_digits()
    for p in front[:3]:
        m = load_integer_model(p["integer_model"])
        out, _ = run(m, quantize_input(m, d.x_test.numpy()))
        assert float((out.argmax(1) == d.y_test.numpy()).mean()) == pytest.approx(p["accuracy"])
    # narrow networks fine-tune from MSE-calibrated activation steps, int8 ones from min-max
    from autochip.compress.checkpoint import read_checkpoint

    cal = {}
    for f in cache.rglob("result.json"):
        r = json.loads(f.read_text())
        cal[r["candidate"]["w_bits"]] = read_checkpoint(r["checkpoint"])["policy"]["calibration"]
    assert cal == {8: "minmax", 4: "mse"}
    # the chosen design within --max-loss of the int8 dense reference, at the same epochs
    ch, ref = res["chosen"], res["reference"]
    assert ch["epochs"] == ref["epochs"] == 2
    assert ch["accuracy"] >= ref["accuracy"] - 0.005 - 1e-12
    assert res["latency_ratio"] == pytest.approx(ref["latency_s"] / ch["latency_s"])
    # its hardware re-costed by `autochip predict --fidelity rtl --hw` on its integer model
    root = space_dir / "out"
    for f in ("codesign.json", "front.csv", "chosen/policy.json", "chosen/hw.yaml",
              "chosen/model.pt", "chosen/model.npz"):  # fmt: skip
        assert (root / f).is_file(), f
    assert (space_dir / "front.png").stat().st_size > 1000
    assert (
        main(
            [
                "predict",
                str(root / "chosen" / "model.pt"),
                "--fidelity",
                "rtl",
                "--hw",
                str(root / "chosen" / "hw.yaml"),
                "--platform",
                "pynq-z2",
                "--json",
            ]
        )
        == 0
    )
    pred = json.loads(capsys.readouterr().out)
    assert pred["total"]["latency_s"] == pytest.approx(ch["latency_s"], rel=1e-9)
    assert pred["total"]["cycles"] == round(ch["latency_s"] * ch["hw"]["clock_mhz"] * 1e6)
    # a rerun trains nothing (the cache) and gives the same front
    again = _run(space_dir, "out2", cache, capsys)
    assert again["trainings"] == 0
    assert _front_key(again) == _front_key(res)


def _front_key(res: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(p["key"], p["accuracy"], p["latency_s"], p["energy_j"]) for p in res["front"]]


def test_codesign_on_a_dask_cluster_gives_the_local_front(
    space_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dask.distributed import LocalCluster

    from autochip.builder.cluster import close_clients

    local = _run(space_dir, "local", space_dir / "cache_l", capsys)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:  # fmt: skip
        dist = _run(space_dir, "dist", space_dir / "cache_d", capsys, "--scheduler",
                    cluster.scheduler_address)  # fmt: skip
        close_clients(cluster.scheduler_address)
    assert dist["trainings"] == local["trainings"] > 0  # trained there, not from a cache
    assert [(p["accuracy"], p["latency_s"], p["energy_j"]) for p in dist["front"]] == [
        (p["accuracy"], p["latency_s"], p["energy_j"]) for p in local["front"]
    ]
    assert np.isclose(dist["chosen"]["latency_s"], local["chosen"]["latency_s"])


def test_codesign_targets_restrict_the_chosen_design(
    space_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = space_dir / "cache"  # the trainings of the first test: only hardware runs here
    base = _run(space_dir, "t0", cache, capsys)
    slowest = max(p["latency_s"] for p in base["front"])
    fastest = min(p["latency_s"] for p in base["front"])
    assert fastest < slowest
    res = _run(space_dir, "t1", cache, capsys, "--latency-target", str(fastest * 1.0000001))
    assert res["chosen"]["latency_s"] <= fastest * 1.0000001 and res["chosen"]["meets_targets"]
    out = space_dir / "t2"
    args = ["codesign", "lenet_digits", *BASE, "--out", str(out), "--cache", str(cache),
            "--space", str(space_dir / "space.yaml"), "--epochs", "1,2",
            "--latency-target", str(fastest / 10)]  # fmt: skip
    assert main(args) == 2
    assert "no measured design meets the targets" in capsys.readouterr().err
    assert not out.exists()


def test_promotion_keeps_slots_for_designs_within_the_loss() -> None:
    """Successive halving's promotion: the reference takes no slot (it trains every rung);
    half the slots go to the fastest candidates within --max-loss of the reference's
    validation accuracy, the rest by non-dominated rank, then crowding distance."""
    from autochip.codesign.search import promote

    def rec(acc: float, obj: float) -> dict[str, Any]:
        return {"accuracy_val": acc, "hardware": {"chosen": {"objective": obj}}}

    ref = rec(0.960, 10.0)
    recs = [ref, rec(0.958, 9.0), rec(0.957, 8.0), rec(0.90, 2.0), rec(0.80, 1.0),
            rec(0.94, 5.0), {"accuracy_val": 0.99, "hardware": {"error": "too big"}}]  # fmt: skip
    # 2 slots: the fastest within 0.5 points (index 2), then the front's fastest (index 4)
    assert promote(recs, 2, ref, 0.005) == [2, 4]
    # 4 slots: both near ones, then the front by objective (1 and 2 are taken)
    assert promote(recs, 4, ref, 0.005) == [2, 1, 4, 3]
    # without a reference: by rank alone (the reference's record competes like any other):
    # the front's two ends, the fastest and the most accurate
    assert promote(recs, 2) == [4, 0]
    # ResNet-8 on pynq-z2 at 1 epoch (2026-12-03): none within the loss; of the three-point
    # front (dense w4/a4, w4/a4 pruned 30 % and 50 %) the ends go on, not the two fastest
    r8 = [rec(0.9494, 2413.8), rec(0.9072, 1446.1), rec(0.8398, 1230.6), rec(0.9244, 820.4),
          rec(0.8770, 652.8), rec(0.8532, 556.8)]  # fmt: skip
    assert promote(r8, 2, r8[0], 0.005) == [5, 3]
    assert 0 not in promote(recs, 6, ref, 0.005) and 6 not in promote(recs, 6, ref, 0.005)

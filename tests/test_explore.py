"""The Chip Builder's search against brute force through the scalar model and the CLI contract.

Authorities: the Pareto front of an exhaustive enumeration, each design costed by the scalar
core model (``core_model.core_cycles`` and ``core_resources``) and by ``predict(fidelity="rtl")``
for energy, must equal the explored front exactly; the chosen design's ``hw`` re-costed with
``autochip predict --fidelity rtl --hw`` must give the same latency, energy and resources.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from autochip.builder.core import core_params
from autochip.builder.explore import explore, pareto_mask
from autochip.builder.space import default_space, parse_budget, space_from_dict
from autochip.cli import main
from autochip.errors import SpecError
from autochip.hw import hardware_spec_from_dict
from autochip.hw.platform import load_platform
from autochip.ir import graph_for
from autochip.predictor import predict
from autochip.predictor.core_batch import core_configs, core_workload, planned_layers
from autochip.predictor.core_model import core_cycles, core_resources

SMALL = {
    "rows": [1, 2, 4],
    "cols": [2, 4, 8],
    "ifmap_kb": [2, 4, 8],
    "weight_kb": [1, 2, 16],
    "ofmap_kb": [1, 2],
    "bus_bytes": [4, 8],  # the AXI bus: up to pynq-z2's DRAM bandwidth (8 bytes per cycle)
}


@pytest.fixture(scope="module")
def lenet() -> object:
    return graph_for("lenet_digits")


def test_explored_front_equals_brute_force_through_the_scalar_model(lenet: object) -> None:
    plat = load_platform("xc7z020")
    wl = core_workload(lenet)  # type: ignore[arg-type]
    space = space_from_dict(SMALL, default_space(wl, plat))
    budget = parse_budget("lut=12000", plat)
    res = explore(wl, plat, space, budget, "latency", progress=False)
    assert res.strategy == "exhaustive" and res.evaluated == space.size == 324
    explored = {int(res.metrics["flat"][i]) for i in res.pareto}

    points: dict[int, tuple[float, float, float]] = {}
    caps = budget.caps
    for flat, (r, c, i, w, o, bus) in enumerate(
        itertools.product(
            *(SMALL[k] for k in ("rows", "cols", "ifmap_kb", "weight_kb", "ofmap_kb", "bus_bytes"))
        )
    ):
        spec = {"pe": {"kind": "mac"}, "array": {"rows": r, "cols": c}, "clock_mhz": 100,
                "buffers": {"ifmap": {"size_kb": i}, "weight": {"size_kb": w},
                            "ofmap": {"size_kb": o}}, "dram": {"bandwidth": bus}}  # fmt: skip
        hw = hardware_spec_from_dict(spec)
        cfg = core_configs([hw])
        try:
            est = predict(lenet, hw, plat, "rtl")  # type: ignore[arg-type]
        except SpecError:
            continue  # the core cannot run the network
        cycles = sum(x.total for x in core_cycles(core_params(hw), planned_layers(wl, cfg, 0)))
        assert cycles == est.total.cycles
        rs = core_resources(core_params(hw), "xilinx")
        use = {"lut": rs.lut, "ff": rs.ff, "dsp": rs.dsp, "bram": rs.bram}
        if any(use[k] > caps[k] for k in use):
            continue
        frac = max(use[k] / caps[k] for k in use)
        points[flat] = (cycles / 100e6, est.total.energy_pj * 1e-12, frac)
    flats = sorted(points)
    assert len(flats) == len(res.metrics["flat"])  # the same designs fit
    pts = np.array([points[f] for f in flats])
    brute = set()
    for a, pa in zip(flats, pts, strict=True):
        dominated = any((pb <= pa).all() and (pb < pa).any() for pb in pts)
        if not dominated:
            brute.add(a)
    assert explored == brute
    assert 3 <= len(brute) < len(flats)
    # and the front helper agrees with the definition on the same points
    assert {flats[i] for i in np.flatnonzero(pareto_mask(np.asarray(pts, dtype=float)))} == brute


# A network of our own as a user writes it (a .py model): its 32 x 32 feature maps need several
# KB per array row, so the small buffers of TILED_SPACE run it whole (6 designs), in bands of
# feature-map tiling (66) or not at all (72), at each bus width.
NET_PY = """
import torch
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 8 * 8, 10),
    ).eval()


def example_input() -> torch.Tensor:
    return torch.zeros(1, 3, 32, 32)
"""
TILED_SPACE = {
    "rows": [1, 2, 4],
    "cols": [4, 8],
    "ifmap_kb": [4, 8, 16, 32],
    "weight_kb": [2, 8],
    "ofmap_kb": [2, 4, 8],
    "bus_bytes": [4, 8],
}
TILED_BUDGET = "lut=14000"


@pytest.fixture(scope="module")
def brute_force(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Every design of TILED_SPACE on pynq-z2 costed one at a time by ``predict(fidelity=
    "rtl")`` (what ``autochip predict --fidelity rtl --hw`` prints), its cycles checked against
    the scalar model on the descriptors the compiler emits (in bands where it tiles), kept
    when it fits the budget with the command's 5 % margin: flat index -> (latency, energy,
    resource fraction, tiled)."""
    from autochip.predictor.core_batch import core_feasible, tiled_layers

    net = tmp_path_factory.mktemp("net") / "mynet.py"
    net.write_text(NET_PY)
    graph = graph_for(str(net))
    plat = load_platform("pynq-z2")
    wl = core_workload(graph)
    caps = parse_budget(TILED_BUDGET, plat).caps
    keys = ("rows", "cols", "ifmap_kb", "weight_kb", "ofmap_kb", "bus_bytes")
    points: dict[int, tuple[float, float, float, bool]] = {}
    for flat, (r, c, i, w, o, bus) in enumerate(itertools.product(*(TILED_SPACE[k] for k in keys))):
        spec = {"pe": {"kind": "mac"}, "array": {"rows": r, "cols": c}, "clock_mhz": 100,
                "buffers": {"ifmap": {"size_kb": i}, "weight": {"size_kb": w},
                            "ofmap": {"size_kb": o}}, "dram": {"bandwidth": bus}}  # fmt: skip
        hw = hardware_spec_from_dict(spec)
        try:
            est = predict(graph, hw, plat, "rtl")
        except SpecError:
            continue  # the core cannot run the network, not even in bands
        cfg = core_configs([hw])
        tiled = not core_feasible(wl, cfg)[0]
        bands = tiled_layers(wl, cfg, 0) if tiled else planned_layers(wl, cfg, 0)
        assert bands is not None
        assert sum(x.total for x in core_cycles(core_params(hw), bands)) == est.total.cycles
        rs = core_resources(core_params(hw), "xilinx")
        use = {"lut": rs.lut, "ff": rs.ff, "dsp": rs.dsp, "bram": rs.bram}
        if any(use[k] * 1.05 > caps[k] for k in use):
            continue
        frac = max(use[k] / caps[k] for k in use)
        points[flat] = (est.total.latency_s, est.total.energy_pj * 1e-12, frac, tiled)
    flats = sorted(points)
    pts = np.array([points[f][:3] for f in flats])
    front = {a for a, pa in zip(flats, pts, strict=True)
             if not any((pb <= pa).all() and (pb < pa).any() for pb in pts)}  # fmt: skip
    return {"net": str(net), "points": points, "front": front}


@pytest.mark.parametrize("objective", ["latency", "throughput", "energy", "edp", "resources"])
def test_explore_cli_equals_brute_force_with_tiled_designs(
    brute_force: dict[str, object],
    objective: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`autochip explore` on a .py model over a small space in which most runnable designs
    tile the feature maps: the Pareto front is exactly the brute force's non-dominated set
    (tiled and untiled designs), the chosen design the brute force's best for --objective,
    and each reported design's latency, energy and resources are predict's."""
    points: dict[int, tuple[float, float, float, bool]] = brute_force["points"]  # type: ignore[assignment]
    brute: set[int] = brute_force["front"]  # type: ignore[assignment]
    assert any(t for *_, t in points.values()) and not all(t for *_, t in points.values())
    assert any(points[f][3] for f in brute)  # tiled designs are on the true front
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(TILED_SPACE))
    assert main(["explore", str(brute_force["net"]), "--platform", "pynq-z2", "--budget",
                 TILED_BUDGET, "--space", str(space), "--objective", objective,
                 "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["evaluated"] == 288 + out["evaluated_tiled"] and out["evaluated_tiled"] > 0
    keys = ("rows", "cols", "ifmap_kb", "weight_kb", "ofmap_kb", "bus_bytes")
    index = {combo: n for n, combo in enumerate(itertools.product(*(TILED_SPACE[k] for k in keys)))}

    def flat(d: dict) -> int:  # type: ignore[type-arg]
        hw = d["hw"]
        b = hw["buffers"]
        return index[(hw["array"]["rows"], hw["array"]["cols"], b["ifmap"]["size_kb"],
                      b["weight"]["size_kb"], b["ofmap"]["size_kb"],
                      int(hw["dram"]["bandwidth"]))]  # fmt: skip

    assert {flat(d) for d in out["pareto"]} == brute
    for d in out["pareto"] + [out["chosen"]]:
        lat, en, frac, tiled = points[flat(d)]
        assert d["latency_s"] == pytest.approx(lat, rel=1e-12)
        assert d["energy_j"] == pytest.approx(en, rel=1e-9)
        assert d["budget_fraction"] == pytest.approx(frac, rel=1e-12) and d["tiled"] == tiled
    value = {
        "latency": lambda p: p[0],
        "throughput": lambda p: p[0],
        "energy": lambda p: p[1],
        "edp": lambda p: p[0] * p[1],
        "resources": lambda p: p[2],
    }[objective]
    best = min(value(p) for p in points.values())
    assert value(points[flat(out["chosen"])]) == pytest.approx(best, rel=1e-9)


def test_search_is_deterministic_and_evolve_finds_the_optimum(lenet: object) -> None:
    plat = load_platform("xc7z045")
    wl = core_workload(lenet)  # type: ignore[arg-type]
    pow2 = [1, 2, 4, 8, 16, 32, 64]
    dims = [1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64]
    grid = {"rows": dims, "cols": dims, "ifmap_kb": pow2, "weight_kb": pow2, "ofmap_kb": pow2}
    space = space_from_dict(grid, default_space(wl, plat))
    budget = parse_budget(None, plat)
    full = explore(wl, plat, space, budget, "edp", strategy="exhaustive", progress=False,
                   tiled_samples=0)  # fmt: skip
    assert full.evaluated == space.size
    # both phases deterministic: 4,000 designs, then 500 that tile the feature maps
    a = explore(wl, plat, space, budget, "edp", samples=4000, seed=3, strategy="evolve",
                tiled_samples=500)  # fmt: skip
    b = explore(wl, plat, space, budget, "edp", samples=4000, seed=3, strategy="evolve",
                tiled_samples=500)  # fmt: skip
    assert a.evaluated == b.evaluated == 4500 and a.evaluated_tiled == 500
    assert a.metrics["flat"][a.chosen] == b.metrics["flat"][b.chosen]
    assert np.array_equal(np.sort(a.metrics["flat"]), np.sort(b.metrics["flat"]))
    best = full.metrics["latency_s"][full.chosen] * full.metrics["energy_j"][full.chosen]
    got = a.metrics["latency_s"][a.chosen] * a.metrics["energy_j"][a.chosen]
    assert got <= best * 1.02  # within 2% of the exhaustive optimum with 10% of the designs


def test_chosen_design_round_trips_through_predict_rtl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SMALL))
    csv = tmp_path / "front.csv"
    args = ["explore", "lenet_digits", "--platform", "pynq-z2", "--budget", "lut=20000,dsp=100",
            "--space", str(space), "--json", "--csv", str(csv)]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"designs", "pareto", "chosen", "baselines", "evaluated", "seconds"} <= set(out)
    assert out["evaluated"] == 324 and csv.is_file()
    # the bus width is searched, in every design's hw; the baselines take the whole bandwidth
    buses = {d["hw"]["dram"]["bandwidth"] for d in out["designs"] + out["pareto"]}
    assert buses <= {4.0, 8.0}
    assert {b["hw"]["dram"]["bandwidth"] for b in out["baselines"] if b["fits"]} == {8.0}
    chosen = out["chosen"]
    assert chosen["resources"]["lut"] <= 20000 and chosen["resources"]["dsp"] <= 100
    hw = tmp_path / "hw.yaml"
    hw.write_text(yaml.safe_dump(chosen["hw"]))
    assert main(["predict", "lenet_digits", "--platform", "pynq-z2", "--hw", str(hw),
                 "--fidelity", "rtl", "--json"]) == 0  # fmt: skip
    est = json.loads(capsys.readouterr().out)
    assert est["total"]["latency_s"] == pytest.approx(chosen["latency_s"], rel=1e-12)
    assert est["total"]["energy_pj"] * 1e-12 == pytest.approx(chosen["energy_j"], rel=1e-9)
    assert {k: est["resources"][k] for k in ("lut", "ff", "dsp", "bram")} == chosen["resources"]
    assert all(b["fits"] is False or b["resources"]["dsp"] <= 100 for b in out["baselines"])


@pytest.mark.parametrize(
    "budget, message",
    [
        ("lut=abc", "lut: expected a number, found 'abc'"),
        ("area_mm2=2", "'area_mm2': expected one of lut, ff, dsp, bram, power_w"),
        ("lut=1e9", "lut: 1e9 exceeds the 53200 the device 'pynq-z2' has"),
        ("dsp=-3", "dsp: expected a positive number"),
        ("lut", "'lut': expected KEY=VALUE"),
        ("lut=100", "no design of the space fits the budget"),
    ],
)
def test_bad_budgets_one_error_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], budget: str, message: str
) -> None:
    csv, png = tmp_path / "f.csv", tmp_path / "f.png"
    args = ["explore", "lenet_digits", "--platform", "pynq-z2", "--budget", budget,
            "--csv", str(csv), "--plot", str(png)]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not csv.exists() and not png.exists()


def test_bad_space_file_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = tmp_path / "s.yaml"
    space.write_text("rows: [0, 4]\ncols: {min: 4, max: 2, step: 1}\nbogus: 3\n")
    assert main(["explore", "lenet_digits", "--platform", "pynq-z2", "--space", str(space)]) == 2
    err = capsys.readouterr().err
    assert "rows: expected values in 1..64, found 0" in err
    assert "cols: expected min <= max and step > 0" in err
    assert "bogus: expected one of" in err


def test_bus_width_in_the_space(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default space holds the powers of two up to the platform's DRAM bandwidth; a
    narrower bus is a slower design of the same array; --space can narrow it, not widen it
    past the platform."""
    wl = core_workload(graph_for("resnet20"))
    for name, buses in (("pynq-z2", (4, 8)), ("zc706", (4, 8, 16)), ("vcu118", (4, 8, 16, 32, 64))):
        assert default_space(wl, load_platform(name)).of("bus_bytes") == buses
    plat = load_platform("vcu118")
    space = space_from_dict({"rows": [8], "cols": [16], "ifmap_kb": [512], "weight_kb": [64],
                             "ofmap_kb": [64]}, default_space(wl, plat))  # fmt: skip
    res = explore(wl, plat, space, parse_budget(None, plat), "latency", progress=False)
    lat = res.metrics["latency_s"][np.argsort(res.metrics["flat"])]
    assert len(lat) == 5 and (np.diff(lat) < 0).all()  # wider is faster, 4 .. 64 bytes
    s = tmp_path / "s.yaml"
    s.write_text("bus_bytes: [8, 16]\n")
    assert main(["explore", "lenet_digits", "--platform", "pynq-z2", "--space", str(s)]) == 2
    assert "bus_bytes: expected powers of two from 4 up to the platform's DRAM bandwidth (8" in (
        capsys.readouterr().err
    )
    s.write_text("bus_bytes: [12]\n")
    assert main(["explore", "lenet_digits", "--platform", "vcu118", "--space", str(s)]) == 2
    assert "bus_bytes: expected powers of two" in capsys.readouterr().err


def _fmax_model(monkeypatch: pytest.MonkeyPatch, a: float, b: float) -> None:
    """An ECP5 Fmax model ``a + b log2(R C)`` in place of the fitted one (core_model reads
    it through ``_control_model``, the batch model and the search too)."""
    from autochip.predictor import core_model

    model = dict(core_model._control_model())
    targets = dict(model["targets"])
    targets["ecp5"] = dict(targets["ecp5"], fmax={"a": a, "b": b, "measured": {"x": a}})
    monkeypatch.setattr(core_model, "_control_model", lambda: dict(model, targets=targets))


def test_clock_searched_within_the_predicted_fmax(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On ECP5 (an Fmax model) the clock is searched over targets up to the platform's clock,
    each design only at targets within its Fmax as ``core_model.fmax_mhz`` predicts it; the
    latency follows the clock; the JSON, CSV and table carry ``hw.clock_mhz``. Xilinx and
    ASIC platforms (no Fmax model) keep the platform's clock; --space lists clocks up to the
    platform's, not above."""
    from autochip.builder.space import clock_targets
    from autochip.predictor.core_model import fmax_mhz

    _fmax_model(monkeypatch, 60.0, -4.0)  # 1x1: 60 MHz, 4x4: 44, 8x8: 36
    plat = load_platform("lfe5u-85f")  # 50 MHz
    assert clock_targets(plat) == (12.5, 25.0, 37.5, 50.0)
    for name in ("pynq-z2", "vcu118", "asic-45nm"):
        p = load_platform(name)
        assert clock_targets(p) == (float(p.default_hw.clock_mhz),)
    wl = core_workload(graph_for("lenet_digits"))
    grid = {"rows": [1, 4, 8], "cols": [1, 4, 8], "ifmap_kb": [32], "weight_kb": [16],
            "ofmap_kb": [2], "bus_bytes": [4]}  # fmt: skip
    space = space_from_dict(grid, default_space(wl, plat))
    res = explore(wl, plat, space, parse_budget(None, plat), "latency", progress=False)
    m = res.metrics
    cfg = space.configs(m["flat"])
    by_array: dict[tuple[int, int], list[float]] = {}
    cycles: dict[tuple[int, int], set[int]] = {}
    for i in range(len(m["flat"])):
        core = core_params(hardware_spec_from_dict(cfg.spec(i)))
        clock, fmax = float(cfg.clock_mhz[i]), fmax_mhz(core, "ecp5")
        assert fmax is not None and clock <= fmax and m["fmax_mhz"][i] == fmax
        key = (int(cfg.rows[i]), int(cfg.cols[i]))
        by_array.setdefault(key, []).append(clock)
        cycles.setdefault(key, set()).add(int(m["cycles"][i]))
        assert m["latency_s"][i] == pytest.approx(m["cycles"][i] / (clock * 1e6), rel=1e-12)
    # every target within the Fmax, none above: 4x4 (44 MHz) runs at 12.5 .. 37.5 MHz
    assert sorted(by_array[(4, 4)]) == [12.5, 25.0, 37.5]
    assert sorted(by_array[(8, 8)]) == [12.5, 25.0]  # 36 MHz
    assert sorted(by_array[(1, 1)]) == [12.5, 25.0, 37.5, 50.0]
    assert all(len(c) == 1 for c in cycles.values())  # the clock changes time, not cycles
    chosen = space.configs(m["flat"][res.chosen : res.chosen + 1])
    best = min(m["latency_s"])
    assert m["latency_s"][res.chosen] == best and chosen.clock_mhz[0] in (25.0, 37.5, 50.0)
    # the CLI: JSON hw.clock_mhz and fmax_mhz, CSV and table columns
    s = tmp_path / "s.yaml"
    s.write_text(yaml.safe_dump(grid))
    csv = tmp_path / "f.csv"
    args = ["explore", "lenet_digits", "--platform", "ulx3s-85f", "--space", str(s)]
    assert main([*args, "--json", "--csv", str(csv)]) == 0
    out = json.loads(capsys.readouterr().out)
    for d in out["pareto"] + [b for b in out["baselines"] if b["fits"]]:
        assert d["hw"]["clock_mhz"] <= d["fmax_mhz"]
    assert any(d["hw"]["clock_mhz"] < 50 for d in out["pareto"])
    assert "clock_mhz" in csv.read_text().splitlines()[0]
    assert main(args) == 0
    assert " MHz " in capsys.readouterr().out
    s.write_text("clock_mhz: [50, 125]\n")
    assert main(["explore", "lenet_digits", "--platform", "pynq-z2", "--space", str(s)]) == 2
    assert "clock_mhz: expected clocks up to the platform's 100 MHz" in capsys.readouterr().err


def test_listed_clocks_meet_a_power_budget() -> None:
    """A clock listed with --space on a platform without an Fmax model: a power budget that
    the 100 MHz design exceeds leaves the same array at a lower clock."""
    plat = load_platform("xc7z020")
    wl = core_workload(graph_for("lenet_digits"))
    grid = {"rows": [8], "cols": [16], "ifmap_kb": [8], "weight_kb": [16], "ofmap_kb": [2],
            "bus_bytes": [8], "clock_mhz": [25, 50, 100]}  # fmt: skip
    space = space_from_dict(grid, default_space(wl, plat))
    free = explore(wl, plat, space, parse_budget(None, plat), "latency", progress=False)
    power = dict(zip(free.metrics["flat"].tolist(), free.metrics["power_w"].tolist(), strict=True))
    assert power[0] < power[1] < power[2]  # slower clock, less power
    cap = (power[1] + power[2]) / 2
    res = explore(wl, plat, space, parse_budget(f"power_w={cap}", plat), "latency", progress=False)
    assert sorted(res.metrics["flat"].tolist()) == [0, 1]
    assert int(res.metrics["flat"][res.chosen]) == 1  # 50 MHz: the fastest within the budget


def test_tiled_search_costs_designs_that_need_feature_map_tiling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``explore --tiled``: designs whose buffers hold only bands of the feature maps are
    searched (without it none runs); the chosen design's cycles equal ``core_model`` on the
    program ``compile_model`` emits for it, in bands."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rtl_tests" / "core"))
    from core_models import tiled_model

    from autochip.builder.compiler import compile_model
    from autochip.builder.explore import ExploreError
    from autochip.builder.explore_build import integer_workload
    from autochip.reference import save_integer_model

    model = tiled_model()
    npz = tmp_path / "tiled.npz"
    save_integer_model(model, npz)
    s = tmp_path / "s.yaml"
    s.write_text(yaml.safe_dump({"rows": [2, 4], "cols": [4, 8], "ifmap_kb": [0.5, 1],
                                 "weight_kb": [1, 4], "ofmap_kb": [0.25, 0.5],
                                 "bus_bytes": [4, 8]}))  # fmt: skip
    args = ["explore", str(npz), "--platform", "pynq-z2", "--space", str(s), "--json"]
    wl = integer_workload(model, "tiled")
    space = space_from_dict(yaml.safe_load(s.read_text()), default_space(wl, load_platform(
        "xc7z020")))  # fmt: skip
    with pytest.raises(ExploreError, match="no design of the space fits"):
        explore(wl, load_platform("xc7z020"), space, parse_budget(None, load_platform("xc7z020")),
                progress=False, tiled_samples=0)  # fmt: skip
    assert main([*args, "--tiled"]) == 0
    out = json.loads(capsys.readouterr().out)
    # without --tiled the second phase costs every design that needs tiling, and says so
    assert main(args) == 0
    auto = json.loads(capsys.readouterr().out)
    assert auto["chosen"] == out["chosen"] and "tile them" in auto["notes"][0]
    assert auto["evaluated"] == 64 + auto["evaluated_tiled"] and out["evaluated"] == 64
    assert {d["id"]: d["hw"] for d in auto["pareto"]} == {d["id"]: d["hw"] for d in out["pareto"]}
    assert main([*args, "--tiled-samples", "0"]) == 2
    assert "no design of the space fits" in capsys.readouterr().err
    chosen = out["chosen"]
    core = core_params(hardware_spec_from_dict(chosen["hw"]))
    prog = compile_model(model, core)
    assert any("@" in lay.name for lay in prog.layers)  # it runs in bands
    assert chosen["cycles"] == sum(c.total for c in core_cycles(core, prog.layers))


def test_build_search_includes_tiled_designs(monkeypatch: pytest.MonkeyPatch) -> None:
    """``autochip build --platform`` without ``--hw`` searches as ``explore`` does, tiled
    designs in its second phase: with the space narrowed to buffers that hold no layer's
    feature maps whole, the chosen core runs the network in bands, and its cycles are the
    scalar model's on the program the compiler emits."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rtl_tests" / "core"))
    from core_models import tiled_model

    from autochip.builder import explore_build
    from autochip.builder.compiler import compile_model

    small = {"rows": [2, 4], "cols": [4, 8], "ifmap_kb": [0.5, 1], "weight_kb": [1, 4],
             "ofmap_kb": [0.25, 0.5], "bus_bytes": [4, 8]}  # fmt: skip
    real = explore_build.default_space
    monkeypatch.setattr(explore_build, "default_space",
                        lambda wl, plat: space_from_dict(small, real(wl, plat)))  # fmt: skip
    model = tiled_model()
    hw, d = explore_build.choose_core(model, "pynq-z2", "tiled")
    assert d["tiled"] and hw.rows == d["hw"]["array"]["rows"]
    core = core_params(hw)
    prog = compile_model(model, core)
    assert any("@" in lay.name for lay in prog.layers)  # it runs in bands
    assert d["cycles"] == sum(c.total for c in core_cycles(core, prog.layers))


def test_baselines_tile_where_whole_feature_maps_do_not_fit() -> None:
    """On pynq-z2 no core holds ResNet-18's feature maps whole (one ifmap copy per array row
    exceeds the block RAM), so the expert baselines tile them: each fits the device with the
    command's margin, runs in bands, and is costed as ``predict --fidelity rtl`` costs it."""
    from autochip.builder.baselines import baselines, design_dict
    from autochip.predictor.core_batch import core_feasible

    graph = graph_for("resnet18")
    plat = load_platform("pynq-z2")
    wl = core_workload(graph)
    space = default_space(wl, plat)
    budget = parse_budget(None, plat, 0.05)
    got = baselines(wl, plat, space, budget)
    fits = [b for b in got if b.metrics is not None and b.space is not None]
    assert {b.name for b in fits} >= {"largest-square", "tpu-like", "shidiannao-like"}
    for b in fits:
        assert b.space is not None and b.metrics is not None
        d = design_dict(b.space, b.metrics, None, plat, b.name)
        hw = hardware_spec_from_dict(d["hw"])
        assert d["tiled"] and not core_feasible(wl, core_configs([hw]))[0]
        assert "feature maps tiled" in b.note
        caps = budget.caps
        assert all(d["resources"][k] * 1.05 <= caps[k] for k in ("lut", "ff", "dsp", "bram"))
        est = predict(graph, hw, plat, "rtl")
        assert d["latency_s"] == pytest.approx(est.total.latency_s, rel=1e-12)
        assert d["energy_j"] == pytest.approx(est.total.energy_pj * 1e-12, rel=1e-9)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--platform", "pynq-z2", "--budget", "lut=abc,dsp=1e9"],
         "lut: expected a number, found 'abc'"),
        (["--platform", "pynq-z2", "--budget", "dsp=2,bram=1"],
         "no design of the space fits the budget (lut=53200, ff=106400, dsp=2, bram=1)"),
        (["--hw", "rtl_tests/core/core_small8x8.yaml", "--budget", "lut=1000"],
         "--budget: expected with --platform NAME"),
        (["--hw", "rtl_tests/core/core_small8x8.yaml", "--platform", "pynq-z2", "--budget",
          "lut=1000"], "--budget: expected with --platform NAME and no --hw"),
        (["--platform", "ice40hx8k", "--budget", "lut=1000"],
         "--budget: expected a platform with a whole-core resource model"),
        (["--platform", "nosuch"], "found unknown platform 'nosuch'"),
    ],
)  # fmt: skip
def test_build_platform_bad_budget_one_error_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    """``autochip build --platform NAME --budget ... --out DIR``: a bad or impossible budget is
    one error, exit 2, and DIR is not created."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rtl_tests" / "core"))
    from core_models import tiled_model

    from autochip.reference import save_integer_model

    npz = tmp_path / "tiled.npz"
    save_integer_model(tiled_model(), npz)
    out = tmp_path / "build"
    root = Path(__file__).resolve().parents[1]
    flags = [str(root / f) if f.endswith(".yaml") else f for f in flags]
    assert main(["build", str(npz), *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("error:") == 1
    assert not out.exists()


@pytest.mark.parametrize("w_bits,a_bits", [(4, 4), (4, 5), (3, 8), (8, 3)])
def test_integer_model_pe_widths_are_the_narrowest_that_compile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], w_bits: int, a_bits: int
) -> None:
    """An integer model's core gets the narrowest PEs that hold the integers they read
    (weights; the input and the outputs a later layer's PEs read, not the logits): the Chip
    Builder
    (``explore`` of the .npz) searches cores of those widths, the
    chosen design compiles the model, and one bit less in either width does not."""
    import sys
    from dataclasses import replace

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rtl_tests" / "core"))
    from core_models import narrow_model, random_model

    from autochip.builder.compiler import CompileError, compile_model
    from autochip.builder.explore_build import integer_workload, pe_widths
    from autochip.reference import save_integer_model

    model = narrow_model(w_bits, a_bits)
    assert pe_widths(model) == (max(a_bits, 2), max(w_bits, 2))
    assert pe_widths(random_model()) == (8, 8)
    wl = integer_workload(model, "narrow")
    assert (wl.a_bits, wl.w_bits) == (a_bits, w_bits)
    npz = tmp_path / "narrow.npz"
    save_integer_model(model, npz)
    assert main(["explore", str(npz), "--platform", "pynq-z2", "--samples", "2000", "--json"]) == 0
    chosen = json.loads(capsys.readouterr().out)["chosen"]
    pe = chosen["hw"]["pe"]
    assert (pe["a_bits"], pe["w_bits"]) == (a_bits, w_bits)
    hw = chosen["hw"]
    compile_model(model, core_params(hardware_spec_from_dict(hw)))
    for field in ("a_bits", "w_bits"):
        if hw["pe"][field] > 2:
            less = {**hw, "pe": {**hw["pe"], field: hw["pe"][field] - 1}}
            with pytest.raises(CompileError, match=r"do not fit|does not fit"):
                compile_model(model, core_params(hardware_spec_from_dict(less)))
    # the logits and the add-only branch are int8 (bytes no PE reads): the core stays narrow;
    # one int8 tensor that a PE reads makes the whole core int8
    fc, pw = [op for op in model.ops if getattr(op, "name", "") in ("fc", "pw")]
    assert (fc.requant.lo, fc.requant.hi) == (pw.requant.lo, pw.requant.hi) == (-128, 127)
    ops = [replace(op, requant=replace(op.requant, hi=127)) if op.name == "c5" else op
           for op in model.ops]  # fmt: skip
    assert pe_widths(replace(model, ops=tuple(ops)))[0] == 8

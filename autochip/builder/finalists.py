"""Verify the search's winners: synthesise the top-k cores with Yosys, simulate the chosen one.

:func:`verify_finalists` renders each finalist's whole core (``render_core``), synthesises it
for the platform's target (``synth_design``: resources, no latches; Fmax with nextpnr on ECP5),
compares the synthesised LUT/FF/DSP/BRAM with the core model's prediction and drops finalists
that exceed the budget. With a Dask scheduler the syntheses run on the cluster.
:func:`simulate_chosen` builds the chosen core for an integer model and runs ``autochip sim``'s
code path (small models: a whole-network cocotb simulation takes minutes).
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

__all__ = ["simulate_chosen", "synth_one", "verify_finalists"]

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
    each entry: predicted vs synthesised resources, relative errors, fits the budget or not.
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
        if s.get("fmax_mhz"):
            summary += f", Fmax {s['fmax_mhz']:.1f} MHz"
        summary += "" if fits else " — over budget, dropped"
        report.append({"id": d["id"], "hw": d["hw"], "predicted": pred, "synthesised": got,
                       "error": err, "fits": fits, "fmax_mhz": s.get("fmax_mhz"),
                       "summary": summary})  # fmt: skip
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


def simulate_chosen(model: str, hw: dict[str, Any]) -> dict[str, Any]:
    """Build the chosen core for the integer model ``model`` (``.npz`` or its ``.pt``) and
    simulate it on two inputs: measured vs predicted cycles, bit-exactness."""
    from autochip.builder.core_build import build_core
    from autochip.builder.core_sim import simulate_core
    from autochip.commands.build import _integer_model, default_inputs

    im = _integer_model(model)
    spec = hardware_spec_from_dict(hw, "chosen")
    work = Path(tempfile.mkdtemp(prefix="autochip-explore-"))
    x = default_inputs(im, 2)
    res = build_core(im, spec, work / "build", x, "explore --simulate")
    rep = simulate_core(res.out_dir, im, x, "verilator")
    out: dict[str, Any] = rep.as_dict()
    out["build_dir"] = str(res.out_dir)
    return out

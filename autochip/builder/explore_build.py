"""``autochip build MODEL --platform NAME`` without ``--hw``: search, then build the chosen core.

An integer model (``.npz``) has no AccelGraph, so its core workload is read from the compiler
itself: the model is compiled once for a probe core (1 x 1 array, buffers large enough for any
layer) and the descriptor fields that do not depend on the core (``in_len t kg c p q kr ks``,
groups, which tensor each layer reads and where each tensor lies) become the
:class:`CoreWorkload` the search costs (a 1 x 1 array merges no groups, so the layers are read
unmerged and the search merges them per core as the compiler does). The PE widths are the
narrowest signed operands that hold the integers the PEs read (:func:`pe_widths`): a low-bit
network gets narrow PEs (its int8 logits are stored as bytes), one int8 layer makes the core
int8; the probe compilation with those widths checks them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import yaml

from autochip.builder.compiler import compile_model, pe_operands
from autochip.builder.core import core_params
from autochip.builder.explore import explore
from autochip.builder.params import BIT_RANGE
from autochip.builder.space import default_space, parse_budget
from autochip.hw.platform import load_platform
from autochip.hw.spec import HardwareSpec, hardware_spec_from_dict
from autochip.predictor.core_batch import CoreWorkload
from autochip.predictor.core_model import RESOURCE_TARGETS
from autochip.reference import ComputeOp, IntegerModel, RescaleOp

__all__ = ["choose_core", "integer_workload", "pe_widths", "spec_yaml"]

_PROBE_KB = 65536.0


def _signed_bits(lo: int, hi: int) -> int:
    """The fewest bits (at least the PEs' minimum) of a signed integer holding ``lo..hi``."""
    b = BIT_RANGE[0]
    while not -(2 ** (b - 1)) <= lo <= hi < 2 ** (b - 1):
        b += 1
    return b


def pe_widths(model: IntegerModel) -> tuple[int, int]:
    """``(a_bits, w_bits)`` of the narrowest PEs that run ``model`` as the compiler checks it:
    the weights of every mac/adder layer (xnor layers' +-1 run on a mac as 2-bit operands),
    and the ranges of the tensors a PE reads (:func:`~autochip.builder.compiler.pe_operands`:
    the input, requantised and rescaled outputs that feed a later layer; the logits and other
    tensors no PE reads are stored as bytes whatever the PEs). An adder PE takes one width for
    both."""
    feeds = pe_operands(model)
    a = _signed_bits(model.input_lo, model.input_hi) if model.input_name in feeds else 2
    w = BIT_RANGE[0]
    adder = False
    for op in model.ops:
        if isinstance(op, ComputeOp):
            adder = adder or op.kind == "adder"
            if op.weight.size:
                w = max(w, _signed_bits(int(op.weight.min()), int(op.weight.max())))
            if op.requant is not None and op.output in feeds:
                a = max(a, _signed_bits(op.requant.lo, op.requant.hi))
        elif isinstance(op, RescaleOp) and op.output in feeds:
            a = max(a, _signed_bits(op.lo, op.hi))
    if adder:
        a = w = max(a, w)
    return a, w


def integer_workload(model: IntegerModel, name: str = "model") -> CoreWorkload:
    """The core workload of an integer model, read from one compilation on a probe core whose
    PEs are :func:`pe_widths` wide."""
    a_bits, w_bits = pe_widths(model)
    adder = any(isinstance(op, ComputeOp) and op.kind == "adder" for op in model.ops)
    probe = hardware_spec_from_dict(
        {
            "name": "probe",
            "pe": {
                "kind": "adder" if adder else "mac",
                "dtype": "int",
                "w_bits": w_bits,
                "a_bits": a_bits,
                "acc_bits": 32,
            },
            "array": {"rows": 1, "cols": 1},
            "buffers": {k: {"size_kb": _PROBE_KB} for k in ("ifmap", "weight", "ofmap")},
        }
    )
    prog = compile_model(model, core_params(probe))
    order = [prog.input_name] + [lay.output for lay in prog.layers]
    order += [n for n in prog.tensors if n not in order]  # padded / concatenated tensors
    by_addr: dict[int, int] = {}
    for i, n in enumerate(order):
        by_addr.setdefault(prog.tensors[n][0], i)
    base = min(a for a, _ in prog.tensors.values())
    L = len(prog.layers)

    def col(fn: Any) -> np.ndarray:
        return np.array([fn(lay) for lay in prog.layers], dtype=np.int64)

    vector = np.array([lay.mode == "vector" for lay in prog.layers])
    kg = col(lambda x: x.get("kg") or 1)
    ntiles = col(lambda x: x.get("ntiles"))
    groups = np.where(vector, 1, ntiles // np.maximum(kg, 1))
    macs = np.where(vector, 0, col(lambda x: x.get("c") * x.get("pq") * x.get("t")))
    return CoreWorkload(
        name=name,
        names=tuple(lay.name for lay in prog.layers),
        kinds=tuple(lay.kind for lay in prog.layers),
        vector=vector,
        in_len=col(lambda x: x.get("in_len")),
        t=np.where(vector, 1, col(lambda x: x.get("t"))),
        kg=np.where(vector, 1, kg),
        groups=groups,
        c=col(lambda x: x.get("c")),
        p=col(lambda x: x.get("p") or 1),
        q=col(lambda x: x.get("q") or 1),
        kr=col(lambda x: x.get("kr") or 1),
        ks=col(lambda x: x.get("ks") or 1),
        src=np.array([by_addr[lay.get("in_addr")] for lay in prog.layers], dtype=np.int64),
        src2=np.array(
            [by_addr[lay.get("in2_addr")] if lay.get("in2_addr") else -1 for lay in prog.layers],
            dtype=np.int64,
        ),
        tensor_bytes=np.array([int(np.prod(prog.tensors[n][1])) for n in order], dtype=np.int64),
        macs=macs[:L],
        w_bits=w_bits,
        a_bits=a_bits,
        adder=adder,
        tensor_off=np.array([prog.tensors[n][0] - base for n in order], dtype=np.int64),
        merge=np.array(
            [
                lay.mode == "mac" and lay.kind == "conv" and g > 1
                for lay, g in zip(prog.layers, groups, strict=True)
            ]
        ),
        h=np.where(vector, 1, col(lambda x: x.get("h") or 1)),
        sh=np.where(vector, 1, col(lambda x: x.get("sh") or 1)),
        ph=np.where(vector, 0, col(lambda x: -x.get("oy0"))),
    )


def choose_core(
    model: IntegerModel, platform_name: str, name: str = "model", budget: str | None = None
) -> tuple[HardwareSpec, dict[str, Any]]:
    """Search the default space for ``model`` on the platform (objective latency, the device
    as budget, or ``budget``: ``--budget`` text; designs that tile the feature maps in
    ``explore``'s second phase) and return the chosen core's spec and its design dict."""
    from autochip.builder.baselines import design_dict

    platform = load_platform(platform_name)
    wl = integer_workload(model, name)
    dev = platform.device
    if dev is not None and dev.synth_target not in RESOURCE_TARGETS:
        return _default_core(wl, platform, platform_name)
    space = default_space(wl, platform)
    budget_ = parse_budget(budget, platform, 0.05)
    res = explore(wl, platform, space, budget_, "latency", progress=False)
    d = design_dict(space, res.metrics, res.chosen, platform, f"{platform.name}-searched")
    return hardware_spec_from_dict(d["hw"], f"search for {platform_name}"), d


def _default_core(
    wl: CoreWorkload, platform: Any, platform_name: str
) -> tuple[HardwareSpec, dict[str, Any]]:
    """Devices without a whole-core resource model (iCE40): the platform default's array
    (at most 16 x 16) and buffers as an output-stationary core of the model's PE widths, not
    searched."""
    d = platform.default_hw
    spec = {
        "name": f"{platform.name}-default-core",
        "pe": {"kind": "adder" if wl.adder else "mac", "dtype": "int", "w_bits": wl.w_bits,
               "a_bits": wl.a_bits, "acc_bits": 32},
        "array": {"rows": min(d.rows, 16), "cols": min(d.cols, 16)},
        "dataflow": "os",
        "buffers": {k: {"size_kb": d.buffer(k).size_bytes / 1024}
                    for k in ("ifmap", "weight", "ofmap")},
        "clock_mhz": d.clock_mhz,
    }  # fmt: skip
    note = {"hw": spec, "latency_s": float("nan"), "energy_j": float("nan"),
            "note": "no whole-core resource model for this device: the platform default, "
                    "not searched"}  # fmt: skip
    return hardware_spec_from_dict(spec, f"--platform {platform_name}"), note


def spec_yaml(d: dict[str, Any]) -> str:
    """The chosen design's ``hw`` as an editable ``--hw`` YAML file."""
    if "note" in d:
        head = f"# {d['note']}\n"
    else:
        head = (
            f"# chosen by autochip's design-space search: latency {d['latency_s'] * 1e3:.4g} ms, "
            f"energy {d['energy_j'] * 1e3:.4g} mJ per inference (core model)\n"
        )
    return head + yaml.safe_dump(d["hw"], sort_keys=False)

"""The vector engine's R-lane walk, executed in numpy from the descriptor: no simulator.

Authority: :func:`autochip.reference.run`. :func:`lane_walk` does what ``templates/core_main.v``
does with a vector descriptor, step by step: a cursor steps by one output from
(``oy0``, ``ox0``, ``base0``) and is shifted into the R lanes; each group, every lane walks the
shared KR x KS window from its origin in the ifmap image (bounds-checked unless ``nobounds``),
accumulates (max, or sum of byte x multiplier), round-shifts and clamps; then every lane steps
by R outputs with the compiler's constants (``ar_*``, ``wrap_*``, ``v_oyw``, ``v_cwrap``: the
carries of x into y and of y into the channel), the last group masked to ``v_last`` lanes.
Every vector layer of :func:`core_models.vector_model` (max pooling with padding and ceil
mode, a residual add, a subsample, average and global average pooling, a one-input rescale),
the ResNet option-A shortcut model and the odd-shape network must equal the reference for
R = 1, 3, 5, 8 and 16, and the cycle model's group count must be the walk's. Bit-exactness of
the RTL itself is in ``rtl_tests/core`` (``vector-r3`` in ``test_core_sim.py``).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from autochip.builder.compiler import CompiledLayer, Program, compile_model
from autochip.builder.core import core_params
from autochip.hw import load_hardware_spec
from autochip.predictor.core_model import FLUSH_CYCLES, core_cycles
from autochip.reference import IntegerModel, run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "rtl_tests" / "core"))
sys.path.insert(0, str(ROOT / "tests"))
from core_models import random_inputs, random_model, vector_model  # noqa: E402
from test_compiler_ops import shortcut_model  # noqa: E402

SPEC = ROOT / "examples" / "hw" / "core16x16_int8.yaml"


def lane_walk(f: dict[str, int], rows: int, ifmap: np.ndarray) -> tuple[np.ndarray, int]:
    """The C*P*Q output bytes of vector descriptor ``f`` on ``rows`` lanes, and its groups."""
    n, kr, ks, h, w = f["c_pq"], f["kr"], f["ks"], f["h"], f["w"]
    vmode, nobounds = f["op"] >> 4 & 3, f["op"] >> 6 & 1
    oxt, oyt = f["ox0"] + f["wrap_ox"], f["oy0"] + f["v_oyw"]

    def step(lane: tuple[int, int, int], dx: int, dy: int, db: int) -> tuple[int, int, int]:
        y, x, b = lane
        c1 = x + dx >= oxt
        x = x + dx - (f["wrap_ox"] if c1 else 0)
        y1 = y + dy + (f["sh"] if c1 else 0)
        c2 = y1 >= oyt
        y = y1 - (f["v_oyw"] if c2 else 0)
        return y, x, b + db + (f["wrap_base"] if c1 else 0) + (f["v_cwrap"] if c2 else 0)

    cursor = (f["oy0"], f["ox0"], f["base0"])
    lanes = []
    for _ in range(rows):  # S_VINIT: the cursor steps by one output and is shifted in
        lanes.append(cursor)
        cursor = step(cursor, f["sw"], 0, f["sw"])
    out = np.zeros(f["npt"] * rows, dtype=np.int64)
    for g in range(f["npt"]):
        for i, (y, x, b) in enumerate(lanes):
            acc = -256 if vmode == 0 else 0
            for r in range(kr):
                for s in range(ks):
                    if not nobounds and not (0 <= y + r < h and 0 <= x + s < w):
                        continue
                    v = int(ifmap[(b + r * f["wstep"] + s) % ifmap.size])
                    acc = max(acc, v) if vmode == 0 else acc + v * f["mult1" if r else "mult0"]
            if vmode != 0:
                acc = (acc + (1 << (f["shift"] - 1))) >> f["shift"]
            out[g * rows + i] = min(max(acc, f["lo"]), f["hi"])
        lanes = [step(lane, f["ar_ox"], f["ar_oy"], f["ar_base"]) for lane in lanes]
    assert 1 <= f["v_last"] <= rows and (f["npt"] - 1) * rows + f["v_last"] == n
    return out[:n], f["npt"]


def _ifmap(prog: Program, lay: CompiledLayer, mem: np.ndarray, bus: int) -> np.ndarray:
    """The ifmap copy as the DMA fills it (or an earlier layer forwarded it): from the bus word
    of in_addr at in_ifofs (and of in2_addr at in2_ofs)."""
    f = lay.fields
    img = np.zeros(1 << 16, dtype=np.int64)
    a0 = f["in_addr"] // bus * bus
    ln = f["in_addr"] % bus + f["in_len"]
    img[f["in_ifofs"] : f["in_ifofs"] + ln] = mem[a0 : a0 + ln]
    if f["in2_addr"]:
        a2 = f["in2_addr"] // bus * bus
        ln2 = f["in2_addr"] % bus + f["in_len"]
        img[f["in2_ofs"] : f["in2_ofs"] + ln2] = mem[a2 : a2 + ln2]
    return img


MODELS = {"vector": vector_model, "shortcut": shortcut_model, "odd": random_model}


@pytest.mark.parametrize("rows", [1, 3, 5, 8, 16])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_lane_walk_equals_the_reference(name: str, rows: int) -> None:
    model: IntegerModel = MODELS[name]()
    core = replace(core_params(load_hardware_spec(SPEC)), rows=rows)
    prog = compile_model(model, core)
    x = random_inputs(model, 1, seed=rows)[0]
    _, ref = run(model, x[None], dump=True)
    mem = np.frombuffer(prog.dram, dtype=np.int8).astype(np.int64).copy()
    for lay in prog.layers:  # every tensor in DRAM as the core leaves it
        if lay.output in ref:
            a = lay.get("out_addr")
            mem[a : a + ref[lay.output].size] = ref[lay.output].reshape(-1)
    mem[prog.input_addr : prog.input_addr + x.size] = x.reshape(-1)
    cycles = core_cycles(core, prog.layers)
    vec = [(i, lay) for i, lay in enumerate(prog.layers) if lay.mode == "vector"]
    assert vec
    for i, lay in vec:
        got, groups = lane_walk(lay.fields, rows, _ifmap(prog, lay, mem, core.bus_bytes))
        assert np.array_equal(got, ref[lay.output].reshape(-1)), (name, rows, lay.name)
        f = lay.fields
        assert cycles[i].compute == rows + groups * f["kr"] * f["ks"] + FLUSH_CYCLES

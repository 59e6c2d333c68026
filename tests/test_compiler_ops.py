"""The compiler's option-A shortcut ops (strided subsampling, channel zero padding): no simulator.

Authority: :func:`autochip.reference.run`. The DRAM image is "executed" in numpy the way the
core does it (each descriptor writes its reference output at its ``out_addr``, NCHW bytes); then
every tensor of the memory map, read back from its address, must equal the reference's tensor.
This checks the address arithmetic of the zero-cost channel padding (an input placed inside its
padded tensor, zero bytes that nothing overwrites). The descriptors and the cycle model of the
subsampling (a strided 1x1 vector max) are checked too; bit-exactness on the RTL is in
``rtl_tests/core/test_resnet20.py``.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from autochip.builder.compiler import CompileError, Program, compile_model, merge_groups
from autochip.builder.core import CoreParams, core_params
from autochip.builder.program import VMODE_MAX
from autochip.hw import load_hardware_spec
from autochip.predictor.core_model import FLUSH_CYCLES, core_cycles
from autochip.reference import (
    ComputeOp,
    FlattenOp,
    IntegerModel,
    PadOp,
    Requant,
    RescaleOp,
    SubsampleOp,
    run,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "rtl_tests" / "core"))
from core_models import random_inputs, random_model  # noqa: E402

DEMO = ROOT / "examples" / "hw" / "demo_os8x8_int8.yaml"


def _core() -> CoreParams:
    return core_params(load_hardware_spec(DEMO))


def _conv(rng: np.random.Generator, name: str, src: str, k: int, c: int, stride: int) -> ComputeOp:
    w = rng.integers(-127, 128, size=(k, c, 3, 3)).astype(np.int64)
    req = Requant(rng.integers(2**14, 2**16, size=k), rng.integers(20, 23, size=k), 0, 127)
    return ComputeOp(name, src, name, "mac", "conv", w, rng.integers(-900, 900, size=k),
                     stride=(stride, stride), padding=(1, 1), requant=req)  # fmt: skip


def shortcut_model(pad_input: bool = False) -> IntegerModel:
    """A stride-2 basic block with an option-A shortcut on a 3 x 7 x 6 input (odd sizes);
    ``pad_input`` pads the model input itself (placed inside its padded tensor)."""
    rng = np.random.default_rng(3)
    ops: list[object] = [
        _conv(rng, "c1", "input", 5, 3, 1),  # 5 x 7 x 6
        _conv(rng, "c2", "c1", 9, 5, 2),  # 9 x 4 x 3
        SubsampleOp("sub", "c1", "sub", (2, 2)),  # 5 x 4 x 3
        PadOp("pad", "sub", "pad", (1, 3, 0, 0, 0, 0)),  # 9 x 4 x 3
        RescaleOp("add", ("c2", "pad"), "add", (3 << 20, 5 << 19), 22, 0, 127),
    ]
    if pad_input:
        ops += [
            SubsampleOp("sub_in", "input", "sub_in", (2, 2)),  # 3 x 4 x 3
            PadOp("pad_in", "input", "pad_in", (2, 4, 0, 0, 0, 0)),  # 9 x 7 x 6
            _conv(rng, "c3", "pad_in", 9, 9, 2),  # 9 x 4 x 3
            RescaleOp("add2", ("add", "c3"), "add2", (1 << 20, 1 << 20), 21, 0, 127),
        ]
    last = "add2" if pad_input else "add"
    ops.append(FlattenOp("flat", last, "flat"))
    shape = (1, 3, 7, 6)
    return IntegerModel("input", shape, 1 / 64, -128, 127, tuple(ops), "flat", 1.0)  # type: ignore[arg-type]


def _execute(prog: Program, model: IntegerModel, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the memory map as the core leaves it in DRAM (reference outputs)."""
    _, ref = run(model, x[None], dump=True)
    mem = np.frombuffer(prog.dram, dtype=np.int8).astype(np.int64).copy()
    mem[prog.input_addr : prog.input_addr + x.size] = x.reshape(-1)
    for lay in prog.layers:
        out = ref[lay.output].reshape(-1)
        a = lay.get("out_addr")
        mem[a : a + out.size] = out
    return {
        name: mem[a : a + int(np.prod(shape))].reshape(shape)
        for name, (a, shape) in prog.tensors.items()
    }


@pytest.mark.parametrize("pad_input", [False, True])
def test_option_a_shortcut_memory_map_holds_the_reference(pad_input: bool) -> None:
    model = shortcut_model(pad_input)
    prog = compile_model(model, _core())
    for i, x in enumerate(random_inputs(model, 3, seed=1)):
        _, ref = run(model, x[None], dump=True)
        got = _execute(prog, model, x)
        for name, value in got.items():
            assert np.array_equal(value, ref[name]), (i, name)
    # the padding costs no descriptor; the subsampling is one strided 1x1 vector max
    kinds = [lay.kind for lay in prog.layers]
    assert kinds.count("subsample") == (2 if pad_input else 1)
    assert "pad" not in kinds
    a_pad, _ = prog.tensors["pad"]
    a_sub, _ = prog.tensors["sub"]
    assert a_sub == a_pad + 1 * 4 * 3  # c_before * H * W
    if pad_input:
        assert prog.input_addr == prog.tensors["pad_in"][0] + 2 * 7 * 6


def test_subsample_descriptor_and_cycles() -> None:
    core = _core()
    prog = compile_model(shortcut_model(), core)
    i, lay = next((i, lay) for i, lay in enumerate(prog.layers) if lay.kind == "subsample")
    f = lay.fields
    assert lay.mode == "vector" and (f["op"] >> 4) & 3 == VMODE_MAX
    assert (f["kr"], f["ks"], f["sh"], f["sw"]) == (1, 1, 2, 2)
    assert (f["c"], f["p"], f["q"], f["in_len"]) == (5, 4, 3, 5 * 7 * 6)
    cyc = core_cycles(core, prog.layers)[i]
    # lane set-up, then R outputs (one per lane) per cycle of the 1x1 window
    assert cyc.compute == core.rows + -(-5 * 4 * 3 // core.rows) + FLUSH_CYCLES


def test_compiler_refuses_pads_it_cannot_place() -> None:
    model = shortcut_model()
    ops = list(model.ops)
    spatial = (ops[0], PadOp("sp", "c1", "sp", (1, 3, 1, 0, 0, 0)), FlattenOp("f", "sp", "f"))
    want = r"op 'sp': the core zero-pads channels only \(an address offset\), found pads "
    with pytest.raises(CompileError, match=want + r"\(1, 3, 1, 0, 0, 0\) on shape \(1, 5, 7, 6\)"):
        compile_model(replace(model, ops=spatial, output="f"), _core())
    twice = PadOp("pad2", "sub", "pad2", (0, 4, 0, 0, 0, 0))
    with pytest.raises(CompileError, match=r"op 'pad2': its input 'sub' is padded twice"):
        compile_model(replace(model, ops=(*ops[:4], twice, *ops[4:])), _core())


MERGES = [(9, 1, 1, 8, 3), (32, 1, 1, 8, 8), (12, 2, 3, 8, 4), (5, 1, 1, 16, 5), (4, 8, 2, 8, 1)]


@pytest.mark.parametrize("groups,kg,cg,cols,m", MERGES)
def test_merged_groups_keep_the_accumulators(
    groups: int, kg: int, cg: int, cols: int, m: int
) -> None:
    rng = np.random.default_rng(groups * 7 + kg)
    k = groups * kg
    w = rng.integers(-127, 128, size=(k, cg, 3, 3))
    wm, g2 = merge_groups(w, groups, cols, 4096)
    assert (g2, wm.shape[1]) == (groups // m, m * cg)
    x = rng.integers(-128, 128, size=(2, groups * cg, 6, 5))
    req = Requant(np.ones(k, dtype=np.int64), np.ones(k, dtype=np.int64), -(2**30), 2**30)

    def acc(weight: np.ndarray, grp: int) -> np.ndarray:
        op = ComputeOp("c", "input", "c", "mac", "conv", weight, rng.integers(-9, 9, size=k) * 0,
                       stride=(2, 1), padding=(1, 1), groups=grp, requant=req)  # fmt: skip
        model = IntegerModel("input", (1, *x.shape[1:]), 1.0, -128, 127, (op,), "c", 1.0)
        return run(model, x, dump=True)[1]["c.acc"]

    assert np.array_equal(acc(w, groups), acc(wm, g2))
    # a reduction that does not fit a weight bank is not merged further
    assert merge_groups(w, groups, cols, cg * 9)[1] == groups


def test_depthwise_fills_the_columns() -> None:
    core = _core()
    prog = compile_model(random_model(), core)
    dw = next(lay for lay in prog.layers if lay.name == "dw")  # 9 channels, groups 9, 8 columns
    assert (dw.get("ntiles"), dw.get("kg"), dw.get("cg"), dw.get("t")) == (3, 3, 3, 27)


def test_concat_memory_map_holds_the_reference() -> None:
    import torch

    from autochip.compress.ptq import calibration_inputs, ptq
    from autochip.ir import load_model
    from autochip.reference import ConcatOp, quantize_input

    loaded = load_model(str(ROOT / "rtl_tests" / "core" / "zoo_ops_tiny.py"))
    model = ptq(loaded.model, loaded.example_input, calibration_inputs(None, (3, 12, 12), 32).x)
    prog = compile_model(model, _core())
    x = quantize_input(model, torch.rand(2, 3, 12, 12).numpy())
    for image in x:
        _, ref = run(model, image[None], dump=True)
        for name, value in _execute(prog, model, image).items():
            assert np.array_equal(value, ref[name]), name
    cat = next(op for op in model.ops if isinstance(op, ConcatOp))
    assert cat.output not in {lay.output for lay in prog.layers}  # no descriptor
    a_cat = prog.tensors[cat.output][0]
    assert prog.tensors["fire.expand1x1"][0] == a_cat
    assert prog.tensors["fire.expand3x3"][0] == a_cat + 6 * 6 * 6
    twice = replace(cat, inputs=(cat.inputs[0], cat.inputs[0]))
    ops = tuple(twice if op is cat else op for op in model.ops)
    with pytest.raises(CompileError, match=r"its input 'fire.expand1x1' is already placed"):
        compile_model(replace(model, ops=ops), _core())


CEIL = [
    (12, 12, 3, 2, 0),
    (13, 13, 3, 2, 0),
    (111, 111, 3, 2, 0),
    (7, 6, 3, 2, 1),
    (10, 9, 3, 3, 1),
]


@pytest.mark.parametrize("h,w,k,s,p", CEIL)
def test_maxpool_ceil_mode_matches_pytorch(h: int, w: int, k: int, s: int, p: int) -> None:
    import torch
    import torch.nn.functional as F

    from autochip.reference import MaxPoolOp

    x = np.random.default_rng(h * w).integers(-128, 128, size=(1, 2, h, w))
    op = MaxPoolOp("m", "input", "m", (k, k), (s, s), (p, p), ceil_mode=True)
    model = IntegerModel("input", (1, 2, h, w), 1.0, -128, 127, (op,), "m", 1.0)
    want = F.max_pool2d(torch.tensor(x, dtype=torch.float64), k, s, p, ceil_mode=True)
    assert np.array_equal(run(model, x)[0], want.numpy())

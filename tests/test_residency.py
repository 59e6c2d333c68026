"""Feature-map residency (``autochip/builder/residency.py``): the allocator's placements, the
ofmap halves, the compiled descriptors, and the batch model against the compiler.

Every placement is checked against an independent replay: walking the descriptors in order
with the ifmap copy as a map of which tensor each bus word holds, a resident input must find
its whole tensor where the placement says, and nothing a later resident reader needs may have
been overwritten by a load or a forwarded output in between.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from autochip.builder.compiler import compile_model
from autochip.builder.core import core_params
from autochip.builder.residency import Desc, Placement, allocate, ofmap_bases, saturation
from autochip.hw import hardware_spec_from_dict
from autochip.predictor.core_batch import core_configs, core_plan
from autochip.predictor.core_model import core_cycles

CORE = Path(__file__).resolve().parents[1] / "rtl_tests" / "core"
sys.path.insert(0, str(CORE))
from core_models import random_model, resident_model, vector_model  # noqa: E402

BUS = 8


def _d(srcs: tuple[str, ...], out: str, size: int, *, add: bool = False, fwd: bool = True,
       whole: bool = True) -> Desc:  # fmt: skip
    return Desc(srcs=srcs, whole=(whole,) * len(srcs), offs=(0,) * len(srcs),
                loads=(size,) * len(srcs), out=out, out_off=0, out_bytes=size, fwd_ok=fwd,
                in_place=add)  # fmt: skip


def _replay(descs: list[Desc], place: tuple[Placement, ...], cap: int) -> None:
    """Each bus word of the copy holds (tensor, word index) or nothing; loads and forwarded
    outputs write it in program order; a resident input must be intact where it is read."""
    words: dict[int, tuple[str, int]] = {}
    for d, p in zip(descs, place, strict=True):
        for k, src in enumerate(d.srcs):
            n = -(-d.loads[k] // BUS)
            assert p.at[k] >= 0 and p.at[k] % BUS == 0 and p.at[k] + n * BUS <= cap
            if p.res[k]:
                assert d.whole[k]
                assert all(words.get(p.at[k] // BUS + w) == (src, w) for w in range(n)), src
        for k, src in enumerate(d.srcs):  # the loads land (after the resident checks)
            if not p.res[k]:
                n = -(-d.loads[k] // BUS)
                for w in range(n):
                    words[p.at[k] // BUS + w] = (src, w)
        if p.fwd >= 0:
            assert d.fwd_ok and p.fwd % BUS == 0
            n = -(-(d.out_off + d.out_bytes) // BUS)
            assert p.fwd + n * BUS <= cap
            # the output never lands on an input but in place (an add, the same offset)
            for k in range(len(d.srcs)):
                m = -(-d.loads[k] // BUS)
                if p.fwd < p.at[k] + m * BUS and p.at[k] < p.fwd + n * BUS:
                    assert d.in_place and p.fwd == p.at[k] and d.offs[k] == d.out_off
            for w in range(n):
                words[p.fwd // BUS + w] = (d.out, w)


def test_chain_stays_resident_and_loads_go_to_the_top() -> None:
    descs = [_d(("x",), "a", 64), _d(("a",), "b", 64), _d(("b",), "c", 64)]
    place = allocate(descs, 1024, BUS)
    _replay(descs, place, 1024)
    assert [p.res for p in place] == [(False,), (True,), (True,)]
    assert place[0].at == (1024 - 64,)  # the load at the top, the output from the bottom
    assert [p.fwd for p in place] == [0, 64, -1]  # c has no reader: not forwarded


def test_liveness_keeps_a_tensor_until_its_last_reader() -> None:
    # x -> a -> b; add(a, b) -> s (in place over b, which it reads last)
    descs = [_d(("x",), "a", 64), _d(("a",), "b", 64), _d(("a", "b"), "s", 64, add=True),
             _d(("s",), "t", 64)]  # fmt: skip
    place = allocate(descs, 1024, BUS)
    _replay(descs, place, 1024)
    assert place[2].res == (True, True)
    assert place[2].fwd in place[2].at  # in place over a or b (both read last)
    assert place[3].res == (True,)


def test_a_full_copy_refuses_the_third_tensor_and_drops_later_readers() -> None:
    # room for two: a stays live for the add, b is read next; c does not fit beside them and
    # is read as late as a: not forwarded, the add loads it
    descs = [_d(("x",), "a", 128), _d(("a",), "b", 128), _d(("b",), "c", 128),
             _d(("a", "c"), "s", 128, add=True)]  # fmt: skip
    place = allocate(descs, 256, BUS)
    _replay(descs, place, 256)
    assert place[2].fwd == -1
    assert place[3].res == (True, False)
    # a tensor read later than the new output is dropped to make room (it is in DRAM)
    descs = [_d(("x",), "a", 128), _d(("a",), "b", 128), _d(("b",), "c", 128),
             _d(("c",), "d", 128), _d(("a",), "e", 128)]  # fmt: skip
    place = allocate(descs, 256, BUS)
    _replay(descs, place, 256)
    assert place[2].fwd >= 0 and place[3].res == (True,) and place[4].res == (False,)


def test_refusals_keep_every_load() -> None:
    # a banded reader (not whole), a producer that cannot forward, a core without forwarding
    descs = [_d(("x",), "a", 64), _d(("a",), "b", 64, whole=False), _d(("b",), "c", 64)]
    place = allocate(descs, 1024, BUS)
    # a is read only by a band: not forwarded; b is, and c reads it resident
    assert place[0].fwd == -1 and place[1].fwd >= 0
    assert [p.res for p in place] == [(False,), (False,), (True,)]
    descs = [_d(("x",), "a", 64, fwd=False), _d(("a",), "b", 64, fwd=False)]
    place = allocate(descs, 1024, BUS)
    assert [p.res for p in place] == [(False,), (False,)]
    assert [p.at for p in place] == [(0,), (0,)]  # no forwarding: the loads as before
    two = [_d(("x", "y"), "s", 20, add=True, fwd=False)]
    assert allocate(two, 1024, BUS)[0].at == (0, 24)  # the second from the next bus word
    # a tensor larger than the copy's free part is not forwarded
    big = Desc(srcs=("x",), whole=(True,), offs=(0,), loads=(64,), out="a", out_off=0,
               out_bytes=1000, fwd_ok=True, in_place=False)  # fmt: skip
    place = allocate([big, _d(("a",), "b", 1000)], 1024, BUS)
    assert place[0].fwd == -1 and place[1].res == (False,)


def test_random_programs_replay_clean() -> None:
    rng = np.random.default_rng(5)
    for _ in range(400):
        n, cap = int(rng.integers(2, 12)), int(rng.integers(12, 40)) * BUS  # two loads fit
        tensors = {"x": (int(rng.integers(0, 2)) * 4, int(rng.integers(1, 12)) * 4)}
        descs = []
        for i in range(n):
            k = 2 if rng.random() < 0.3 else 1
            srcs = tuple(str(rng.choice(sorted(tensors))) for _ in range(k))
            off, size = int(rng.integers(0, 2)) * 4, int(rng.integers(1, 12)) * 4
            whole = tuple(bool(rng.random() < 0.9) for _ in srcs)
            descs.append(Desc(
                srcs=srcs, whole=whole, offs=tuple(tensors[t][0] for t in srcs),
                loads=tuple(sum(tensors[t]) if w else tensors[t][0] + 4
                            for t, w in zip(srcs, whole, strict=True)),
                out=f"t{i}", out_off=off, out_bytes=size, fwd_ok=bool(rng.random() < 0.85),
                in_place=k == 2,
            ))  # fmt: skip
            tensors[f"t{i}"] = (off, size)
        _replay(descs, allocate(descs, cap, BUS), cap)
        # from the saturation size on, every copy makes the big copy's decisions
        big, sat = saturation(descs, BUS)
        flags = [(p.res, p.fwd >= 0) for p in big]
        for c in (sat, sat + BUS, sat + int(rng.integers(1, 99)) * BUS):
            assert [(p.res, p.fwd >= 0) for p in allocate(descs, c, BUS)] == flags


def test_ofmap_halves_alternate_and_owait_where_they_cannot() -> None:
    bases, waits = ofmap_bases([100, 100, 300, 100, 50], [True, True, True, False, True],
                               [False, True, True, True, True], 512, 16, True)  # fmt: skip
    assert bases == (256, 0, 0, 0, 256)
    # the third needs more than a half: the lower one, overlapping the second's posted
    # write-back, as the fourth overlaps the third's; the fourth is a vector layer (not
    # posted): the fifth takes the upper half and need not wait
    assert waits == (False, False, True, True, False)
    assert ofmap_bases([100], [True], [True], 512, 16, False) == ((0,), (False,))


def _spec(rows: int, cols: int, bus: int, kb: tuple[float, float, float]) -> object:
    return hardware_spec_from_dict({
        "pe": {"kind": "mac", "a_bits": 8, "w_bits": 8}, "array": {"rows": rows, "cols": cols},
        "buffers": {"ifmap": {"size_kb": kb[0]}, "weight": {"size_kb": kb[1]},
                    "ofmap": {"size_kb": kb[2]}},
        "dram": {"bandwidth": bus},
    })  # fmt: skip


@pytest.mark.parametrize("make", [resident_model, vector_model, random_model])
def test_compiled_residency_saves_loads_and_the_batch_model_agrees(make: object) -> None:
    from autochip.builder.explore_build import integer_workload
    from autochip.predictor.core_batch import evaluate_core

    model = make()  # type: ignore[operator]
    wl = integer_workload(model, "m")
    rng = np.random.default_rng(11)
    resident = 0
    for _ in range(12):
        kb = (40.0, 4.0, float(rng.choice([1, 2, 8])))
        hw = _spec(int(rng.choice([1, 2, 4, 8])), int(rng.integers(1, 9)),
                   int(rng.choice([4, 8, 16])), kb)  # fmt: skip
        core = core_params(hw)  # type: ignore[arg-type]
        prog = compile_model(model, core)
        if any("@" in lay.name for lay in prog.layers):
            continue
        ops = [lay.get("op") for lay in prog.layers]
        resident += sum(op >> 9 & 1 for op in ops)
        # the batch model's op bits and cycles equal the compiler's and the scalar model's
        cfg = core_configs([hw])  # type: ignore[list-item]
        plan = core_plan(wl, cfg)
        assert [int(o) for o in plan["op"][0]] == [op & (255 << 9) for op in ops]  # 9..16
        ref = core_cycles(core, prog.layers)
        assert int(evaluate_core(wl, cfg).total_cycles[0]) == sum(c.total for c in ref)
        # the same program without residency is never faster
        plain = [type(lay)(lay.name, lay.kind, lay.mode, lay.output,
                           {**lay.fields, "op": lay.get("op") & ~(0xF << 8)})
                 for lay in prog.layers]  # fmt: skip
        assert sum(c.total for c in ref) <= sum(c.total for c in core_cycles(core, plain))
    assert resident > 0


def test_batch_energy_drops_the_resident_inputs_dram_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from autochip.hw import load_hardware_spec
    from autochip.hw.platform import load_platform
    from autochip.ir import graph_for
    from autochip.predictor import core_batch
    from autochip.predictor.core_batch import core_workload, evaluate_core

    wl = core_workload(graph_for("resnet20"))
    cfg = core_configs([load_hardware_spec(CORE.parents[1] / "examples/hw/core16x16_int8.yaml")])
    plat = load_platform("asic-45nm")
    res = evaluate_core(wl, cfg, plat)
    ra, rb, _ = core_batch._residency(wl, cfg, core_batch.core_geometry(cfg),
                                      *core_batch._unique_layout(wl, cfg),
                                      core_plan(wl, cfg)["tpp"])  # fmt: skip
    assert ra.sum() >= 20
    none = np.zeros_like(ra)
    monkeypatch.setattr(core_batch, "_residency", lambda *a: (none, none, none))
    plain = evaluate_core(wl, cfg, plat)
    assert res.total_cycles[0] < plain.total_cycles[0]
    # per layer: the resident inputs' DRAM bytes and the static power of the cycles saved
    res_bytes = wl.in_len * (ra[0].astype(int) + rb[0].astype(int))
    cycles = (plain.cycles - res.cycles)[0]
    want = 8 * res_bytes * plat.tech.dram_pj_per_bit + (
        res.static_w[0] * cycles / (cfg.clock_mhz[0] * 1e6) * 1e12
    )
    np.testing.assert_allclose(plain.energy_pj[0] - res.energy_pj[0], want, rtol=1e-9, atol=1e-6)

"""Feature-map residency: which tensors stay in the core's ifmap copies from layer to layer.

A layer's post-processing (or vector engine) writes its outputs to the ofmap buffer, which the
DMA drains to DRAM. With op bit 8 (``fwd``) the core also writes them into the ifmap copies at
``fwd_ofs`` (``core_main.v``: one R-byte write per cycle into one bus word, so R must divide
the bus and the writes be R-aligned); a later layer that reads the tensor finds it there and
skips its load (op bits 9 / 10, ``res_a`` / ``res_b``). Every tensor still goes to DRAM (the
network's outputs, ``autochip sim --dump``, readers that cannot use the copy).

:func:`allocate` is the compiler's greedy allocator over one ifmap copy (``if_depth`` bytes),
in program order, in whole bus words:

* a descriptor reads an input resident when the tensor is live in the copy and it reads the
  tensor whole (an untiled layer: one load of the whole tensor);
* the inputs it loads go into one block at the top of the copy (the first loaded input at the
  block's start, the second from the next bus word after it), beside its resident inputs; a
  live tensor the block overwrites is dropped (it is in DRAM); when the block does not fit
  beside the resident inputs, every input is loaded (nothing resident);
* its output is forwarded when the core can (``Desc.fwd_ok``) and a later descriptor can read
  it resident: placed from the bottom of the copy (first fit) outside the live tensors, this
  descriptor's inputs and its load block, or, for an elementwise add, in place over an input
  it is the last reader of (output element e is written after input element e was read);
* a tensor stays live until its last resident reader (liveness), then its words are free.

:func:`ofmap_bases` alternates the layers between the two halves of the ofmap buffer (field
``o_base``) so that a layer whose input is resident, and which therefore no longer waits for
the previous layer's posted write-back before it computes, does not overwrite the half that
write-back still reads; where a layer's outputs need more than the free half, op bit 11
(``owait``) makes its resident input wait for the write-back as a loaded one does.

Both functions are pure and deterministic; ``autochip.predictor.core_batch`` calls them once per
distinct (copy size, bus, rows) and caches the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Desc", "Placement", "allocate", "ofmap_bases", "saturation"]


@dataclass(frozen=True)
class Desc:
    """What the allocator needs of one descriptor (bytes; tensors by their root name)."""

    srcs: tuple[str, ...]  # the tensor each input reads (one, or two for an add)
    whole: tuple[bool, ...]  # input k reads its tensor whole (so it may be resident)
    offs: tuple[int, ...]  # input k's DRAM address modulo the bus
    loads: tuple[int, ...]  # ifmap bytes input k's load spans from its bus word on
    out: str
    out_off: int  # the output tensor's DRAM address modulo the bus
    out_bytes: int  # the whole output tensor
    fwd_ok: bool  # the core can forward this descriptor's writes (whole tensor, R-aligned)
    in_place: bool  # elementwise (an add): the output may replace an input it last reads


@dataclass(frozen=True)
class Placement:
    """Where one descriptor's inputs are in the ifmap copy and where its output goes."""

    res: tuple[bool, ...]  # input k is resident (no load)
    at: tuple[int, ...]  # ifmap byte of input k's bus word (resident or loaded there)
    fwd: int  # ifmap byte of the output's first bus word; -1: not forwarded


def _up(n: int, unit: int) -> int:
    return -(-n // unit) * unit


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _first_fit(taken: list[tuple[int, int]], need: int, cap: int, bus: int) -> int:
    """The lowest bus word from which ``need`` bytes miss every range of ``taken`` (-1: none)."""
    base = 0
    while base + need <= cap:
        hit = [r for r in taken if _overlap((base, base + need), r)]
        if not hit:
            return base
        base = _up(max(r[1] for r in hit), bus)
    return -1


def allocate(descs: Sequence[Desc], cap: int, bus: int) -> tuple[Placement, ...]:
    """Place every descriptor's inputs and forwarded output in an ifmap copy of ``cap`` bytes
    (a multiple of ``bus``). A core that cannot forward (no ``fwd_ok``) gets the placement of a
    core without residency: the first input at byte 0, the second from the next bus word."""
    if not any(d.fwd_ok for d in descs):
        out = []
        for d in descs:
            at = [0]
            for k in range(1, len(d.srcs)):
                at.append(_up(at[-1] + d.loads[k - 1], bus))
            out.append(Placement((False,) * len(d.srcs), tuple(at), -1))
        return tuple(out)
    readers: dict[str, list[int]] = {}  # tensor -> descriptors that can read it resident
    for i, d in enumerate(descs):
        for s, w in zip(d.srcs, d.whole, strict=True):
            if w and (not readers.get(s) or readers[s][-1] != i):
                readers.setdefault(s, []).append(i)

    def next_use(t: str, i: int) -> int:
        """The first descriptor after ``i`` that can read ``t`` resident (``len(descs)``:
        none)."""
        return next((j for j in readers.get(t, ()) if j > i), len(descs))

    def used_after(t: str, i: int) -> bool:
        return next_use(t, i) < len(descs)

    live: dict[str, tuple[int, int]] = {}  # tensor -> [first byte of its bus word, end)
    placed: list[Placement] = []
    for i, d in enumerate(descs):
        n = len(d.srcs)
        res = [d.whole[k] and d.srcs[k] in live for k in range(n)]
        at = [live[d.srcs[k]][0] if res[k] else 0 for k in range(n)]
        busy = [live[d.srcs[k]] for k in range(n) if res[k]]
        loads = [k for k in range(n) if not res[k]]
        if loads:
            rel, size = [], 0
            for k in loads:
                rel.append(size)
                size = _up(size + d.loads[k], bus)
            base = cap - size
            while base >= 0:
                hit = [r for r in busy if _overlap((base, base + size), r)]
                if not hit:
                    break
                base = (min(r[0] for r in hit) - size) // bus * bus  # below what it hit
            if base < 0:  # no room beside the resident inputs: load them all
                res, busy, loads = [False] * n, [], list(range(n))
                rel, size = [], 0
                for k in loads:
                    rel.append(size)
                    size = _up(size + d.loads[k], bus)
                base = max(0, cap - size)  # (a load larger than the copy: refused by the planner)
            for k, r in zip(loads, rel, strict=True):
                at[k] = base + r
            block = (base, base + size)
            busy.append(block)
            for t in [t for t, r in live.items() if _overlap(r, block)]:
                del live[t]
        fwd = -1
        nu = next_use(d.out, i)
        if d.fwd_ok and nu < len(descs):
            need = _up(d.out_off + d.out_bytes, bus)
            # in place over an input of an add that this descriptor reads last; else first fit
            # from the bottom; else in place over an input read again only after the output;
            # else drop live tensors read after the output, the last-read first, until it
            # fits (what is dropped is in DRAM: its readers load it)
            over = [k for k in range(n) if d.in_place and d.offs[k] == d.out_off
                    and need <= _up(d.loads[k], bus)]  # fmt: skip
            dying = [k for k in over if not used_after(d.srcs[k], i)]
            later_in = [k for k in over if next_use(d.srcs[k], i) > nu]
            taken = busy + [r for t, r in live.items() if used_after(t, i)]
            fwd = at[dying[0]] if dying else _first_fit(taken, need, cap, bus)
            if fwd < 0 and later_in:
                fwd = at[later_in[0]]
            later = sorted(
                (t for t in live if t not in d.srcs and next_use(t, i) > nu),
                key=lambda t: -next_use(t, i),
            )
            while fwd < 0 and later:
                del live[later.pop(0)]
                taken = busy + [r for t, r in live.items() if used_after(t, i)]
                fwd = _first_fit(taken, need, cap, bus)
            for k in range(n):  # an input overwritten in place is gone
                if fwd >= 0 and fwd == at[k] and d.srcs[k] in live:
                    del live[d.srcs[k]]
        for t in [t for t in live if not used_after(t, i)]:
            del live[t]
        if fwd >= 0:
            live[d.out] = (fwd, fwd + _up(d.out_off + d.out_bytes, bus))
        placed.append(Placement(tuple(res), tuple(at), fwd))
    return tuple(placed)


BIG = 1 << 40  # a copy larger than any: nothing is dropped, every output finds room


def saturation(descs: Sequence[Desc], bus: int) -> tuple[tuple[Placement, ...], int]:
    """The placements in a copy of ``BIG`` bytes and the copy size from which every smaller
    copy makes the same decisions (which inputs are resident, which outputs forwarded): the
    loads and the outputs placed in place over them sit at fixed distances from the top, the
    other outputs at fixed offsets from the bottom, and as long as the two groups cannot meet
    (the lowest top one above the highest bottom one) every test the allocator makes comes out
    as in the big copy. The batch model costs every larger copy with one allocation."""
    place = allocate(descs, BIG, bus)
    top = bottom = 0
    for d, p in zip(descs, place, strict=True):
        spans = [(p.at[k], d.loads[k]) for k in range(len(d.srcs)) if not p.res[k]]
        if p.fwd >= 0:
            spans.append((p.fwd, d.out_off + d.out_bytes))
        for base, n in spans:
            if base >= BIG // 2:
                top = max(top, BIG - base)
            else:
                bottom = max(bottom, _up(base + n, bus))
    return place, _up(top + bottom, bus)


def ofmap_bases(
    needs: Sequence[int],
    posts: Sequence[bool],
    res_a: Sequence[bool],
    o_depth: int,
    unit: int,
    forwarding: bool,
) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """Each descriptor's ofmap base and ``owait``, from the ofmap bytes it needs (from base 0
    on) and whether its last write-back is posted (compute layers). A descriptor takes the
    upper half (``o_depth / 2`` rounded down to ``unit``, the ofmap's word pair) when the
    previous posted write-back reads only the lower half and its own outputs fit the upper;
    otherwise the lower. ``owait``: its first input is resident and its range overlaps the
    previous descriptor's posted write-back. A core that cannot forward keeps base 0 and never
    waits (its layers all load their inputs)."""
    n = len(needs)
    if not forwarding:
        return (0,) * n, (False,) * n
    half = o_depth // 2 // unit * unit
    bases: list[int] = []
    waits: list[bool] = []
    prev_b, prev_need = 0, 0
    for need, post, res in zip(needs, posts, res_a, strict=True):
        b = half if half > 0 and prev_b == 0 and prev_need <= half and need <= o_depth - half else 0
        waits.append(res and _overlap((b, b + need), (prev_b, prev_b + prev_need)))
        bases.append(b)
        prev_b, prev_need = b, need if post else 0
    return tuple(bases), tuple(waits)

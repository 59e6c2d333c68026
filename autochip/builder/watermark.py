"""Load watermark (descriptor op bit 16): a compute layer's input load beside its compute.

Without it a layer whose input comes from DRAM loads the whole input before its first tile
(``core_main.v`` S_IN, S_IN_W), with the array idle: on ResNet-20's stem (3 x 32 x 32 on a
16 x 16 core, 128-bit bus) about 200 of its 2,066 cycles. With it the controller hands the load
to its load engine and starts the layer at once; the engine loads the input in **row groups**
(for each group of ``in_grp`` bytes per channel, the last one what is left, one run per
channel: every channel's next rows), and a pixel tile starts (``j = 0`` in S_STREAM) only once
the rows its last lane's window reads are in every channel (``need_q <= wm_lim``). So the first
pixel tile waits for the groups it reads, and the rest of the load runs under the array.

The RTL check makes the core correct whatever the timing. The cycle model stays exact because
the compiler sets the bit only where it can show that no later pixel tile waits and that the
load is over before the first pass's prefetch is needed (:func:`plan`): then the layer's load
phase is ``1 + max(0, ready - (R + 2))`` cycles (S_IN, then the first tile's wait beyond the
lanes' set-up), ``ready`` the cycle its last group's last run is done plus one
(:func:`first_wait`). The proof bounds every run's cycles from above (its bus words plus one,
one 4 KB page crossing more) and, since the layer may forward its outputs into the ifmap
(feature-map residency) and a forwarded write takes the ifmap write port (the DMA holds back
the read beat then: ``core_dma.v`` ``rd_hold``), it allows the column walk's ``C`` writes per
tile period ``P`` to steal cycles: a load of ``W`` cycles takes at most ``(W + 2C) P / (P - C)``.

Only the program's first descriptor is watermarked (the network input, never resident), and
only in a program without feature-map bands; the batch model (``core_batch``) makes the same
choice with the same functions (they take numpy arrays: one design or many).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["GROUP_ROWS", "first_wait", "plan", "prefetch_bound"]

# candidate rows per group: fewer rows wait less for the first tile, more rows cost fewer runs
GROUP_ROWS = (1, 2, 4, 8, 16)
RUN_ISSUE = 1  # core_model.RUN_ISSUE: a run after the first costs one cycle more
MARGIN = 4  # cycles of the engines' hand-overs (PF_IDLE -> PF_W, LD_WAIT -> LD_IDLE), spare
SETUP = 2  # S_IN, then S_INIT's R cycles and S_TILE: the first tile's j = 0 is at R + 2


def _dma(addr: Any, length: Any, bus: Any, over: int) -> Any:
    from autochip.predictor.core_batch import dma_cycles_batch

    return dma_cycles_batch(np.asarray(addr, dtype=np.int64), np.asarray(length, dtype=np.int64),
                            np.asarray(bus, dtype=np.int64), over)  # fmt: skip


def _need(p: Any, q: int, sh: int, ph: int, kr: int, wd: int) -> Any:
    """Bytes of channel 0 (from its first) that output pixel ``p``'s window needs loaded: the
    rows it reads, whole (``core_main.v`` ``need_q = base - x + KR W`` minus ``wm_lim``'s
    start; the load engine's groups are whole rows, so a partial last row would wait for the
    same group)."""
    return (np.asarray(p) // q * sh - ph + kr) * wd


def _first_over(thr: int, rows: Any, q: int, sh: int, ph: int, kr: int, wd: int) -> Any:
    """The first pixel tile (of ``rows`` pixels; its last lane reads the most) that needs
    more than byte ``thr`` of a channel: the first whose last pixel is on an output row past
    ``(thr / wd - kr + ph) / sh``."""
    oy = max(0, (thr - (kr - ph) * wd) // (sh * wd) + 1)
    rows = np.asarray(rows)
    return np.maximum(0, -(-(oy * q - (rows - 1)) // rows))


def _ready(*, bus: Any, in_addr: Any, grp: int, groups: int, cin: int, plane: int,
           stride: int, over: int) -> Any:  # fmt: skip
    """``(groups, ...)``: the cycle (from S_IN's) from which the tiles that read groups ``0..g``
    may start: one after the done of group g's last run (runs in order: group by group,
    channel by channel, ``stride`` bytes apart in DRAM; the load engine's first command the
    cycle after S_IN, each further one ``RUN_ISSUE`` later than its predecessor's done)."""
    out = []
    done = np.zeros(np.broadcast(bus, in_addr).shape, dtype=np.int64)
    n = 0
    for g in range(groups):
        length = min(grp, plane - g * grp)
        for c in range(cin):
            done = done + _dma(in_addr + c * stride + g * grp, length, bus, over)
            done += RUN_ISSUE if n else 0
            n += 1
        out.append(done + 1)
    return np.stack(out) if out else np.zeros((0, *done.shape), dtype=np.int64)


def first_wait(
    *, rows: Any, bus: Any, in_addr: Any, grp: int, cin: int, plane: int, stride: int, q: int,
    sh: int, ph: int, kr: int, wd: int, over: int,
) -> Any:  # fmt: skip
    """The load phase of a watermarked layer: S_IN and the first pixel tile's wait, ``1 +
    max(0, ready - (R + 2))``, ``ready`` the cycle from which the row groups of ``grp`` bytes
    per channel that the first pixel tile reads are in (:func:`_ready`). ``rows``, ``bus``,
    ``in_addr`` may be arrays (one value per design)."""
    rows = np.asarray(rows, dtype=np.int64)
    groups = -(-plane // grp)
    k0 = np.minimum(-(-_need(rows - 1, q, sh, ph, kr, wd) // grp), groups)
    ready = _ready(bus=bus, in_addr=in_addr, grp=grp, groups=int(np.max(k0, initial=0)),
                   cin=cin, plane=plane, stride=stride, over=over)  # fmt: skip
    at = np.ones(np.broadcast(rows, bus, in_addr).shape, dtype=np.int64)
    for g in range(ready.shape[0]):
        at = np.where(k0 == g + 1, ready[g], at)
    return 1 + np.maximum(0, at - (rows + SETUP))


def prefetch_bound(w_bytes: Any, p_bytes: Any, bus: Any, over: int) -> Any:
    """At most the cycles the prefetch engine takes for ``w_bytes`` of weights and ``p_bytes``
    of parameters (two commands, wherever they start; 0 when there is nothing to prefetch):
    their bus words plus one each, in bursts of at most 256 beats plus one more each where it
    crosses a 4 KB page."""
    w_bytes, p_bytes = np.asarray(w_bytes, dtype=np.int64), np.asarray(p_bytes, dtype=np.int64)

    def one(n: Any) -> Any:
        words = -(-n // bus) + 1
        return 2 + words + over * (-(-words // 256) + 1)

    return np.where(w_bytes + p_bytes > 0, 1 + one(w_bytes) + one(p_bytes), 0)


def plan(
    *, rows: Any, cols: Any, bus: Any, in_addr: Any, t: Any, pass_tiles: Any, npt: Any,
    pass_run: Any, pf_busy: Any, plain_load: Any, cin: int, h: int, wd: int, stride: int,
    q: int, sh: int, ph: int, kr: int, over: int,
) -> tuple[Any, Any, Any]:  # fmt: skip
    """Whether to watermark the load, its row group (bytes per channel, 0: none) and its load
    phase, per design: the group of :data:`GROUP_ROWS` whose first pixel tile waits least
    (ties: the longer group) among those for which (a) no later pixel tile of the first pass
    waits and (b) the load, then the first pass's prefetch loads (at most ``pf_busy``
    cycles), end within the first pass (``pass_run`` cycles from S_INIT: lanes, tiles,
    flush); only if it beats ``plain_load``, the load phase without the watermark. ``t`` is
    the reduction (beats per tile), ``pass_tiles`` the first pass's weight tiles, ``npt``
    the pixel tiles.

    Both use the exact cycle from which each group is in (:func:`_ready`) and allow for the
    forwarded writes (the layer may forward its outputs into the ifmap, and the DMA then
    holds a read beat back): none before the first tile's results reach the column walk
    (``T + R`` cycles after its first beat), then at most the walk's ``C`` per tile period
    ``P = max(T, R, C)``, so a load that needs ``W`` more cycles from ``w0`` on is done by
    ``w0 + (W + C) P / (P - C)`` (and never, for this proof, if ``P <= C``)."""
    rows, cols, bus, in_addr, t, pass_tiles, npt, pass_run, pf_busy, plain_load = (
        np.asarray(x, dtype=np.int64)
        for x in (rows, cols, bus, in_addr, t, pass_tiles, npt, pass_run, pf_busy,
                  plain_load)
    )  # fmt: skip
    shape = np.broadcast(rows, cols, bus, in_addr, t, pass_tiles, npt, pass_run, pf_busy,
                         plain_load).shape  # fmt: skip
    period = np.maximum(t, np.maximum(rows, cols))
    best_load = np.broadcast_to(plain_load, shape).copy()
    best_grp = np.zeros(shape, dtype=np.int64)
    plane = h * wd

    # the groups' cycles depend on the bus and the address alone: once per distinct pair
    pairs = np.stack([np.broadcast_to(bus, shape).ravel(), np.broadcast_to(in_addr, shape).ravel()])
    uniq, back = np.unique(pairs, axis=1, return_inverse=True)
    ub, ua = uniq[0], uniq[1]
    back = back.reshape(shape)
    for hg in GROUP_ROWS:
        if hg >= h:
            break  # one group: the whole input before the first tile, as without
        grp = hg * wd
        groups = -(-plane // grp)
        ready = _ready(bus=ub, in_addr=ua, grp=grp, groups=groups, cin=cin, plane=plane,
                       stride=stride, over=over)[:, back]  # fmt: skip
        k0 = np.minimum(-(-_need(rows - 1, q, sh, ph, kr, wd) // grp), groups)
        first = np.ones(shape, dtype=np.int64)
        for g in range(groups):
            first = np.where(k0 == g + 1, ready[g], first)
        issue0 = np.maximum(rows + SETUP, first)  # the first tile's first beat
        load = 1 + issue0 - (rows + SETUP)
        w0 = issue0 + t + rows  # no forwarded write before

        def done_by(ready_g: Any, w0: Any = w0) -> Any:
            late = w0 + -(-(ready_g - w0 + cols) * period // np.maximum(period - cols, 1))
            return np.where(ready_g <= w0, ready_g, np.where(period > cols, late, 1 << 40))

        ok = np.ones(shape, dtype=bool)
        # (a) group g (past what the first tile read) in before the first tile reading it
        for g in range(1, groups):
            i_g = _first_over(g * grp, rows, q, sh, ph, kr, wd)
            ok &= (i_g >= npt) | (g < k0) | (done_by(ready[g]) <= issue0 + i_g * pass_tiles
                                              * period)  # fmt: skip
        # (b) the whole load, then the prefetch, within the first pass
        ok &= done_by(ready[groups - 1]) + pf_busy + MARGIN <= pass_run + load
        better = ok & (load <= best_load) & ((load < plain_load) | (best_grp > 0))
        best_load = np.where(better, load, best_load)
        best_grp = np.where(better, grp, best_grp)
    return best_grp > 0, best_grp, best_load

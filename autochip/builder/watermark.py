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
(:func:`first_wait`). The proof takes every group's exact cycles (the runs' ``dma_cycles``,
:func:`_ready`) and, since the layer may forward its outputs into the ifmap (feature-map
residency) and a forwarded write takes the ifmap write port (the DMA holds back the read beat
then: ``core_dma.v`` ``rd_hold``), it allows the column walk's ``C`` writes per tile period
``P`` to steal cycles once the first tile's results reach the walk (``w0``): what is left of
a load at ``w0``, ``W`` cycles, is done by ``w0 + (W + C) P / (P - C)``. The prefetch that
follows the load is bounded from above (every command's bus words plus one, one burst more).

Only the program's first descriptor is watermarked (the network input, never resident), and
only in a program without feature-map bands; the batch model (``core_batch``) makes the same
choice with the same functions (they take numpy arrays: one design or many).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autochip.predictor.core_model import READ_ISSUE

__all__ = ["GROUP_ROWS", "first_wait", "plan", "prefetch_bound"]

# candidate rows per group: fewer rows wait less for the first tile, more rows cost fewer runs
GROUP_ROWS = (1, 2, 4, 8, 16)
MAX_GROUPS = 64  # groups per channel at most (the proof's cost grows with them)
MARGIN = 4  # cycles of the engines' hand-overs (PF_IDLE -> PF_W, LS_WAIT -> LS_IDLE), spare
SETUP = 2  # S_IN, then S_INIT's R cycles and S_TILE: the first tile's j = 0 is at R + 2


def _need(p: Any, q: int, sh: int, ph: int, kr: int, wd: int) -> Any:
    """Bytes of channel 0 (from its first) that output pixel ``p``'s window needs loaded: the
    rows it reads, whole (``core_main.v`` ``need_q = base - x + KR W`` minus ``wm_lim``'s
    start; the load engine's groups are whole rows, so a partial last row would wait for the
    same group)."""
    return (np.asarray(p) // q * sh - ph + kr) * wd


def _k0(rows: Any, grp: int, groups: int, q: int, sh: int, ph: int, kr: int, wd: int) -> Any:
    """The row groups (of ``grp`` bytes per channel) the first pixel tile reads: its last
    lane's ``need`` in groups, at most all of them."""
    return np.minimum(-(-_need(rows - 1, q, sh, ph, kr, wd) // grp), groups)


def _wait(rows: Any, ready: Any) -> Any:
    """The load phase when the first tile's groups are in from cycle ``ready``: S_IN, then
    what its first beat (cycle ``R + 2``) waits beyond the lanes' set-up."""
    return 1 + np.maximum(0, ready - (rows + SETUP))


def _first_over(thr: Any, rows: Any, q: int, sh: int, ph: int, kr: int, wd: int) -> Any:
    """The first pixel tile (of ``rows`` pixels; its last lane reads the most) that needs
    more than byte ``thr`` of a channel: the first whose last pixel is on an output row past
    ``(thr / wd - kr + ph) / sh``."""
    oy = np.maximum(0, (np.asarray(thr) - (kr - ph) * wd) // (sh * wd) + 1)
    rows = np.asarray(rows)
    return np.maximum(0, -(-(oy * q - (rows - 1)) // rows))


def _ready(*, bus: Any, in_addr: Any, grp: int, groups: int, cin: int, plane: int,
           over: int) -> Any:  # fmt: skip
    """``(groups, ...)``: the cycle (from S_IN's) from which the tiles that read groups ``0..g``
    may start: one after the done of group g's last run (runs in order: group by group,
    channel by channel, a ``plane`` apart in DRAM; each run ``READ_ISSUE`` more than its
    ``dma_cycles``: the engine's LS_CMD registers the command, the first the cycle after
    S_IN, each further one the cycle after its predecessor's done)."""
    from autochip.predictor.core_batch import dma_cycles_batch

    bus, in_addr = np.broadcast_arrays(np.asarray(bus, dtype=np.int64),
                                       np.asarray(in_addr, dtype=np.int64))  # fmt: skip
    g = np.repeat(np.arange(groups, dtype=np.int64), cin)  # run n: group n // cin
    c = np.tile(np.arange(cin, dtype=np.int64), groups)  # channel n % cin
    ex = (slice(None),) + (None,) * bus.ndim
    addr = in_addr[None] + (c * plane + g * grp)[ex]
    length = np.minimum(grp, plane - g * grp)[ex] + 0 * addr
    cyc = dma_cycles_batch(addr, length, bus[None] + 0 * addr, over)
    cyc += READ_ISSUE
    done = np.cumsum(cyc, axis=0)
    return done[cin - 1 :: cin] + 1


def first_wait(
    *, rows: Any, bus: Any, in_addr: Any, grp: int, cin: int, plane: int, q: int, sh: int,
    ph: int, kr: int, wd: int, over: int,
) -> Any:  # fmt: skip
    """The load phase of a watermarked layer: S_IN and the first pixel tile's wait, ``1 +
    max(0, ready - (R + 2))``, ``ready`` the cycle from which the row groups of ``grp`` bytes
    per channel that the first pixel tile reads are in (:func:`_ready`). ``rows``, ``bus``,
    ``in_addr`` may be arrays (one value per design)."""
    rows = np.asarray(rows, dtype=np.int64)
    groups = -(-plane // grp)
    k0 = _k0(rows, grp, groups, q, sh, ph, kr, wd)
    ready = _ready(bus=bus, in_addr=in_addr, grp=grp, groups=int(np.max(k0, initial=0)),
                   cin=cin, plane=plane, over=over)  # fmt: skip
    return _wait(rows, _at(ready, k0, np.broadcast(rows, bus, in_addr).shape))


def _at(ready: Any, k0: Any, shape: tuple[int, ...]) -> Any:
    """``ready[k0 - 1]`` per design (``ready`` ``(groups, *shape)``), 1 where ``k0 = 0``."""
    k0 = np.broadcast_to(k0, shape)
    if not ready.shape[0]:
        return np.ones(shape, dtype=np.int64)
    ready = np.broadcast_to(ready, (ready.shape[0], *shape))
    got = np.take_along_axis(ready, np.maximum(k0 - 1, 0)[None], axis=0)[0]
    return np.where(k0 > 0, got, 1)


def prefetch_bound(w_bytes: Any, p_bytes: Any, bus: Any, over: int) -> Any:
    """At most the cycles the prefetch engine takes for ``w_bytes`` of weights and ``p_bytes``
    of parameters (two commands, wherever they start; 0 when there is nothing to prefetch):
    their bus words plus one each, in bursts of at most 256 beats plus one more each where it
    crosses a 4 KB page; each command's issue cycle (``core_model.READ_ISSUE``)."""
    w_bytes, p_bytes = np.asarray(w_bytes, dtype=np.int64), np.asarray(p_bytes, dtype=np.int64)

    def one(n: Any) -> Any:  # a command: its issue (READ_ISSUE), then dma_cycles at most
        words = -(-n // bus) + 1
        return READ_ISSUE + 2 + words + over * (-(-words // 256) + 1)

    return np.where(w_bytes + p_bytes > 0, 1 + one(w_bytes) + one(p_bytes), 0)


def plan(
    *, rows: Any, cols: Any, bus: Any, in_addr: Any, t: Any, pass_tiles: Any, npt: Any,
    pass_run: Any, pf_busy: Any, plain_load: Any, cin: int, h: int, wd: int, q: int, sh: int,
    ph: int, kr: int, over: int,
) -> tuple[Any, Any, Any]:  # fmt: skip
    """Whether to watermark the load, its row group (bytes per channel, 0: none) and its load
    phase, per design: the group of :data:`GROUP_ROWS` (at most :data:`MAX_GROUPS` groups)
    whose first pixel tile waits least (ties: the longer group) among those for which (a)
    no later pixel tile of the first pass waits and (b) the load, then the first pass's
    prefetch loads (at most ``pf_busy`` cycles), end within the first pass (``pass_run``
    cycles from S_INIT: lanes, tiles, flush); only if it beats ``plain_load``, the load phase
    without the watermark. ``t`` is the reduction (beats per tile), ``pass_tiles`` the first
    pass's weight tiles, ``npt`` the pixel tiles.

    Both use the exact cycle from which each group is in (:func:`_ready`) and allow for the
    forwarded writes (the layer may forward its outputs into the ifmap, and the DMA then
    holds a read beat back): none before the first tile's results reach the column walk
    (``T + R`` cycles after its first beat), then at most the walk's ``C`` per tile period
    ``P = max(T, R, C)``, so a load that needs ``W`` more cycles from ``w0`` on is done by
    ``w0 + (W + C) P / (P - C)`` (and never, for this proof, if ``P <= C``)."""
    args = (rows, cols, bus, in_addr, t, pass_tiles, npt, pass_run, pf_busy, plain_load)
    shape = np.broadcast(*args).shape
    rows, cols, bus, in_addr, t, pass_tiles, npt, pass_run, pf_busy, plain_load = (
        np.broadcast_to(np.asarray(x, dtype=np.int64), shape).ravel() for x in args
    )
    period = np.maximum(t, np.maximum(rows, cols))
    plane = h * wd
    # the groups' cycles depend on the bus and the address alone: once per distinct pair
    key, back = np.unique(in_addr * 128 + bus, return_inverse=True)  # (bus <= 64)
    uniq = (key % 128, key // 128)
    back = back.reshape(-1)
    cands = [hg for hg in GROUP_ROWS if hg < h and -(-h // hg) <= MAX_GROUPS]
    # each candidate's load phase (the first tile's wait), then per design the candidates in
    # order (least load, then the longer group); the checks run on a design's first
    # candidate, then on the next where it fails: the first that passes is the choice
    readies, k0s, loads = [], [], []
    for hg in cands:
        grp = hg * wd
        groups = -(-plane // grp)
        ready = _ready(bus=uniq[0], in_addr=uniq[1], grp=grp, groups=groups, cin=cin,
                       plane=plane, over=over)  # fmt: skip
        k0 = _k0(rows, grp, groups, q, sh, ph, kr, wd)
        readies.append(ready)
        k0s.append(k0)
        loads.append(_wait(rows, np.where(k0 > 0, ready[np.maximum(k0 - 1, 0), back], 1)))
    best_grp = np.zeros(rows.shape, dtype=np.int64)
    best_load = plain_load.copy()
    if not cands:
        return best_grp.reshape(shape) > 0, best_grp.reshape(shape), best_load.reshape(shape)
    load_c = np.stack(loads)  # (candidates, designs)
    order = np.lexsort((-np.array(cands)[:, None] + 0 * load_c, load_c), axis=0)
    open_ = load_c.min(axis=0) < plain_load  # designs still to decide
    for rank in range(len(cands)):
        for ci, hg in enumerate(cands):
            idx = np.flatnonzero(open_ & (order[rank] == ci))
            if not idx.size:
                continue
            load = load_c[ci, idx]
            ok = _proof(idx, readies[ci][:, back[idx]], load, k0s[ci][idx], hg * wd, rows=rows,
                        cols=cols, t=t, period=period, pass_tiles=pass_tiles, npt=npt,
                        pass_run=pass_run, pf_busy=pf_busy, q=q, sh=sh, ph=ph, kr=kr,
                        wd=wd)  # fmt: skip
            win = ok & (load < plain_load[idx])
            best_grp[idx[win]] = hg * wd
            best_load[idx[win]] = load[win]
            open_[idx[ok | (load >= plain_load[idx])]] = False
    return best_grp.reshape(shape) > 0, best_grp.reshape(shape), best_load.reshape(shape)


def _proof(idx: Any, ready: Any, load: Any, k0: Any, grp: int, *, rows: Any, cols: Any, t: Any,
           period: Any, pass_tiles: Any, npt: Any, pass_run: Any, pf_busy: Any, q: int,
           sh: int, ph: int, kr: int, wd: int) -> Any:  # fmt: skip
    """:func:`plan`'s checks (a) and (b) for the designs ``idx`` with groups of ``grp`` bytes
    per channel, ``ready`` ``(groups, len(idx))``, their load phase ``load`` and first
    tile's groups ``k0``."""
    rows, cols, t, period, pass_tiles, npt, pass_run, pf_busy = (
        x[idx] for x in (rows, cols, t, period, pass_tiles, npt, pass_run, pf_busy)
    )
    groups = ready.shape[0]
    issue0 = rows + SETUP + load - 1  # the first tile's first beat
    w0 = issue0 + t + rows  # no forwarded write before

    def in_by(ready_g: Any, at: Any) -> Any:
        # done_by(ready_g) <= at, done_by(r) = r up to w0, then w0 + ceil((r - w0 + C) P /
        # (P - C)) (ceil(a / b) <= m, b > 0, m whole: a <= m b)
        late = (period > cols) & ((ready_g - w0 + cols) * period <= (at - w0) * (period - cols))
        return (ready_g <= at) & ((ready_g <= w0) | late)

    # (a) group g (past what the first tile read) in before the first tile reading it
    gs = np.arange(1, groups)[:, None]
    i_g = _first_over(gs * grp, rows, q, sh, ph, kr, wd)
    ok = np.all((i_g >= npt) | (gs < k0) | in_by(ready[1:], issue0 + i_g * pass_tiles * period),
                axis=0)  # fmt: skip
    # (b) the whole load, then the prefetch, within the first pass
    ok &= in_by(ready[groups - 1], pass_run + load - pf_busy - MARGIN)
    return ok

"""Feature-map tiling: which bands a layer is split into so that each fits the core's buffers.

A layer whose input does not fit one ifmap copy, or whose outputs do not fit the ofmap buffer,
becomes several descriptors ("bands"), each a layer of its own for the core:

* compute layers (conv): bands of ``rows`` consecutive output rows (the input rows they read,
  halos included, padding only at the true top / bottom border) times bands of ``groups``
  consecutive groups (after :func:`autochip.builder.compiler.merge_groups`; a plain convolution
  has one group). A row band loads its input as one DMA run per input channel (``rows_in * W``
  bytes at DRAM stride ``H * W``) and writes one run per output channel (``rows * Q`` bytes at
  DRAM stride ``P * Q``); a band of whole rows loads and writes contiguous bytes.
* vector layers (pooling, residual add, subsample, rescale): bands of ``groups`` consecutive
  channels (whole planes, contiguous in DRAM).

The planner is pure (shapes and buffer sizes in, band counts out) so the batch core model can
mirror it. It picks the fewest bands (then the fewest row bands: each row band reloads the
layer's weights), with band sizes balanced (``ceil(n / bands)``). ``None``: not even one
output row of one group fits (the compiler refuses: the core would need column bands or
partial sums of the reduction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Tiling",
    "band_rows",
    "compute_tiling",
    "cross_prefetch",
    "pitch",
    "prefetch_passes",
    "prefetch_passes_batch",
    "vector_tiling",
    "weights_outer",
]


@dataclass(frozen=True)
class Tiling:
    """``row_bands`` bands of ``rows`` output rows (the last one: the rest) times
    ``group_bands`` bands of ``groups`` groups / channels (the last one: the rest)."""

    row_bands: int
    rows: int
    group_bands: int
    groups: int

    @property
    def bands(self) -> int:
        return self.row_bands * self.group_bands

    @property
    def tiled(self) -> bool:
        return self.bands > 1


def pitch(n: int, stride: int, bus: int) -> int:
    """The smallest buffer stride ``>= n`` congruent to the DRAM ``stride`` modulo ``bus``, so a
    run lands in the buffer at the byte lanes it has in DRAM (no rotation)."""
    return n + (stride - n) % bus


def band_rows(i: int, rows: int, p: int, h: int, kr: int, sh: int, ph: int) -> tuple[int, ...]:
    """Row band ``i``: output rows ``[oy0, oy1)`` and the input rows ``[iy0, iy1)`` they read."""
    oy0 = i * rows
    oy1 = min(p, oy0 + rows)
    iy0 = max(0, oy0 * sh - ph)
    iy1 = min(h, (oy1 - 1) * sh - ph + kr)
    return oy0, oy1, iy0, iy1


def _balanced(n: int, most: int) -> tuple[int, int]:
    bands = -(-n // most)
    size = -(-n // bands)
    return -(-n // size), size


def compute_tiling(
    *,
    cg: int,
    h: int,
    w: int,
    groups: int,
    kr: int,
    sh: int,
    p: int,
    q: int,
    cols: int,
    bus: int,
    if_depth: int,
    o_depth: int,
    off_in: int,
) -> Tiling | None:
    """Bands of a convolution with ``groups`` groups of ``cg`` input channels (``h x w``), kernel
    height ``kr``, row stride ``sh`` and ``p x q`` outputs, on a core with ``cols`` columns, a
    ``bus``-byte bus, ``if_depth`` bytes per ifmap copy and ``o_depth`` ofmap bytes. ``off_in``:
    the input's byte offset within its bus word (DRAM address mod ``bus``).

    One band when the whole input fits from ``off_in`` on and one weight tile's outputs fit
    (``cols * p * q + bus - 1``), exactly the compiler's untiled checks. Otherwise every band is
    checked with the worst offset, ``bus - 1``: a row band of ``rows_in`` input rows needs
    ``bus - 1 + (channels - 1) * pitch(rows_in * w, h * w) + rows_in * w`` ifmap bytes and
    ``bus - 1 + cols * pitch(rows * q, p * q)`` ofmap bytes."""
    hw, pq = h * w, p * q
    o_full = cols * pq + bus - 1 <= o_depth
    if off_in + groups * cg * hw <= if_depth and o_full:
        return Tiling(1, p, 1, groups)

    def fits(rows: int, gb: int) -> bool:
        if rows >= p:  # whole rows: contiguous input and output
            return o_full and bus - 1 + gb * cg * hw <= if_depth
        rows_in = min(h, (rows - 1) * sh + kr)
        need = bus - 1 + (gb * cg - 1) * pitch(rows_in * w, hw, bus) + rows_in * w
        return need <= if_depth and bus - 1 + cols * pitch(rows * q, pq, bus) <= o_depth

    best: Tiling | None = None
    for gb in range(groups, 0, -1):
        if not fits(1, gb):
            continue
        lo, hi = 1, p  # the most rows that fit (fits is monotone in rows)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(mid, gb) else (lo, mid - 1)
        nr, rows = _balanced(p, lo)
        ng, size = _balanced(groups, gb)
        cand = Tiling(nr, rows, ng, size)
        if best is None or (cand.bands, cand.row_bands) < (best.bands, best.row_bands):
            best = cand
    return best


def vector_tiling(
    *,
    c: int,
    hw: int,
    pq: int,
    two_inputs: bool,
    bus: int,
    if_depth: int,
    o_depth: int,
    off_in: int,
    off_in2: int,
    off_out: int,
) -> Tiling | None:
    """Channel bands of a vector layer of ``c`` channels of ``hw`` input and ``pq`` output bytes
    (``two_inputs``: a residual add, both inputs in the ifmap, the second from the bus word after
    the first). One band when it fits with its real offsets (the compiler's untiled checks),
    otherwise bands of whole channel planes checked with the worst offsets (``bus - 1``)."""

    def need(ch: int, o1: int, o2: int) -> int:
        n = o1 + ch * hw
        return -(-n // bus) * bus + o2 + ch * hw if two_inputs else n

    if need(c, off_in, off_in2) <= if_depth and off_out + c * pq <= o_depth:
        return Tiling(1, 1, 1, c)
    most = 0
    for ch in range(c, 0, -1):
        if need(ch, bus - 1, bus - 1) <= if_depth and bus - 1 + ch * pq <= o_depth:
            most = ch
            break
    if most == 0:
        return None
    ng, size = _balanced(c, most)
    return Tiling(1, 1, ng, size)


def weights_outer(til: Tiling, *, groups: int, passes: int, in_bytes: int, w_bytes: int) -> bool:
    """Whether a convolution (one group) tiled in row bands runs its weight passes outermost:
    one descriptor per (pass, row band), the row bands of a pass after each other, all but the
    first keeping the pass's weights in the buffers (descriptor flag ``keep``: no weight or
    parameter load). Moves ``passes * in_bytes + w_bytes`` instead of ``row_bands * w_bytes +
    in_bytes`` bytes (rows outermost: every row band loads every weight tile); chosen when
    that is fewer. ``w_bytes``: the layer's weight tiles and parameter records in DRAM."""
    return (
        groups == 1
        and til.row_bands > 1
        and passes * in_bytes + w_bytes < til.row_bands * w_bytes + in_bytes
    )


PREFETCH_PARAM_TILES = 8  # core.PARAM_TILES // 2: one parameter slot
PREFETCHED_PASS = 3  # core_main.v S_LW, S_PF, S_LP of a prefetched pass (no command)
# a pass's two load commands beyond their bus words, estimated: issue and done (2 each) and
# one burst's handshakes (2 each, core_timing.yaml), plus the prefetch engine's start (1)
LOAD_ISSUE = 9
WRITE_ISSUE = 6  # a write-back command: issue and done, one burst's handshakes (4)


def prefetch_passes(
    tpp: Any,
    ntiles: Any,
    rows_tile: Any,
    w_depth: Any,
    *,
    load_tile: Any,
    wb_tile: Any,
    rows: Any,
    cols: Any,
    npt: Any,
    tile_cycles: Any,
) -> Any:
    """Weight tiles per pass with weight prefetch (descriptor op bit 12), 0 without; scalars
    or numpy arrays (the batch model's, element by element). With prefetch the weight and
    parameter buffers hold two slots of ``n`` tiles (slot 1 at weight row ``n rows_tile``,
    parameter word ``n``): pass p + 1's tiles load into the other slot while pass p computes.
    ``n`` can be at most ``tpp`` (the tiles per pass without prefetch, from the weight, ofmap
    and parameter buffers), ``ntiles - 1`` (two passes at least), ``w_depth // (2 rows_tile)``
    (two slots in the weight buffer) and 8 (two in the 16-word parameter buffer).

    Among those ``n`` and no prefetch, the fewest estimated exposed cycles win (no prefetch
    on a tie): without prefetch every load is exposed, ``ntiles load_tile`` (``load_tile``:
    bus words of one tile's weights and parameter records) plus ``LOAD_ISSUE`` per pass (its
    two commands), ``(2R + C + 12)`` of set-up and flush per pass and the write-backs of all
    passes but the last (``wb_tile`` bus words a tile: only the last pass's is posted); with
    it the first pass's load, ``3`` cycles per pass more, for every pass but the last what its
    successor's load takes beyond its compute, and the same write-backs. A smaller first pass
    exposes less of its load, more passes pay more set-up, flush and waited write-backs."""
    lim = np.minimum(
        np.minimum(tpp, np.asarray(ntiles) - 1),
        np.minimum(np.asarray(w_depth) // (2 * np.maximum(rows_tile, 1)), PREFETCH_PARAM_TILES),
    )
    shape = np.broadcast_shapes(*(np.shape(x) for x in (
        tpp, ntiles, lim, load_tile, wb_tile, rows, cols, npt, tile_cycles)))  # fmt: skip
    out = np.zeros(shape, dtype=np.int64)
    at = np.flatnonzero(np.broadcast_to(lim >= 1, shape))  # candidates only

    def flat(x: Any) -> Any:
        return np.broadcast_to(np.asarray(x), shape).ravel()[at]

    tpp, ntiles, lim, load_tile, wb_tile, npt, tile_cycles = (
        flat(x) for x in (tpp, ntiles, lim, load_tile, wb_tile, npt, tile_cycles))  # fmt: skip
    over = 2 * flat(rows) + flat(cols) + 12
    p0 = -(-ntiles // np.maximum(tpp, 1))
    best = p0 * (over + LOAD_ISSUE) + ntiles * load_tile + _waited_writes(p0, tpp, wb_tile)
    got = np.zeros(at.size, dtype=np.int64)
    ov3, ntc = over + PREFETCHED_PASS, npt * tile_cycles
    for n in range(1, int(lim.max(initial=0)) + 1):
        pm1 = (ntiles + (n - 1)) // n - 1  # passes - 1
        load = n * load_tile + LOAD_ISSUE
        # passes (over + 3) + load + (passes - 1) (the wait for the next load + the write-back)
        wait = np.maximum(load - over - n * ntc, 0)
        est = ov3 + load + pm1 * (ov3 + wait + n * wb_tile + WRITE_ISSUE)
        take = (est < best) & (n <= lim)
        np.copyto(got, n, where=take)
        np.copyto(best, est, where=take)
    out.ravel()[at] = got
    return out if out.ndim else int(out)


def prefetch_passes_batch(
    tpp: Any,
    ntiles: Any,
    rows_tile: Any,
    w_depth: Any,
    *,
    load_tile: Any,
    wb_tile: Any,
    rows: Any,
    cols: Any,
    npt: Any,
    tile_cycles: Any,
) -> Any:
    """:func:`prefetch_passes` on numpy arrays (broadcast together), the same choice element
    by element (``tests/test_prefetch.py`` checks it against :func:`prefetch_passes`), for the
    batch model's hundreds of thousands of (design, layer) pairs without masked selects (slow
    on random masks): each estimate less ``k0 = over + 3 + LOAD_ISSUE`` (common to every
    ``n``), ``n load_tile + (passes - 1) (over + 3 + WRITE_ISSUE + n wb_tile + max(0,
    n (load_tile - npt tile_cycles) + LOAD_ISSUE - over))`` (``passes - 1 = (ntiles - 1) //
    n`` for ``n < ntiles``), is kept as running sums over ``n``, scaled by 16 with ``n`` in
    the low 4 bits, so that one running minimum over the no-prefetch estimate (``n = 0``) and
    ``n = 1 .. 8`` picks the fewest cycles and, on a tie, the smallest ``n`` (no prefetch
    first); ``n`` beyond an element's ``lim`` is pushed out of the minimum by a penalty."""
    tpp, ntiles, rows_tile, w_depth, load_tile, wb_tile, rows, cols, npt, tile_cycles = (
        np.asarray(x, dtype=np.int64) for x in (tpp, ntiles, rows_tile, w_depth, load_tile,
                                                wb_tile, rows, cols, npt, tile_cycles))  # fmt: skip
    lim = np.minimum(
        np.minimum(tpp, ntiles - 1),
        np.minimum(w_depth // (2 * np.maximum(rows_tile, 1)), PREFETCH_PARAM_TILES),
    )
    top = int(lim.max(initial=0))
    shape = np.broadcast_shapes(*(np.shape(x) for x in (
        lim, load_tile, wb_tile, rows, cols, npt, tile_cycles)))  # fmt: skip
    over = 2 * rows + cols + 12
    p0 = -(-ntiles // np.maximum(tpp, 1))
    k0 = over + PREFETCHED_PASS + LOAD_ISSUE
    # the no-prefetch estimate less k0, times 16 (n = 0 in the low bits)
    best = np.zeros(shape, dtype=np.int64)
    best += p0 * (over + LOAD_ISSUE) + ntiles * load_tile + _waited_writes(p0, tpp, wb_tile) - k0
    best <<= 4
    if top >= 1:
        nt1 = np.broadcast_to(ntiles - 1, shape)  # passes - 1 = (ntiles - 1) // n, n < ntiles
        z_inc = np.broadcast_to(16 * load_tile + 1, shape)  # 16 n load_tile + n
        x_inc = np.broadcast_to(16 * wb_tile, shape)
        y_inc = np.broadcast_to(16 * (load_tile - npt * tile_cycles), shape)
        z = np.zeros(shape, dtype=np.int64)
        x = np.zeros(shape, dtype=np.int64)
        x += 16 * (over + (PREFETCHED_PASS + WRITE_ISSUE))  # + 16 n wb_tile
        y = np.zeros(shape, dtype=np.int64)
        y += 16 * (LOAD_ISSUE - over)  # + 16 n (load_tile - npt tile_cycles)
        big = np.int64(1 << 61)  # more than any estimate: n > lim never wins
        for n in range(1, top + 1):
            z += z_inc
            x += x_inc
            y += y_inc
            est = np.maximum(y, 0)
            est += x
            est *= nt1 >> (n.bit_length() - 1) if n & (n - 1) == 0 else nt1 // n
            est += z
            est += np.multiply(lim < n, big)
            np.minimum(best, est, out=best)
    out = best & 15
    return out if out.ndim else int(out)


def _waited_writes(passes: Any, n: Any, wb_tile: Any) -> Any:
    """The write-backs of every pass but the last (waited for: only the last is posted), of
    ``n`` tiles each, estimated: ``wb_tile`` bus words a tile, ``WRITE_ISSUE`` a command."""
    return (passes - 1) * (n * wb_tile + WRITE_ISSUE)


def cross_prefetch(
    ntiles: Any,
    tpp: Any,
    pf: Any,
    rows_tile: Any,
    w_depth: Any,
    first_loads: Any,
    last_run: Any,
    col: Any = None,
) -> tuple[Any, Any, Any, Any]:
    """Cross-layer weight prefetch (descriptor op bits 13-15): which compute layers get their
    first pass's weight tiles and parameter records loaded during the last pass of the compute
    layer before them (vector layers between them do not touch the weight and parameter
    buffers), and where. Arrays ``(H, Lc)``: the compute layers of ``H`` programs in program
    order (``ntiles``, tiles per pass ``tpp``, weight prefetch ``pf``, weight rows per tile
    ``rows_tile``, the first pass's two load commands' ``dma_cycles`` ``first_loads`` and the
    last pass's cycles from its S_INIT to its S_WB ``last_run``); ``w_depth`` ``(H, 1)``.

    Layer L is prefetched (``xin``) when the load is hidden by the previous compute layer P's
    last pass (``1 + first_loads(L) <= last_run(P)``: P's write-back never waits for it, so
    the program is never slower) and L's first pass fits beside P's last pass: at weight row /
    parameter word 0 (slot 0) when P's last pass lies above it, else in slot 1 from the end of
    P's last pass on (``s0``: L's first pass computes on slot 1, at ``w_slot`` / ``p_slot``,
    at least its own prefetch slot's base), within the weight buffer and the 16 parameter
    words. Returns ``(xin, s0, w_slot, p_slot)``, ``(H, Lc)`` each; P's last pass's slot
    follows from its own ``s0`` (a scan over the layers, vectorised over programs).

    With ``col`` (Lc,) the arguments but ``first_loads`` and ``w_depth`` are per distinct layer
    column, ``(H, D)`` (layer k's is column ``col[k]``): the same result as with the columns
    gathered (``x[:, col]``), what depends on them alone computed once per column."""
    # (columns, H) inside: a column of every program is one contiguous row for the scan
    ntiles, tpp, rows_tile = (
        np.ascontiguousarray(np.atleast_2d(np.asarray(x, dtype=np.int64)).T)
        for x in (ntiles, tpp, rows_tile)
    )
    first_loads, last_run = (np.atleast_2d(np.asarray(x, dtype=np.int64))
                             for x in (first_loads, last_run))  # fmt: skip
    pf = np.ascontiguousarray(np.atleast_2d(np.asarray(pf, dtype=bool)).T)
    w_depth = np.asarray(w_depth, dtype=np.int64).reshape(-1)
    H, L = first_loads.shape
    c = np.arange(L) if col is None else np.asarray(col, dtype=np.int64).reshape(-1)
    # L's load hidden by P's last pass (1 + first_loads(L) <= last_run(P)), (L - 1, H)
    prev = last_run[:, :-1] if col is None else last_run[:, c[:-1]]
    hidden = np.ascontiguousarray((first_loads[:, 1:] < prev).T)
    some: Any = hidden.any(axis=1)
    tp = np.maximum(tpp, 1)
    n0 = np.minimum(tp, ntiles)  # the first pass's tiles
    # passes (at least one): the last one's tiles and parity from the division
    npass = np.maximum(-(-ntiles // tp), 1)
    n_last = ntiles - (npass - 1) * tp
    # the last pass's slot differs from the first one's with prefetch and an even pass count
    flip = pf & (npass & 1 == 0)
    w_def = pf * (tp * rows_tile)  # slot 1 without the cross-layer load
    p_def = pf * tp
    w_len, p_len = n0 * rows_tile, n0  # the first pass's rows and words
    w_top = w_depth[None, :] - w_len
    p_top = 2 * PREFETCH_PARAM_TILES - p_len
    w_end, p_end = n_last * rows_tile, n_last  # the last pass's rows and words past its base
    w_slot, p_slot = w_def[c], p_def[c]  # (L, H): copies
    xin = np.zeros((L, H), dtype=bool)
    s0 = np.zeros((L, H), dtype=bool)
    for k in range(1, L):
        ck, cj = c[k], c[k - 1]
        if not some[k - 1]:
            continue
        hk = hidden[k - 1]
        j = k - 1
        last = s0[j] ^ flip[cj]  # P's last pass's slot
        wb = last * w_slot[j]
        pb = last * p_slot[j]
        low = (wb >= w_len[ck]) & (pb >= p_len[ck])  # slot 0 lies below P's last pass
        ws1 = np.maximum(w_def[ck], wb + w_end[cj])
        ps1 = np.maximum(p_def[ck], pb + p_end[cj])
        x = (ws1 <= w_top[ck]) & (ps1 <= p_top[ck])
        x |= low
        x &= hk
        up = x > low  # x and not low
        xin[k], s0[k] = x, up
        # ws1 >= w_def >= 0: slot 1 moves up to ws1 where up, else stays at w_def (no mask)
        np.maximum(w_slot[k], np.multiply(up, ws1), out=w_slot[k])
        np.maximum(p_slot[k], np.multiply(up, ps1), out=p_slot[k])
    return xin.T, s0.T, w_slot.T, p_slot.T

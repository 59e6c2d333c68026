"""Cycle model of autochip's own generated RTL: the output-stationary array of ``autochip emit``.

Timing of ``templates/pe_array_os.v.j2`` for an R x C array and a tile of reduction depth T
(T beats streamed into the array, one per cycle, the first one taken in cycle 0):

* PE (r, c) sees beat k after the row skew (r cycles) and c hops right (or c column skew and r
  hops down): it accumulates beat k at the clock edge ending cycle k + r + c.
* Row r is final after cycle (T - 1) + r + (C - 1); the read-out registers it one cycle later,
  so row r is on ``out_data`` in cycle T + C + r and the last row (``out_last``) in cycle
  T + C + R - 1.
* ``in_ready`` is high again in that same cycle, so the next tile's first beat is taken then:
  back to back, a tile occupies the array for exactly **T + R + C - 1 cycles**.

These are the figures the cocotb tests measure in simulation and ``autochip emit`` writes into
the manifest.
"""

from __future__ import annotations

from autochip.errors import SpecError

__all__ = [
    "OS_TILE_CYCLES_FORMULA",
    "os_gemm_cycles",
    "os_gemm_tiles",
    "os_last_row_cycle",
    "os_tile_cycles",
]

OS_TILE_CYCLES_FORMULA = "T + R + C - 1"


def _check(where: str, **values: int) -> None:
    bad = [
        f"{k}: expected an integer >= 1, found {v!r}"
        for k, v in values.items()
        if not isinstance(v, int) or isinstance(v, bool) or v < 1
    ]
    if bad:
        raise SpecError(where, bad)


def os_tile_cycles(rows: int, cols: int, depth: int) -> int:
    """Cycles one tile of reduction depth ``depth`` occupies an R x C output-stationary array.

    Counted from the cycle the first beat is taken to the cycle the last accumulator row is on
    ``out_data`` (when the next tile's first beat can be taken): ``T + R + C - 1``.
    """
    _check("os_tile_cycles", rows=rows, cols=cols, depth=depth)
    return depth + rows + cols - 1


def os_last_row_cycle(rows: int, cols: int, depth: int) -> int:
    """Cycle index (first beat = cycle 0) in which ``out_last`` is high: same as the tile cycles."""
    return os_tile_cycles(rows, cols, depth)


def os_gemm_tiles(m: int, n: int, rows: int, cols: int) -> int:
    """Tiles of an (m x k) @ (k x n) GEMM on an R x C array: ceil(m / R) * ceil(n / C)."""
    _check("os_gemm_tiles", m=m, n=n, rows=rows, cols=cols)
    return -(-m // rows) * -(-n // cols)


def os_gemm_cycles(m: int, k: int, n: int, rows: int, cols: int) -> int:
    """Cycles of a whole (m x k) @ (k x n) GEMM streamed tile after tile, each of depth k."""
    return os_gemm_tiles(m, n, rows, cols) * os_tile_cycles(rows, cols, k)

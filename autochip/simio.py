"""What a cocotb testbench needs from autochip, without importing the rest of it.

A testbench runs inside the simulator process, whose Python start-up is part of every
simulation; importing :mod:`autochip.builder` there would load the predictor and the emitter.
This module needs only numpy: the JSON configuration that :func:`autochip.builder.sim.run`
passes (:func:`testbench_config`) and the ``$readmemh`` / ``$writememh`` files of
``templates/sim_axi_ram.v`` (:func:`write_memh`, :func:`read_memh`), converted with numpy as a
whole (no Python work per word).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from autochip.errors import ToolError

__all__ = ["CONFIG_PLUSARG", "read_memh", "testbench_config", "write_memh"]

CONFIG_PLUSARG = "autochip_config"

# ASCII hex digit -> its value; every other byte -> 255 (not a digit)
_HEX = np.full(256, 255, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789", dtype=np.uint8)] = np.arange(10, dtype=np.uint8)
_HEX[np.frombuffer(b"abcdef", dtype=np.uint8)] = np.arange(10, 16, dtype=np.uint8)
_HEX[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.arange(10, 16, dtype=np.uint8)


def testbench_config() -> dict[str, Any]:
    """Inside a cocotb test: the JSON configuration passed by ``autochip.builder.sim.run``."""
    import cocotb

    path = cocotb.plusargs.get(CONFIG_PLUSARG)
    if not isinstance(path, str):
        raise ToolError(f"expected the plusarg +{CONFIG_PLUSARG}=PATH, found none")
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


def write_memh(path: Path, data: bytes, word_bytes: int, first_word: int = 0) -> None:
    """Write ``data`` (padded with zeros to whole words) as one little-endian word per line.

    ``first_word`` > 0 starts the file with an ``@ADDR`` record, so ``$readmemh`` loads the
    words from that word address on and leaves the others as they are."""
    buf = np.frombuffer(data, dtype=np.uint8)
    words = -(-buf.size // word_bytes)
    full = np.zeros(words * word_bytes, dtype=np.uint8)
    full[: buf.size] = buf
    rows = full.reshape(words, word_bytes)[:, ::-1]  # most significant byte first
    digits = np.frombuffer(rows.tobytes().hex().encode(), dtype=np.uint8)
    lines = np.full((words, 2 * word_bytes + 1), ord("\n"), dtype=np.uint8)
    lines[:, :-1] = digits.reshape(words, 2 * word_bytes)
    head = f"@{first_word:x}\n".encode() if first_word else b""
    Path(path).write_bytes(head + lines.tobytes())


def read_memh(path: Path, word_bytes: int, words: int) -> bytes:
    """The first ``words`` words of a ``$writememh`` file as little-endian bytes.

    A file of exactly one zero-padded word per line (Verilator's and Icarus' output) is
    converted as one array; any other layout (comments, ``@`` records, short words) goes
    through a line-by-line parser."""
    raw = Path(path).read_bytes()
    width = 2 * word_bytes
    if len(raw) >= words * (width + 1):
        lines = np.frombuffer(raw, dtype=np.uint8, count=words * (width + 1))
        lines = lines.reshape(words, width + 1)
        nibbles = _HEX[lines[:, :width]]
        if bool(np.all(lines[:, width] == ord("\n"))) and not bool(np.any(nibbles == 255)):
            pairs = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]  # most significant byte first
            return np.ascontiguousarray(pairs[:, ::-1]).tobytes()
    return _read_memh_lines(raw.decode(errors="replace"), path, word_bytes, words)


def _read_memh_lines(text: str, path: Path, word_bytes: int, words: int) -> bytes:
    vals = []
    for line in text.split("\n"):
        line = line.split("//", 1)[0].strip()
        if line and not line.startswith("@"):
            vals.extend(line.split())
    if len(vals) < words:
        raise ToolError(f"expected {words} words in '{path}', found {len(vals)}")
    text = "".join(v.rjust(2 * word_bytes, "0") for v in vals[:words])
    if any(c in text for c in "xXzZ"):
        raise ToolError(f"expected defined values in '{path}', found x or z")
    rows = np.frombuffer(bytes.fromhex(text), dtype=np.uint8).reshape(words, word_bytes)
    return rows[:, ::-1].tobytes()

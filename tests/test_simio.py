"""The $readmemh / $writememh converters of autochip.simio: numpy's whole-file path agrees with
the line-by-line parser, a load file can start at a word address, undefined words are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autochip.errors import ToolError
from autochip.simio import _read_memh_lines, read_memh, write_memh


@pytest.mark.parametrize("word", [1, 4, 16, 64])
def test_round_trip_matches_the_line_parser(tmp_path: Path, word: int) -> None:
    data = np.random.default_rng(word).integers(0, 256, 7 * word + 3, dtype=np.uint8).tobytes()
    path = tmp_path / "m.hex"
    write_memh(path, data, word)
    padded = data + bytes(-len(data) % word)
    words = len(padded) // word
    assert read_memh(path, word, words) == padded
    assert _read_memh_lines(path.read_text(), path, word, words) == padded
    assert read_memh(path, word, 3) == padded[: 3 * word]  # a prefix


def test_load_file_with_a_word_address(tmp_path: Path) -> None:
    path = tmp_path / "m.hex"
    write_memh(path, bytes(range(8)), 4, first_word=0x2A)
    assert path.read_text() == "@2a\n03020100\n07060504\n"


def test_other_layouts_go_through_the_line_parser(tmp_path: Path) -> None:
    path = tmp_path / "m.hex"
    path.write_text("// a comment\n@0\n0102\n  3 \n")
    assert read_memh(path, 2, 2) == bytes([2, 1, 3, 0])


def test_undefined_words_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.hex"
    path.write_text("00ff\nxxxx\n")
    with pytest.raises(ToolError, match="x or z"):
        read_memh(path, 2, 2)
    with pytest.raises(ToolError, match="expected 3 words"):
        read_memh(path, 2, 3)

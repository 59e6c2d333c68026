"""``scripts/explore_results.py --write`` rewrites only its block of docs/explore.md."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "explore_results.py"


def _script() -> object:
    spec = importlib.util.spec_from_file_location("explore_results", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_write_block_replaces_only_its_block(tmp_path: Path) -> None:
    mod = _script()
    doc = tmp_path / "explore.md"
    head = "# t\n\nthe `<!-- results:begin -->` marker, quoted in prose, is no marker\n"
    tail = "\n<!-- other:begin -->\nkeep\n<!-- other:end -->\nend\n"
    doc.write_text(f"{head}<!-- results:begin -->\nold\ntable\n<!-- results:end -->\n{tail}")
    write = mod._write_block  # type: ignore[attr-defined]
    write("results", "| a |\n| b |\n", doc)
    want = f"{head}<!-- results:begin -->\n| a |\n| b |\n<!-- results:end -->\n{tail}"
    assert doc.read_text() == want
    write("results", "| a |\n| b |", doc)  # twice: the same page, nothing duplicated
    assert doc.read_text() == want
    doc.write_text(want + "<!-- results:begin -->\n")
    with pytest.raises(SystemExit, match="expected one '<!-- results:begin -->' line"):
        write("results", "x", doc)
    assert doc.read_text() == want + "<!-- results:begin -->\n"  # nothing written

"""scripts/compression_results.py: run records are keyed by recipe, merged, and rendered."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def cr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "compression_results", ROOT / "scripts" / "compression_results.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "compression_results", mod)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "RECORDS", tmp_path / "records")
    return mod


def _record(cr: ModuleType, setup: object, row: object, seed: int, acc: float) -> dict[str, object]:
    return {
        "hash": cr._key(setup, row, seed),
        "command": f"autochip compress ... --seed {seed}",
        "result": {
            "accuracy_fp32": 0.9,
            "accuracy": acc,
            "accuracy_integer": acc,
            "agreement": 1.0,
        },
        "macs": 1000,
        "params": 100,
        "latency_s": 2e-6,
        "fp32_macs": 1000,
        "fp32_params": 90,
    }


def test_key_names_the_recipe_not_the_output_folder(cr: ModuleType, tmp_path: Path) -> None:
    setup = cr.SETUPS["fashion-mnist"]
    row = next(r for r in setup.rows if r.key == "int8")
    key = cr._key(setup, row, 0)
    assert key == cr._key(setup, row, 0)
    assert key != cr._key(setup, row, 1)  # the seed is part of the recipe
    other = next(r for r in setup.rows if r.key == "int4")
    assert key != cr._key(setup, other, 0)
    # The output folder is not (the key takes none): records move between checkouts.
    assert str(tmp_path) not in json.dumps(cr._argv(setup, row, 0, cr.Path("OUT")))


def test_records_merge_and_render(cr: ModuleType) -> None:
    setup = cr.SETUPS["fashion-mnist"]
    base = next(r for r in setup.rows if r.base)
    int8 = next(r for r in setup.rows if r.key == "int8")
    cr._merge_record("fashion-mnist", "fp32_s0", _record(cr, setup, base, 0, 0.89))
    for seed, acc in ((0, 0.88), (1, 0.86)):
        cr._merge_record("fashion-mnist", f"int8_s{seed}", _record(cr, setup, int8, seed, acc))
    recs = json.loads((cr.RECORDS / "fashion-mnist.json").read_text())
    assert sorted(recs) == ["fp32_s0", "int8_s0", "int8_s1"]  # merged, none lost
    # A record of another recipe (a changed command line) is not used.
    stale = _record(cr, setup, int8, 2, 0.5)
    stale["hash"] = "0" * 12
    cr._merge_record("fashion-mnist", "int8_s2", stale)
    assert cr._cached(setup, int8, 2, "fashion-mnist") is None
    table = cr.render(setup, [0, 1, 2], "fashion-mnist")
    line = next(x for x in table.splitlines() if x.startswith("| int8 (W8/A8)"))
    cells = [c.strip() for c in line.split("|")]
    # n = 2 (seed 2's record is stale); mean 87.00, sample std 1.41; delta -3.00 +- 1.41.
    assert cells[3] == "2"
    assert cells[4] == "87.00 ± 1.41"
    assert cells[5] == "-3.00 ± 1.41"
    assert cells[6] == "≤ 0.3: missed by 2.70 (n = 2)"
    assert "| FP32 |" in table and "| 1,000 | 90 |" in table


def test_validation_split_holds_out_the_last_training_images(
    cr: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fashion-mnist-val: train = the first N - n training images, test = the last n, read back
    by the CLI's loader; the test set of the official split is not used."""
    import gzip
    import struct

    import numpy as np

    from autochip.compress.data import load_fashion_mnist

    src = tmp_path / "src"
    src.mkdir()
    images = np.arange(10 * 28 * 28, dtype=np.uint32).reshape(10, 28, 28) % 251
    labels = np.arange(10, dtype=np.uint8) % 10
    for split in ("train", "t10k"):
        img = struct.pack(">4I", 0x803, 10, 28, 28) + images.astype(np.uint8).tobytes()
        lab = struct.pack(">2I", 0x801, 10) + labels.tobytes()
        (src / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(img))
        (src / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(lab))
    monkeypatch.setattr(cr, "FASHION_DIR", src)
    monkeypatch.setattr(cr, "ROOT", tmp_path)
    spec = cr._validation_data(3)
    assert spec == "fashion-mnist:build/fashion-mnist-val3"
    data = load_fashion_mnist(str(tmp_path / "build" / "fashion-mnist-val3"))
    assert len(data.y_train) == 7 and len(data.y_test) == 3
    assert data.y_train.tolist() == list(range(7)) and data.y_test.tolist() == [7, 8, 9]
    expect = images[7:].astype(np.uint8).astype(np.float32) / 255
    assert np.allclose(data.x_test.numpy()[:, 0], expect)

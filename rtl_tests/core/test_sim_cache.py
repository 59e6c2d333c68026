"""The cache of compiled simulation models (autochip.builder.sim.cached_build): a second build
of the same sources, top and options reuses the first one's model wherever it is asked for,
other sources get another model, and concurrent builds of one key leave one complete model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autochip.builder import sim
from autochip.errors import ToolError

COUNTER = """module counter (input wire clk, input wire rst, output reg [7:0] q);
    always @(posedge clk) q <= rst ? 8'd0 : q + 8'd{step};
endmodule
"""


def _sources(step: int) -> dict[str, str]:
    return {"counter.v": COUNTER.format(step=step)}


@pytest.mark.sim
def test_second_build_reuses_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = sim.cached_build(_sources(1), "counter", "icarus", root=tmp_path)
    assert (first.build_dir / "key.json").is_file()
    assert first.build_dir.parent == (tmp_path / "icarus").resolve()

    def no_compile(*args: object, **kwargs: object) -> sim.SimBuild:
        raise AssertionError("compiled again although the model is cached")

    monkeypatch.setattr(sim, "build", no_compile)
    again = sim.cached_build(_sources(1), "counter", "icarus", root=tmp_path)
    assert again == first
    monkeypatch.undo()
    other = sim.cached_build(_sources(3), "counter", "icarus", root=tmp_path)
    assert other.build_dir != first.build_dir
    assert sorted(p.name for p in (tmp_path / "icarus").iterdir()) == sorted(
        [first.build_dir.name, other.build_dir.name]
    )


@pytest.mark.sim
def test_concurrent_builds_of_one_key(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from autochip.builder import sim; "
        f"b = sim.cached_build({_sources(2)!r}, 'counter', 'icarus', root=Path(sys.argv[1])); "
        "print(b.build_dir)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(3)
    ]
    dirs = {p.communicate(timeout=300)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(dirs) == 1
    built = Path(dirs.pop())
    assert (built / "key.json").is_file()
    assert [p.name for p in (tmp_path / "icarus").iterdir()] == [built.name]  # no temp left


@pytest.mark.sim
def test_profile_guided_build_needs_its_training_profile(tmp_path: Path) -> None:
    """A profile-guided Verilator build whose training run wrote no profile is refused, and the
    half-built model leaves nothing in the cache (the instrumented build itself must work)."""
    trained: list[sim.SimBuild] = []

    def train(model: sim.SimBuild) -> None:
        assert (model.build_dir / "counter").is_file()  # the -fprofile-generate executable
        trained.append(model)

    with pytest.raises(ToolError, match="expected the training run to write a profile"):
        sim.cached_build(_sources(5), "counter", "verilator", root=tmp_path, train=train)
    assert len(trained) == 1
    assert list((tmp_path / "verilator").iterdir()) == []

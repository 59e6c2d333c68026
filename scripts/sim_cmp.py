"""One profile-guided ``simulate_core`` call on N copies of a build's first input.

``PYTHONPATH=. nice -n 5 .venv/bin/python scripts/sim_cmp.py BUILD N`` prints the cycles of the
core's run and its rate per wall and per CPU second of the simulator process (the lines of
docs/core.md's "Speed" tables; run two builds alternately to compare their RTL: each build
folder simulates its own ``rtl/``, the compiled model comes from the cache).
"""

import sys
from pathlib import Path

import numpy as np

from autochip.builder.core_sim import compile_testbench, simulate_core
from autochip.reference import load_integer_model

build, copies = Path(sys.argv[1]), int(sys.argv[2])
model = load_integer_model(build / "model.npz")
x = np.repeat(np.load(build / "inputs.npy")[:1], copies, axis=0)
compile_testbench(build, pgo=True)
r = simulate_core(build, model, x, pgo=True)
print(
    f"{build.name} cycles_run={r.cycles_run} run_s={r.run_seconds:.2f} "
    f"cpu_s={r.run_cpu_seconds:.2f} per_s={r.cycles_run / r.run_seconds:.0f} "
    f"per_cpu_s={r.cycles_run / r.run_cpu_seconds:.0f} bit_exact={r.bit_exact}"
)

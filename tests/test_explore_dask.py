"""The sweep on a Dask cluster (``--scheduler``) gives exactly the local result."""

from __future__ import annotations

import numpy as np

from autochip.builder.cluster import close_clients
from autochip.builder.explore import explore
from autochip.builder.space import default_space, parse_budget, space_from_dict
from autochip.hw.platform import load_platform
from autochip.ir import graph_for
from autochip.predictor.core_batch import core_workload


def test_distributed_sweep_equals_local() -> None:
    from dask.distributed import LocalCluster

    plat = load_platform("zc706")
    wl = core_workload(graph_for("resblock_digits"))
    space = space_from_dict(
        {"rows": [1, 2, 4, 8], "cols": [2, 4, 8, 16], "ifmap_kb": [4, 8, 16, 32],
         "weight_kb": [1, 2, 4], "ofmap_kb": [1, 2, 4]},
        default_space(wl, plat),
    )  # fmt: skip
    budget = parse_budget("lut=30000", plat)
    local = explore(wl, plat, space, budget, "edp", progress=False)
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        dist = explore(wl, plat, space, budget, "edp", progress=False,
                       scheduler=cluster.scheduler_address)  # fmt: skip
        close_clients(cluster.scheduler_address)  # no reconnecting client after the cluster
    # both phases: the sweep, then the designs that need feature-map tiling
    assert dist.evaluated == local.evaluated == space.size + local.evaluated_tiled
    assert dist.evaluated_tiled == local.evaluated_tiled > 0
    for k in ("flat", "latency_s", "energy_j", "res"):
        assert np.array_equal(dist.metrics[k], local.metrics[k])
    assert np.array_equal(dist.pareto, local.pareto) and dist.chosen == local.chosen
    assert len(local.pareto) >= 2

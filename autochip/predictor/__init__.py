"""The Chip Predictor: latency, energy, area and FPGA resources of an accelerator on a workload.

``predict(graph, hw, platform)`` costs one design; ``evaluate(workload, config_table(specs,
platform))`` costs many designs in one numpy pass (the same model). See docs/predictor.md.
"""

from autochip.predictor.batch import (
    ENERGY_PARTS,
    BatchResult,
    ConfigTable,
    config_table,
    evaluate,
)
from autochip.predictor.estimate import Estimate, Totals, predict, predict_workload
from autochip.predictor.workload import Workload, workload_from_graph

__all__ = [
    "ENERGY_PARTS",
    "BatchResult",
    "ConfigTable",
    "Estimate",
    "Totals",
    "Workload",
    "config_table",
    "evaluate",
    "predict",
    "predict_workload",
    "workload_from_graph",
]

"""PNG of an estimate: per-layer latency and per-layer energy (matplotlib, Agg).

One row per layer, in execution order from the top, so that every layer name stays readable
for networks of any depth (the figure grows with the layer count): on the left the layer's
latency split into compute and memory-stall time, on the right its energy split into the
predictor's parts (compute, register, SRAMs, DRAM, leakage), with each part's share of the
total in the legend (above the bars, so it never hides one). The title carries the totals.
"""

from __future__ import annotations

from pathlib import Path

from autochip.predictor.estimate import Estimate

__all__ = ["plot_estimate"]

_ROW_INCHES = 0.17  # per layer: 7-point labels with a little air


def _si(value: float, unit: str) -> str:
    for scale, prefix in ((1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def plot_estimate(est: Estimate, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    layers = est.layers
    n = len(layers)
    y = np.arange(n)
    height = max(4.0, 1.8 + _ROW_INCHES * n)
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(13, height), sharey=True, gridspec_kw={"width_ratios": [1, 1.25]}
    )
    fontsize = 8 if n <= 40 else 7

    # latency: compute cycles and stall cycles share the layer's time in proportion
    latency_us = layers["latency_s"].to_numpy(dtype=float) * 1e6
    cycles = layers["cycles"].to_numpy(dtype=float)
    stalls = layers["stall_cycles"].to_numpy(dtype=float)
    busy = np.divide(cycles, cycles + stalls, out=np.ones(n), where=(cycles + stalls) > 0)
    ax1.barh(y, latency_us * busy, color="tab:blue", label="compute")
    ax1.barh(y, latency_us * (1 - busy), left=latency_us * busy, color="tab:gray",
             label="memory stall")  # fmt: skip
    ax1.set_xlabel("latency per layer (µs)")
    ax1.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncol=2, fontsize=8, frameon=False)

    # energy: the predictor's parts, stacked
    total_pj = max(float(est.total.energy_pj), 1e-30)
    left = np.zeros(n)
    colors = [f"C{i}" for i in range(10)]  # the default colour cycle
    for i, (part, value_pj) in enumerate(est.energy_breakdown.items()):
        column = f"energy_{part}_pj"
        if column not in layers or value_pj <= 0:
            continue
        uj = layers[column].to_numpy(dtype=float) * 1e-6
        share = 100 * value_pj / total_pj
        label = f"{part}: {_si(value_pj * 1e-12, 'J')} ({share:.1f}%)"
        ax2.barh(y, uj, left=left, color=colors[i % len(colors)], label=label)
        left += uj
    ax2.set_xlabel("energy per layer (µJ); legend: whole network")
    ax2.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncol=3, fontsize=8, frameon=False)

    ax1.set_yticks(y)
    ax1.set_yticklabels([str(s) for s in layers["name"]], fontsize=fontsize)
    ax1.set_ylim(n - 0.5, -0.5)  # first layer at the top
    for ax in (ax1, ax2):
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    t = est.total
    fig.suptitle(
        f"{est.workload} on {est.hw.name} / {est.platform}: {n} layers, latency "
        f"{_si(t.latency_s, 's')}, energy {_si(t.energy_pj * 1e-12, 'J')}, "
        f"power {_si(t.power_w, 'W')}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)

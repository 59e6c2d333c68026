"""PNG of an estimate: per-layer latency and the energy breakdown (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

from autochip.predictor.estimate import Estimate

__all__ = ["plot_estimate"]


def plot_estimate(est: Estimate, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = est.layers
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 1]})
    x = range(len(layers))
    ax1.bar(x, layers["latency_s"] * 1e6, color="tab:blue")
    ax1.set_xticks(list(x))
    ax1.set_xticklabels(layers["name"], rotation=75, fontsize=7)
    ax1.set_ylabel("latency (us)")
    ax1.set_title(f"{est.workload} on {est.hw.name} / {est.platform}: per-layer latency")
    parts = {k: v for k, v in est.energy_breakdown.items() if v > 0}
    ax2.bar(list(parts), [v * 1e-6 for v in parts.values()], color="tab:orange")
    ax2.set_ylabel("energy per inference (uJ)")
    ax2.set_title("energy breakdown")
    ax2.tick_params(axis="x", rotation=60, labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)

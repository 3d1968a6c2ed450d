"""One PNG per metric family, every run overlaid on the reference (drawn in black).

Plots are drawn from a family's JSON result only, so they can be redrawn without the stores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from climdiff.atomic import atomic_write  # noqa: E402
from climdiff.evaluate.core import FamilyResult  # noqa: E402

Figure = Any


def _style(label: str, reference: str) -> dict[str, Any]:
    return {"color": "black", "lw": 2.0, "zorder": 5} if label == reference else {"lw": 1.3}


def _bias(result: FamilyResult, reference: str) -> Figure:
    maps = result.plot["bias_maps"]
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(3.6 * (1 + len(maps)), 3.2), squeeze=False)
    image = axes[0, 0].imshow(np.array(result.plot["reference_mean"]), origin="lower", cmap="viridis")
    axes[0, 0].set_title(f"{reference}: long-run mean")
    fig.colorbar(image, ax=axes[0, 0], shrink=0.8)
    for ax, (label, values) in zip(axes[0, 1:], maps.items(), strict=True):
        bias = np.array(values)
        limit = float(np.nanmax(np.abs(bias))) or 1.0
        image = ax.imshow(bias, origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(f"{label}: bias")
        fig.colorbar(image, ax=ax, shrink=0.8, label=result.plot["units"])
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def _spectra(result: FamilyResult, reference: str) -> Figure:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    k = np.array(result.plot["wavenumber"])
    for label, values in result.plot["spectra"].items():
        ax.loglog(k[1:], np.array(values)[1:], label=label, **_style(label, reference))
    ax.set_xlabel("wavenumber")
    ax.set_ylabel("power")
    ax.set_title(f"{result.plot['kind']} power spectrum")
    ax.legend()
    return fig


def _temporal(result: FamilyResult, reference: str) -> Figure:
    labels = list(result.plot["acf"])
    fig = plt.figure(figsize=(11, 3.6 + 2.4 * ((len(labels) + 2) // 3)))
    grid = fig.add_gridspec(1 + (len(labels) + 2) // 3, 3)
    ax = fig.add_subplot(grid[0, 0:2])
    lags = result.plot["lags"]
    for label in labels:
        ax.plot(lags, result.plot["acf"][label], marker="o", label=label, **_style(label, reference))
        low, high = result.plot["acf_low"][label], result.plot["acf_high"][label]
        if None not in low:
            ax.fill_between(lags, low, high, alpha=0.15, color="black" if label == reference else None)
    ax.set_xlabel("lag (days)")
    ax.set_ylabel("autocorrelation")
    ax.legend()
    ax = fig.add_subplot(grid[0, 2])
    everything = np.concatenate([np.array(v, dtype=float) for v in result.plot["w1"].values()])
    bins = np.linspace(0, np.nanmax(everything) if everything.size else 1.0, 40)
    for label, values in result.plot["w1"].items():
        ax.hist(values, bins=bins, density=True, histtype="step", label=label, **_style(label, reference))
    ax.set_xlabel("W1 between consecutive Hovmoller rows")
    for i, label in enumerate(labels):
        ax = fig.add_subplot(grid[1 + i // 3, i % 3])
        diagram = np.array(result.plot["hovmoller"][label])
        ax.imshow(diagram.T, aspect="auto", origin="lower", cmap="RdBu_r")
        ax.set_title(f"{label}: Hovmoller")
        ax.set_xlabel("day")
    return fig


def _extremes(result: FamilyResult, reference: str) -> Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    edges = np.array(result.plot["edges"])
    centres = (edges[1:] + edges[:-1]) / 2
    for label, density in result.plot["histograms"].items():
        left.semilogy(centres, np.maximum(density, 1e-12), label=label, **_style(label, reference))
        counts = np.array(result.plot["waiting_time_counts"][label], dtype=float)
        if counts.sum():
            right.semilogy(
                np.arange(1, len(counts)),
                np.maximum(counts[1:] / counts.sum(), 1e-12),
                label=label,
                **_style(label, reference),
            )
    right.set_title("last point: waits of 100 days or more", fontsize=9)
    left.set_xlabel(f"value ({result.plot['units']})")
    left.set_ylabel("density")
    left.set_ylim(bottom=1e-6)
    right.set_xlabel("days between exceedances of the local 95th percentile")
    right.set_ylabel("fraction")
    right.set_ylim(bottom=1e-5)
    left.legend()
    return fig


def _wet_days(result: FamilyResult, reference: str) -> Figure:
    """Per-cell wet-day frequency (top) and intensity (bottom) of every source."""
    units = result.plot["units"]
    rows = (("frequency", "wet-day frequency", "Blues", ""), ("intensity", "wet-day intensity", "viridis", units))
    labels = list(result.plot["frequency_maps"])
    fig, axes = plt.subplots(2, len(labels), figsize=(3.6 * len(labels), 6.0), squeeze=False)
    for row, (quantity, title, cmap, units) in enumerate(rows):
        maps = {label: np.array(values, dtype=float) for label, values in result.plot[f"{quantity}_maps"].items()}
        low, high = np.nanmin([np.nanmin(m) for m in maps.values()]), np.nanmax([np.nanmax(m) for m in maps.values()])
        for ax, (label, values) in zip(axes[row], maps.items(), strict=True):
            image = ax.imshow(values, origin="lower", cmap=cmap, vmin=low, vmax=high)
            ax.set_title(f"{label}: {title}")
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(image, ax=ax, shrink=0.8, label=units)
    fig.suptitle(f"wet: >= {result.plot['threshold']:g} {result.plot['units']}")
    return fig


def _eofs(result: FamilyResult, reference: str) -> Figure:
    labels = list(result.plot["explained_variance"])
    fig, axes = plt.subplots(1, 1 + len(labels), figsize=(3.6 * (1 + len(labels)), 3.4), squeeze=False)
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        values = result.plot["explained_variance"][label]
        axes[0, 0].bar(
            np.arange(len(values)) + 1 + i * width,
            values,
            width,
            label=label,
            color="black" if label == reference else None,
        )
        image = axes[0, 1 + i].imshow(np.array(result.plot["leading_pattern"][label]), origin="lower", cmap="RdBu_r")
        axes[0, 1 + i].set_title(f"{label}: EOF 1")
        axes[0, 1 + i].set_xticks([])
        axes[0, 1 + i].set_yticks([])
        fig.colorbar(image, ax=axes[0, 1 + i], shrink=0.8)
    axes[0, 0].set_xlabel("mode")
    axes[0, 0].set_ylabel("explained variance fraction")
    axes[0, 0].legend(fontsize=8)
    return fig


def _stability(result: FamilyResult, reference: str) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for label, series in result.plot["annual_mean"].items():
        years = np.array(series["year"])
        ax.plot(
            years - (years[0] if len(years) else 0), series["mean"], marker=".", label=label, **_style(label, reference)
        )
    ax.set_xlabel("years since the start of each store")
    ax.set_ylabel(f"annual mean, area mean ({result.plot['units']})")
    ax.legend()
    return fig


def _calibration(result: FamilyResult, reference: str) -> Figure:
    curves = result.plot["curves"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    leads = result.plot["leads"]
    for i, (label, values) in enumerate(curves.items()):
        color = f"C{i}"
        axes[0].plot(leads, values["crps_fair"], marker="o", color=color, label=f"{label}: fair CRPS")
        axes[0].plot(leads, values["rmse"], ls="--", color=color, label=f"{label}: RMSE of the mean")
        axes[1].plot(leads, values["spread_skill"], marker="o", color=color, label=label)
        counts = np.array(result.plot["rank_histograms"][label], dtype=float)
        axes[2].step(np.arange(len(counts)), counts / counts.sum() * len(counts), where="mid", color=color, label=label)
    axes[1].axhline(1.0, color="black", lw=1)
    axes[2].axhline(1.0, color="black", lw=1)
    axes[0].set(xlabel="lead (days)", ylabel="CRPS / RMSE", title=f"verified against {reference}")
    axes[1].set(xlabel="lead (days)", ylabel="spread-skill ratio")
    axes[2].set(xlabel="rank of the reference among members", ylabel="frequency / uniform")
    for ax in axes:
        ax.legend(fontsize=8)
    return fig


PLOTTERS: dict[str, Callable[[FamilyResult, str], Figure]] = {
    "bias": _bias,
    "spectra": _spectra,
    "temporal": _temporal,
    "extremes": _extremes,
    "wet_days": _wet_days,
    "eofs": _eofs,
    "stability": _stability,
    "calibration": _calibration,
}


def draw(result: FamilyResult, reference: str, path: Path) -> Path:
    """Draw one family's figure to ``path`` (written atomically)."""
    fig = PLOTTERS[result.family](result, reference)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path

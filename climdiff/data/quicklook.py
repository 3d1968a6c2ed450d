"""A one-page picture of a training store, what a user looks at first to see whether the data are
what they asked for.

* turbulence: last frame, energy budget in time (a statistically steady energy, an injection that
  hovers around epsilon), mean spectrum with the forcing peak;
* lat-lon precipitation: last day, time-mean map, and the global water budget in time.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from climdiff.errors import StoreError  # noqa: E402
from climdiff.zarr_io import open_dataset, store_meta  # noqa: E402


def plot_training_store(path: Path, out: Path) -> Path:
    """Write a PNG quick-look of the store at ``path`` to ``out``."""
    ds = open_dataset(path, decode_times=False)
    if ds.sizes.get("time", 0) == 0:
        raise StoreError(f"{path} holds no frames yet: nothing to plot")
    if "precipitation_mean" in ds:
        return _plot_precipitation(ds, path, out)
    solver = store_meta(ds.attrs)["config"]["solver"]
    eps = solver["eps"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), constrained_layout=True)

    last = ds["vorticity"].isel(time=-1).values
    limit = float(np.abs(last).max())
    image = axes[0].imshow(
        last, origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit, extent=(0, 2 * np.pi, 0, 2 * np.pi)
    )
    fig.colorbar(image, ax=axes[0], shrink=0.8, label="vorticity")
    axes[0].set(title=f"last frame (day {int(ds['time'].values[-1])})", xlabel="x", ylabel="y")

    t = ds["model_time"].values
    for name in ("energy", "injection", "drag", "dissipation"):
        axes[1].plot(t, ds[name].values, label=name, lw=1)
    axes[1].axhline(eps, color="k", ls=":", lw=1, label=f"eps = {eps:g}")
    axes[1].set(title="energy and its budget (per unit area)", xlabel="solver time", ylabel="energy; rates")
    axes[1].legend(fontsize=8)

    k = ds["wavenumber"].values
    spectrum = ds["energy_spectrum"].mean("time").values
    # Only the dealiased range: above n/3 the spectrum is round-off, many decades down.
    positive = (spectrum > 0) & (k <= ds.sizes["x"] / 3)
    axes[2].loglog(k[positive], spectrum[positive], lw=1.5)
    axes[2].axvline(solver["kf"], color="grey", ls=":", lw=1, label="forcing k_f")
    axes[2].set(title="mean isotropic energy spectrum", xlabel="|k|", ylabel="E(k)")
    axes[2].legend(fontsize=8)

    fig.suptitle(str(path))
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _plot_precipitation(ds: xr.Dataset, path: Path, out: Path) -> Path:
    """Last day and time mean on the globe (log colours: rain spans decades), and the water budget."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), constrained_layout=True)
    extent = (0, 360, -90, 90)
    norm = matplotlib.colors.LogNorm(vmin=0.1, vmax=max(1.0, float(ds["precipitation"].max())))
    for ax, field, title in (
        (axes[0], ds["precipitation"].isel(time=-1).values, f"day {int(ds['time'].values[-1])}"),
        (axes[1], ds["precipitation"].mean("time").values, f"mean over {ds.sizes['time']} days"),
    ):
        image = ax.imshow(np.where(field > 0, field, np.nan), extent=extent, norm=norm, cmap="viridis_r", aspect="auto")
        ax.set(title=title, xlabel="longitude", ylabel="latitude")
    fig.colorbar(image, ax=axes[:2], shrink=0.8, label=ds["precipitation"].attrs.get("units", ""))
    days = ds["time"].values
    for name in ("evaporation_mean", "precipitation_mean"):
        axes[2].plot(days, ds[name].values, label=name, lw=1)
    axes[2].set(title="global water budget", xlabel="day", ylabel="mm/day")
    axes[2].legend(fontsize=8)
    fig.suptitle(str(path))
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

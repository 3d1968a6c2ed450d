"""A one-page picture of a turbulence store: last frame, energy budget in time, mean spectrum.

What a user looks at first to see whether the data are what they asked for: a statistically
steady energy, an injection that hovers around epsilon, and a spectrum with the forcing peak.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from climdiff.errors import StoreError  # noqa: E402
from climdiff.zarr_io import open_dataset  # noqa: E402


def plot_training_store(path: Path, out: Path) -> Path:
    """Write a PNG quick-look of the store at ``path`` to ``out``."""
    ds = open_dataset(path, decode_times=False)
    if ds.sizes.get("time", 0) == 0:
        raise StoreError(f"{path} holds no frames yet: nothing to plot")
    eps = ds.attrs["climdiff"]["config"]["solver"]["eps"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), constrained_layout=True)

    last = ds["vorticity"].isel(time=-1).values
    limit = float(np.abs(last).max())
    image = axes[0].imshow(last, origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit, extent=(0, 2 * np.pi, 0, 2 * np.pi))
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
    axes[2].axvline(ds.attrs["climdiff"]["config"]["solver"]["kf"], color="grey", ls=":", lw=1, label="forcing k_f")
    axes[2].set(title="mean isotropic energy spectrum", xlabel="|k|", ylabel="E(k)")
    axes[2].legend(fontsize=8)

    fig.suptitle(str(path))
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

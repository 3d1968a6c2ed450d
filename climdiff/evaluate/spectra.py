"""Radially averaged power spectrum on the doubly periodic square.

Convention: the FFT is normalised by the number of cells (``fft2(f) / N``), and the power of a
ring of integer wavenumber shells is *summed*, so the spectrum sums to the domain mean of f^2
(Parseval); it is then averaged over every non-spatial dim (time, member).
"""

from __future__ import annotations

import numpy as np
import xarray as xr


def radial_power_spectrum(field: xr.DataArray) -> xr.DataArray:
    """Shell-summed power per integer wavenumber |k| = 0 .. n/2 (dims: ``wavenumber``)."""
    ny, nx = field.sizes["y"], field.sizes["x"]
    ky = np.fft.fftfreq(ny, 1.0 / ny)[:, None]
    kx = np.fft.fftfreq(nx, 1.0 / nx)[None, :]
    shell = np.rint(np.sqrt(kx**2 + ky**2)).astype(int)
    kmax = min(ny, nx) // 2

    def spectrum(block: np.ndarray) -> np.ndarray:
        power = np.abs(np.fft.fft2(block, axes=(-2, -1)) / (ny * nx)) ** 2
        power = power.reshape(-1, ny * nx).mean(axis=0)
        return np.bincount(shell.ravel(), weights=power, minlength=shell.max() + 1)[: kmax + 1]

    values = spectrum(np.asarray(field.transpose(..., "y", "x").values, dtype=np.float64))
    return xr.DataArray(values, dims=("wavenumber",), coords={"wavenumber": np.arange(kmax + 1)})

"""Power spectra: radially averaged on the doubly periodic square, zonal per latitude band, and
the spectral error of a run against a reference (the ``spectra`` family).

Radial convention: the FFT is normalised by the number of cells (``fft2(f) / N``), and the power of
a ring of integer wavenumber shells is *summed*, so the spectrum sums to the domain mean of f^2
(Parseval); it is then averaged over every non-spatial dim (time, member).

Zonal convention: along each latitude circle the FFT is normalised by the number of longitudes
(``rfft(f) / N``) and the power of +k and -k is *summed* into zonal wavenumber k = 0 .. N/2, so a
latitude's spectrum sums to the mean of f^2 along the circle (Parseval). It is averaged over every
non-spatial dim, then over the latitudes of a band with cos(lat) weights, so a band's spectrum
sums to the area-weighted mean of f^2 over the band. k counts cycles per latitude circle when the
grid spans 360 degrees of longitude.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from climdiff.evaluate.core import FamilyResult, Settings, blocks, headline, intervals, members_pooled
from climdiff.evaluate.sources import Source, spatial_dims

DEFAULT_LAT_BANDS: tuple[tuple[float, float], ...] = ((-90.0, -30.0), (-30.0, 30.0), (30.0, 90.0))
TROPICS = (-30.0, 30.0)
VARIANCE_SHARE = 0.01  # a wavenumber counts in the relative error where it carries 1 % of the variance


def radial_power(field: xr.DataArray) -> xr.DataArray:
    """Shell-summed power per integer wavenumber |k| = 0 .. n/2 of every sample (the non-spatial
    dims are kept, ``y, x`` become ``wavenumber``); lazy on dask input, one sample at a time."""
    ny, nx = field.sizes["y"], field.sizes["x"]
    ky = np.fft.fftfreq(ny, 1.0 / ny)[:, None]
    kx = np.fft.fftfreq(nx, 1.0 / nx)[None, :]
    shell = np.rint(np.sqrt(kx**2 + ky**2)).astype(int).ravel()
    kmax = min(ny, nx) // 2
    projection = np.zeros((ny * nx, kmax + 1))
    inside = shell <= kmax
    projection[np.flatnonzero(inside), shell[inside]] = 1.0  # sums each shell

    def spectrum(block: np.ndarray) -> np.ndarray:
        power = np.abs(np.fft.fft2(block, axes=(-2, -1)) / (ny * nx)) ** 2
        return power.reshape(*power.shape[:-2], ny * nx) @ projection

    if field.chunks is not None:
        field = field.chunk({"y": -1, "x": -1})
    return xr.apply_ufunc(
        spectrum,
        field.astype(np.float64),
        input_core_dims=[["y", "x"]],
        output_core_dims=[["wavenumber"]],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"wavenumber": kmax + 1}},
    ).assign_coords(wavenumber=np.arange(kmax + 1))


def _one_sided_power(values: np.ndarray) -> np.ndarray:
    """|rfft / N|^2 along the last axis with +k and -k folded together (k = 0 .. N/2)."""
    n = values.shape[-1]
    power = np.abs(np.fft.rfft(values, axis=-1) / n) ** 2
    power[..., 1 : (n + 1) // 2] *= 2  # every k but 0 and (for even N) the Nyquist one has a twin
    return power


def zonal_power_spectrum(
    field: xr.DataArray, lat_bands: Sequence[tuple[float, float]] = DEFAULT_LAT_BANDS
) -> xr.DataArray:
    """Zonal power per wavenumber k = 0 .. nlon/2 and latitude band (dims: ``band``, ``wavenumber``).

    A band (lo, hi) holds the latitudes with lo <= lat <= hi (a latitude on a shared edge counts in
    both); the ``band`` coordinate is a label, ``lat_min``/``lat_max`` give the edges. Lazy on dask
    input (longitude is gathered into one chunk for the FFT).
    """
    nlon = field.sizes["lon"]
    if field.chunks is not None:
        field = field.chunk({"lon": -1})
    power = xr.apply_ufunc(
        _one_sided_power,
        field.astype(np.float64),
        input_core_dims=[["lon"]],
        output_core_dims=[["wavenumber"]],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"wavenumber": nlon // 2 + 1}},
    )
    power = power.mean([d for d in power.dims if d not in ("lat", "wavenumber")])
    cos_lat = np.cos(np.deg2rad(field["lat"]))
    bands = []
    for lo, hi in lat_bands:
        rows = np.flatnonzero((field["lat"].values >= lo) & (field["lat"].values <= hi))
        if rows.size == 0:
            raise ValueError(f"no latitude of the grid lies in the band [{lo}, {hi}]")
        bands.append(power.isel(lat=rows).weighted(cos_lat.isel(lat=rows)).mean("lat"))
    spectrum = xr.concat(bands, dim="band").transpose("band", "wavenumber")
    return spectrum.assign_coords(
        band=[f"{lo:g}..{hi:g}" for lo, hi in lat_bands],
        lat_min=("band", [float(lo) for lo, _ in lat_bands]),
        lat_max=("band", [float(hi) for _, hi in lat_bands]),
        wavenumber=np.arange(nlon // 2 + 1),
    )


def spectral_log_error(spectrum: xr.DataArray, reference: xr.DataArray) -> xr.DataArray:
    """mean over k >= 1 of |log10(S / S_ref)| (a 0-d array), 0 for identical spectra.

    The mean (k = 0) carries no scale, and wavenumbers where the reference has no power (empty
    shells) are left out: the ratio is undefined there.
    """
    resolved = (reference["wavenumber"] >= 1) & (reference > 0)
    return abs(np.log10(spectrum.where(resolved) / reference.where(resolved))).mean()


def carrying_wavenumbers(reference: xr.DataArray, share: float = VARIANCE_SHARE) -> xr.DataArray:
    """Whether each wavenumber k >= 1 carries at least ``share`` of the reference's variance (the
    power summed over k >= 1: k = 0 is the mean)."""
    varying = reference["wavenumber"] >= 1
    return varying & (reference >= share * reference.where(varying).sum())


def spectral_max_relative_error(
    spectrum: xr.DataArray, reference: xr.DataArray, share: float = VARIANCE_SHARE
) -> xr.DataArray:
    """max of |S / S_ref - 1| over the wavenumbers of :func:`carrying_wavenumbers` (a 0-d array),
    0 for identical spectra: the worst relative error where the variance is."""
    counted = carrying_wavenumbers(reference, share)
    return abs(spectrum.where(counted) / reference.where(counted) - 1).max()


def spectra_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Radially averaged (square) or zonal tropical-band (lat-lon) power spectra, and the
    spectral errors :func:`spectral_log_error` and :func:`spectral_max_relative_error` of each run."""
    out = FamilyResult("spectra")
    latlon = spatial_dims(reference.field) == ("lat", "lon")
    spectra = {}
    for src in [reference, *runs]:
        if latlon:
            band = zonal_power_spectrum(src.field, (TROPICS,)).isel(band=0, drop=True)
            spectra[src.label] = band.drop_vars(["lat_min", "lat_max"], errors="ignore").expand_dims(block=1).compute()
        else:
            spectra[src.label] = blocks(members_pooled(radial_power(src.field)), s.block_days).compute()
    if latlon:
        out.notes.append("zonal spectra of the band 30S-30N, no interval (computed over all days at once)")
    ref = spectra[reference.label].mean("block")
    for run in runs:

        def errors(d: xr.DataArray) -> xr.DataArray:
            spectrum = d.mean("block")
            return xr.concat(
                [spectral_log_error(spectrum, ref), spectral_max_relative_error(spectrum, ref)], "quantity"
            )

        log_error, relative_error = intervals(errors, spectra[run.label], "block", s)
        out.headlines.append(headline("spectra", "spectral_log_error", run.label, log_error, ideal=0.0))
        out.headlines.append(headline("spectra", "spectral_max_relative_error", run.label, relative_error, ideal=0.0))
    counted = ref["wavenumber"].values[carrying_wavenumbers(ref).values]
    out.notes.append(
        f"max relative error over the wavenumbers carrying {VARIANCE_SHARE:.0%} of the reference's variance: "
        + ", ".join(map(str, counted))
    )
    out.plot = {
        "wavenumber": ref["wavenumber"].values.tolist(),
        "spectra": {label: sp.mean("block").values.tolist() for label, sp in spectra.items()},
        "kind": "zonal, 30S-30N" if latlon else "radial",
    }
    return out

"""The metric families of `climdiff evaluate`: headline numbers with bootstrap intervals, and
the (small) data their plots need.

Memory stays bounded whatever the run length: each family reduces a store, lazily with dask,
to small per-block summaries (``block_days`` consecutive days, members averaged), and every
headline number is a function of those block summaries. Its confidence interval is a
percentile bootstrap over the blocks, shifted by the bootstrap estimate of the bias (see
:mod:`climdiff.evaluate.bootstrap`). Blocks of a month or more are longer than the
decorrelation time of daily fields, so treating them as independent is fair; annual-mean drift
resamples years instead, and forecasts resample starts. The reference gets the same
treatment, so its numbers carry their own sampling uncertainty.

A family returns :class:`FamilyResult` whose content is plain JSON (it is cached on disk for
resume, and the plots are drawn from it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import dask
import numpy as np
import xarray as xr

from climdiff.evaluate.bootstrap import bootstrap_ci
from climdiff.evaluate.calibration import crps_ensemble, rank_histogram
from climdiff.evaluate.eofs import explained_variance, leading_eofs
from climdiff.evaluate.extremes import (
    exceedance_threshold,
    value_histogram,
    waiting_times,
)
from climdiff.evaluate.hovmoller import hovmoller, row_wasserstein
from climdiff.evaluate.sources import Source, spatial_dims
from climdiff.evaluate.spectra import radial_power, zonal_power_spectrum
from climdiff.evaluate.stability import annual_mean_series, linear_drift, seasonal_cycle
from climdiff.evaluate.temporal import anomalies
from climdiff.evaluate.weights import area_weights

LAGS = tuple(range(1, 11))


@dataclass(frozen=True)
class Settings:
    """How the numbers are computed (recorded in results.json)."""

    block_days: int = 30
    n_resamples: int = 200
    confidence: float = 0.95
    seed: int = 0
    eof_samples: int = 500
    eof_resamples: int = 30
    hovmoller_days: int = 365


@dataclass
class Headline:
    """One number of one source: the point estimate and its bootstrap interval."""

    family: str
    metric: str
    source: str
    value: float
    low: float | None = None
    high: float | None = None
    units: str = ""
    ideal: float | None = None
    lead: int | None = None


@dataclass
class FamilyResult:
    family: str
    headlines: list[Headline] = field(default_factory=list)
    plot: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"family": self.family, "headlines": [asdict(h) for h in self.headlines], "plot": self.plot, "notes": self.notes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FamilyResult:
        return cls(data["family"], [Headline(**h) for h in data["headlines"]], data["plot"], data["notes"])


def _members_pooled(field: xr.DataArray) -> xr.DataArray:
    return field.mean("member") if "member" in field.dims else field


def _blocks(series: xr.DataArray, days: int) -> xr.DataArray:
    """Means over consecutive blocks of ``days`` along time (dim ``block``; a short tail is dropped,
    and a series shorter than one block is one block)."""
    days = min(days, series.sizes["time"])
    return series.coarsen(time=days, boundary="trim").mean().rename(time="block")


Numbers = tuple[float, float | None, float | None]


def _intervals(stat: Callable[[Any], xr.DataArray], data: Any, dim: str, s: Settings, resamples: int | None = None) -> list[Numbers]:
    """(estimate, low, high) for each element of a scalar or 1-D statistic of ``data``,
    bootstrapped along ``dim`` in one pass; no interval from fewer than two samples."""
    if data.sizes[dim] < 2:
        values = np.atleast_1d(np.asarray(stat(data), dtype=float))
        return [(float(v), None, None) for v in values]
    ci = bootstrap_ci(stat, data, dim, n_resamples=resamples or s.n_resamples, confidence=s.confidence, seed=s.seed,
                      shift_bias=True)  # fmt: skip
    columns = [np.atleast_1d(np.asarray(ci[k], dtype=float)) for k in ("estimate", "low", "high")]
    return [(float(e), float(lo), float(hi)) for e, lo, hi in zip(*columns, strict=True)]


def _interval(stat: Callable[[Any], xr.DataArray], data: Any, dim: str, s: Settings) -> Numbers:
    return _intervals(stat, data, dim, s)[0]


def _headline(family: str, metric: str, source: str, numbers: Numbers, **extra: Any) -> Headline:
    value, low, high = numbers
    return Headline(family, metric, source, value, low, high, **extra)


def _spatial_mean(field: xr.DataArray) -> xr.DataArray:
    w = area_weights(field)
    return (field * w).sum(w.dims)


# ---- bias and distribution moments -------------------------------------------------------------


def bias_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Long-run mean, standard deviation, and the mean absolute bias of the long-run mean map."""
    out = FamilyResult("bias")
    units = reference.field.attrs.get("units", "")
    summaries = {}
    for src in [reference, *runs]:
        x = _members_pooled(src.field)
        moments = xr.Dataset({"m1": _blocks(x, s.block_days), "m2": _blocks(_members_pooled(src.field**2), s.block_days)})
        summaries[src.label] = moments.compute()
    ref_map = summaries[reference.label]["m1"].mean("block")
    w = area_weights(reference.field)
    maps = {}
    for label, m in summaries.items():
        def moments(d: xr.Dataset) -> xr.DataArray:
            mean_map = d["m1"].mean("block")
            mean = (mean_map * w).sum(w.dims)
            std = np.sqrt((d["m2"].mean("block") * w).sum(w.dims) - mean**2)
            mab = (abs(mean_map - ref_map) * w).sum(w.dims)
            return xr.concat([mean, std, mab], dim="quantity")

        mean, std, mab = _intervals(moments, m, "block", s)
        out.headlines += [_headline("bias", "mean", label, mean, units=units), _headline("bias", "std", label, std, units=units)]
        if label != reference.label:
            out.headlines.append(_headline("bias", "mean_absolute_bias", label, mab, units=units, ideal=0.0))
            maps[label] = (m["m1"].mean("block") - ref_map).values.tolist()
    out.plot = {"reference_mean": ref_map.values.tolist(), "bias_maps": maps, "units": units}
    return out


# ---- spectra -------------------------------------------------------------------------------------


def spectra_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Radially averaged (square) or zonal equatorial-band (lat-lon) power spectra, and the
    spectral error mean_k |log10(S_run / S_ref)| over k >= 1."""
    out = FamilyResult("spectra")
    latlon = spatial_dims(reference.field) == ("lat", "lon")
    spectra = {}
    for src in [reference, *runs]:
        if latlon:
            band = zonal_power_spectrum(src.field, ((-30.0, 30.0),)).isel(band=0, drop=True)
            spectra[src.label] = band.drop_vars(["lat_min", "lat_max"], errors="ignore").expand_dims(block=1).compute()
        else:
            spectra[src.label] = _blocks(_members_pooled(radial_power(src.field)), s.block_days).compute()
    if latlon:
        out.notes.append("zonal spectra of the band 30S-30N, no interval (computed over all days at once)")
    ref = spectra[reference.label].mean("block")
    resolved = (ref["wavenumber"] >= 1) & (ref > 0)  # the mean (k = 0) and empty shells carry no scale
    for run in runs:
        def error(d: xr.DataArray) -> xr.DataArray:
            return abs(np.log10(d.mean("block").where(resolved) / ref.where(resolved))).mean()
        out.headlines.append(_headline("spectra", "spectral_log_error", run.label, _interval(error, spectra[run.label], "block", s), ideal=0.0))
    out.plot = {
        "wavenumber": ref["wavenumber"].values.tolist(),
        "spectra": {label: sp.mean("block").values.tolist() for label, sp in spectra.items()},
        "kind": "zonal, 30S-30N" if latlon else "radial",
    }
    return out


# ---- temporal consistency --------------------------------------------------------------------------


def _lagged_products(field: xr.DataArray, climatology: str) -> xr.Dataset:
    """Per day: the area mean of a(t)^2 and of a(t) a(t+l) for each lag (members averaged)."""
    a = anomalies(field, climatology)  # type: ignore[arg-type]
    products = {"lag0": _members_pooled(_spatial_mean(a * a))}
    for lag in LAGS:
        products[f"lag{lag}"] = _members_pooled(_spatial_mean(a * a.shift(time=-lag)))
    return xr.Dataset(products)


def temporal_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Autocorrelation at lags 1..10 and the Wasserstein-1 distance between consecutive
    Hovmoller rows (its mean as the headline, its distribution and the diagrams as plots)."""
    out = FamilyResult("temporal")
    climatology = "seasonal" if spatial_dims(reference.field) == ("lat", "lon") else "overall"
    acf, w1, diagrams = {}, {}, {}
    for src in [reference, *runs]:
        if src.days <= max(LAGS):
            raise ValueError(f"{src.label} has {src.days} days; the temporal family needs more than {max(LAGS)}")
        products = _blocks(_lagged_products(src.field, climatology), s.block_days)
        hov = hovmoller(src.field)
        rows = _members_pooled(row_wasserstein(hov))
        first = hov.isel(member=0) if "member" in hov.dims else hov
        products, rows, first = dask.compute(products, rows, first.isel(time=slice(0, s.hovmoller_days)))
        ratio = _intervals(lambda d: xr.concat([d[f"lag{lag}"].mean("block") / d["lag0"].mean("block") for lag in LAGS], dim="lag"),
                           products, "block", s)  # fmt: skip
        acf[src.label] = ratio
        for lag, numbers in zip(LAGS, ratio, strict=True):
            if lag in (1, 5, 10):
                out.headlines.append(_headline("temporal", f"autocorrelation_lag{lag}", src.label, numbers))
        blocks = _blocks(rows, s.block_days) if rows.sizes["time"] >= 2 else rows.rename(time="block")
        out.headlines.append(_headline("temporal", "hovmoller_w1_mean", src.label, _interval(lambda d: d.mean("block"), blocks, "block", s),
                                       units=src.field.attrs.get("units", "")))  # fmt: skip
        w1[src.label] = rows.values.tolist()
        diagrams[src.label] = first.values.tolist()
    out.notes.append(f"autocorrelation of anomalies from the {climatology} climatology, standardised, area-weighted")
    out.plot = {"lags": list(LAGS), "acf": {k: [v[0] for v in vals] for k, vals in acf.items()},
                "acf_low": {k: [v[1] for v in vals] for k, vals in acf.items()},
                "acf_high": {k: [v[2] for v in vals] for k, vals in acf.items()},
                "w1": w1, "hovmoller": diagrams}  # fmt: skip
    return out


# ---- extremes and distribution -------------------------------------------------------------------


def _whole_series(field: xr.DataArray, budget_bytes: float = 64e6) -> xr.DataArray:
    """Rechunk so each chunk holds whole time series (a local quantile needs them) of as many
    rows of cells as fit in ``budget_bytes`` (as float64), so memory does not grow with length."""
    if field.chunks is None:
        return field
    row, column = spatial_dims(field)
    per_row = 8 * field.size // field.sizes[row]
    return field.chunk({d: -1 for d in field.dims if d not in (row, column)} | {row: max(1, int(budget_bytes // per_row)), column: -1})


def _waiting_time_counts(field: xr.DataArray, threshold: xr.DataArray, longest: int = 100) -> np.ndarray:
    """How many waits of 1, 2, ... days (the last bin: ``longest`` or more) separate consecutive
    exceedances, counted one group of whole series at a time so memory does not grow with length."""
    whole = _whole_series(field)
    row = spatial_dims(field)[0]
    edges = np.cumsum((0, *whole.chunksizes[row])) if whole.chunks else np.array([0, field.sizes[row]])
    counts = np.zeros(longest + 1, dtype=np.int64)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        part = {row: slice(int(lo), int(hi))}
        gaps = waiting_times(whole.isel(part), threshold.isel(part)).values
        counts += np.bincount(np.minimum(gaps.astype(np.int64), longest), minlength=longest + 1)
    return counts


def extremes_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Exceedances of the reference's local 95th percentile: their frequency (ideal 0.05) and
    their persistence, P(exceeding tomorrow | exceeding today); waiting-time distributions and
    value histograms as figures. (The mean waiting time is no extra number: for a stationary
    series it is 1 / frequency, Kac's lemma.)"""
    out = FamilyResult("extremes")
    ref_field = reference.field
    threshold = exceedance_threshold(_whole_series(ref_field), 0.95).compute()
    low, high = dask.compute(ref_field.min(), ref_field.max())
    span = float(high - low)
    edges = np.linspace(float(low) - 0.5 * span, float(high) + 0.5 * span, 61)
    histograms, waits = {}, {}
    for src in [reference, *runs]:
        exceed = src.field > threshold
        daily = xr.Dataset({
            "today": _members_pooled(_spatial_mean(exceed)),
            "both": _members_pooled(_spatial_mean(exceed & exceed.shift(time=-1, fill_value=False))),
        })  # fmt: skip
        blocks = _blocks(daily, s.block_days).compute()
        frequency, persistence = _intervals(
            lambda d: xr.concat([d["today"].mean("block"), d["both"].mean("block") / d["today"].mean("block")], dim="q"),
            blocks, "block", s,
        )  # fmt: skip
        out.headlines += [_headline("extremes", "exceedance_frequency_p95", src.label, frequency, ideal=0.05),
                          _headline("extremes", "exceedance_persistence", src.label, persistence)]  # fmt: skip
        waits[src.label] = _waiting_time_counts(src.field, threshold).tolist()
        histograms[src.label] = value_histogram(src.field, edges).values.tolist()
    out.plot = {"edges": edges.tolist(), "histograms": histograms, "waiting_time_counts": waits,
                "units": ref_field.attrs.get("units", "")}  # fmt: skip
    return out


# ---- EOFs ------------------------------------------------------------------------------------------------


def _eof_sample(field: xr.DataArray, count: int) -> xr.DataArray:
    """At most ``count`` days, evenly spread over the run and its members (in memory)."""
    stacked = field.stack(sample=[d for d in ("member", "time") if d in field.dims])
    picks = np.unique(np.linspace(0, stacked.sizes["sample"] - 1, min(count, stacked.sizes["sample"])).astype(int))
    chosen = stacked.isel(sample=picks).compute()
    return chosen.drop_vars(["sample", "member", "time"], errors="ignore").assign_coords(sample=np.arange(len(picks)))


def eofs_family(reference: Source, runs: list[Source], s: Settings, modes: int = 3) -> FamilyResult:
    """Explained-variance fractions of the leading EOFs (area weights applied), and patterns."""
    out = FamilyResult("eofs")
    patterns, variance = {}, {}
    for src in [reference, *runs]:
        sample = _eof_sample(src.field, s.eof_samples)
        result = leading_eofs(sample, modes)
        variance[src.label] = result["explained_variance"].values.tolist()
        patterns[src.label] = result["eof"].isel(mode=0).values.tolist()
        numbers = _intervals(lambda d: explained_variance(d, modes), sample, "sample", s, s.eof_resamples)
        for k, value in enumerate(numbers):
            out.headlines.append(_headline("eofs", f"eof{k + 1}_explained_variance", src.label, value))
    out.notes.append(f"EOFs of at most {s.eof_samples} days per source, spread evenly; {s.eof_resamples} bootstrap resamples")
    out.plot = {"explained_variance": variance, "leading_pattern": patterns}
    return out


# ---- long-run stability ----------------------------------------------------------------------------------


def stability_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Annual-mean area-mean series, its linear drift per century, and the seasonal cycle's
    amplitude and phase on lat-lon data."""
    out = FamilyResult("stability")
    units = reference.field.attrs.get("units", "")
    series = {}
    for src in [reference, *runs]:
        annual = _members_pooled(annual_mean_series(src.field)).compute()
        series[src.label] = {"year": annual["year"].values.tolist(), "mean": annual.values.tolist()}
        if annual.sizes["year"] >= 3:
            numbers = _interval(lambda d: linear_drift(d), annual, "year", s)
            out.headlines.append(_headline("stability", "drift_per_century", src.label, numbers, units=units, ideal=0.0))
        else:
            out.notes.append(f"{src.label}: {annual.sizes['year']} complete year(s); drift needs at least 3")
        if spatial_dims(src.field) == ("lat", "lon"):
            cycle = seasonal_cycle(_members_pooled(src.field)).compute()
            out.headlines += [Headline("stability", "seasonal_amplitude", src.label, float(cycle["amplitude"]), units=units),
                              Headline("stability", "seasonal_phase", src.label, float(cycle["phase"]), units="day of year")]  # fmt: skip
    if spatial_dims(reference.field) != ("lat", "lon"):
        out.notes.append("no seasonal cycle on the square domain (statistically stationary forcing)")
    out.notes.append("drift intervals resample years as independent")
    out.plot = {"annual_mean": series, "units": units}
    return out


# ---- calibration (forecast stores) -----------------------------------------------------------------------


def _verification(reference: Source, run: Source) -> tuple[xr.DataArray, xr.DataArray, int]:
    """The forecasts whose every lead the reference holds, the matching reference days, and how
    many starts were dropped."""
    valid = run.field["valid_time"].compute()
    times = {t: i for i, t in enumerate(reference.field["time"].values)}
    keep = [s for s in range(valid.sizes["init_time"]) if all(t in times for t in valid.values[s])]
    positions = np.array([[times[t] for t in valid.values[s]] for s in keep], dtype=int).reshape(len(keep), -1)
    index = xr.DataArray(positions, dims=("init_time", "lead"))
    observed = reference.field.isel(time=index)
    forecast = run.field.isel(init_time=keep)
    observed = observed.assign_coords(init_time=forecast["init_time"], lead=forecast["lead"])
    return forecast, observed.drop_vars("time", errors="ignore"), valid.sizes["init_time"] - len(keep)


def calibration_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Per lead: fair and standard CRPS, spread-skill ratio, RMSE of the ensemble mean (bootstrap
    over starts); rank histograms pooled over leads."""
    out = FamilyResult("calibration")
    curves: dict[str, dict[str, list[float | None]]] = {}
    ranks = {}
    for run in runs:
        forecast, observed, dropped = _verification(reference, run)
        if dropped:
            out.notes.append(f"{run.label}: {dropped} start(s) dropped, the reference lacks some of their valid days")
        if forecast.sizes["init_time"] == 0:
            raise ValueError(f"{run.label}: no start has all its valid days in the reference")
        if run.members < 2:
            raise ValueError(f"{run.label} has one member; calibration needs an ensemble")
        w = area_weights(observed)
        m = run.members
        per_start = xr.Dataset({
            "crps_fair": (crps_ensemble(forecast, observed, fair=True) * w).sum(w.dims),
            "crps": (crps_ensemble(forecast, observed) * w).sum(w.dims),
            "variance": (forecast.var("member", ddof=1) * w).sum(w.dims),
            "error2": ((forecast.mean("member") - observed) ** 2 * w).sum(w.dims),
        }).compute()  # fmt: skip
        statistics = {
            "crps_fair": lambda d: d["crps_fair"].mean("init_time"),
            "crps": lambda d: d["crps"].mean("init_time"),
            "spread_skill": lambda d: np.sqrt((m + 1) / m * d["variance"].mean("init_time") / d["error2"].mean("init_time")),
            "rmse": lambda d: np.sqrt(d["error2"].mean("init_time")),
        }
        curves[run.label] = {}
        for metric, stat in statistics.items():
            per_lead = _intervals(stat, per_start, "init_time", s)
            curves[run.label][metric] = [v[0] for v in per_lead]
            for lead, value in zip(per_start["lead"].values, per_lead, strict=True):
                out.headlines.append(_headline("calibration", metric, run.label, value, lead=int(lead),
                                               ideal=1.0 if metric == "spread_skill" else None))  # fmt: skip
        ranks[run.label] = rank_histogram(forecast.compute(), observed.compute(), seed=s.seed).values.tolist()
    out.notes.append("crps_fair: the fair (unbiased, M-independent) estimator; crps: the standard empirical-CDF one")
    out.plot = {"leads": [int(v) for v in runs[0].field["lead"].values] if runs else [], "curves": curves, "rank_histograms": ranks}
    return out


FAMILIES: dict[str, Callable[[Source, list[Source], Settings], FamilyResult]] = {
    "bias": bias_family,
    "spectra": spectra_family,
    "temporal": temporal_family,
    "extremes": extremes_family,
    "eofs": eofs_family,
    "stability": stability_family,
    "calibration": calibration_family,
}
FORECAST_FAMILIES = ("calibration",)

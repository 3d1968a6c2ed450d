"""Leading empirical orthogonal functions (EOFs) with area weighting (the ``eofs`` family).

The anomalies (each cell minus its mean over all samples: time and members) are multiplied by
sqrt(w), w the area weights summing to 1 (sqrt(cos lat) up to a constant on lat-lon grids), so
that the covariance the SVD diagonalises is the area-weighted one and polar cells do not count as
much as tropical ones. With X_w = U S V^T:

* ``eof`` = V_k / sqrt(w): the pattern in physical space, normalised so that its area-weighted
  mean square is 1 (sum_cells w eof^2 = 1); dimensionless.
* ``pcs`` = U_k S_k: in the field's units, so anomalies ~ sum_k pcs_k * eof_k; the time mean of
  pcs_k^2 is the weighted variance the mode carries.
* ``explained_variance`` = S_k^2 / sum of all S^2: the fraction of the total weighted variance.
* Sign: each mode is flipped so that its largest-magnitude loading is positive (among loadings
  within a relative 1e-6 of the largest, the first in (spatial) storage order decides, so ties
  such as the two extremes of a sine do not depend on round-off).

Memory: the (samples x cells) matrix is held in memory as float64 (8 * samples * cells bytes,
e.g. 10 years of daily 1-degree data: 3650 x 64 800 x 8 B = 1.9 GB, with the SVD about twice
that): coarsen or subsample (e.g. every 5th day) larger inputs first.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from climdiff.evaluate.bias import sample_dims
from climdiff.evaluate.core import FamilyResult, Settings, headline, intervals, map_for_plot
from climdiff.evaluate.sources import Source
from climdiff.evaluate.weights import area_weights

EOF_GROUPS = 50


def _fix_signs(vectors: np.ndarray) -> np.ndarray:
    """+1 or -1 per row so that its anchor (largest-magnitude) entry becomes positive."""
    magnitude = np.abs(vectors)
    anchor = np.argmax(magnitude >= (1 - 1e-6) * magnitude.max(axis=1, keepdims=True), axis=1)
    return np.where(vectors[np.arange(len(vectors)), anchor] < 0, -1.0, 1.0)


def _weighted_anomalies(field: xr.DataArray) -> tuple[xr.DataArray, list, list, np.ndarray, np.ndarray]:
    """The (samples x cells) matrix of anomalies times sqrt(w), and what is needed to undo it."""
    w = area_weights(field)
    spatial, samples = list(w.dims), sample_dims(field)
    if not samples:
        raise ValueError("EOFs need at least one sample dim (time, member, ...)")
    ordered = field.transpose(*samples, *spatial)
    matrix = np.asarray(ordered.values, dtype=np.float64).reshape(-1, int(np.prod([field.sizes[d] for d in spatial])))
    root_w = np.sqrt(np.asarray(w.transpose(*spatial).values, dtype=np.float64)).ravel()
    return ordered, spatial, samples, root_w, (matrix - matrix.mean(axis=0)) * root_w


def gram_of_days(field: xr.DataArray) -> np.ndarray:
    """The Gram matrix (samples x samples) of the sqrt(w)-weighted anomalies of ``field``, its
    samples (days) in storage order."""
    *_, weighted = _weighted_anomalies(field)
    return weighted @ weighted.T


def explained_variance_of_days(gram: np.ndarray, days: np.ndarray, n: int = 3) -> xr.DataArray:
    """The ``explained_variance`` of :func:`leading_eofs` of the days at positions ``days`` (any
    shape, repeats allowed) of a field whose :func:`gram_of_days` is ``gram`` (dims: ``mode``).

    Those days' Gram matrix, centred on their own mean (H K H), has the eigenvalues of their
    weighted covariance, so a bootstrap resample costs an eigendecomposition of at most
    ``eof_samples`` squared and no pass over the cells.
    """
    positions = np.ravel(days)
    chosen = gram[np.ix_(positions, positions)]
    row_means = chosen.mean(axis=0)
    centred = chosen - row_means[None, :] - row_means[:, None] + row_means.mean()
    eigenvalues = np.linalg.eigvalsh(centred)[::-1]
    total = float(np.trace(centred))
    n = min(n, len(eigenvalues))
    fractions = eigenvalues[:n] / total if total > 0 else np.zeros(n)
    return xr.DataArray(fractions, dims=("mode",), coords={"mode": np.arange(n)}, name="explained_variance")


def leading_eofs(field: xr.DataArray, n: int = 3) -> xr.Dataset:
    """The n leading EOFs: ``eof`` (mode, spatial dims), ``explained_variance`` (mode,) and
    ``pcs`` (mode, sample dims, e.g. member and time), as described in the module docstring."""
    ordered, spatial, samples, root_w, weighted = _weighted_anomalies(field)
    u, s, vt = np.linalg.svd(weighted, full_matrices=False)
    n = min(n, len(s))
    sign = _fix_signs(vt[:n])
    patterns = (vt[:n] * sign[:, None]) / root_w
    pcs = u[:, :n] * s[:n] * sign
    total = float((s**2).sum())
    spatial_shape = [field.sizes[d] for d in spatial]
    sample_shape = [field.sizes[d] for d in samples]
    return xr.Dataset(
        {
            "eof": (("mode", *spatial), patterns.reshape(n, *spatial_shape)),
            "explained_variance": ("mode", s[:n] ** 2 / total if total > 0 else np.zeros(n)),
            "pcs": (("mode", *samples), pcs.T.reshape(n, *sample_shape)),
        },
        coords={**dict(ordered.coords), "mode": np.arange(n)},
    )


def eof_sample(field: xr.DataArray, count: int) -> xr.DataArray:
    """At most ``count`` days, evenly spread over the run and its members (in memory; dim ``sample``)."""
    stacked = field.stack(sample=[d for d in ("member", "time") if d in field.dims])
    picks = np.unique(np.linspace(0, stacked.sizes["sample"] - 1, min(count, stacked.sizes["sample"])).astype(int))
    chosen = stacked.isel(sample=picks).compute()
    return chosen.drop_vars(["sample", "member", "time"], errors="ignore").assign_coords(sample=np.arange(len(picks)))


def sample_groups(sample: xr.DataArray, groups: int) -> xr.DataArray:
    """The days of :func:`eof_sample` in at most ``groups`` groups of equal size (dims ``group``,
    ``day``; a tail of fewer days than a group is dropped). The bootstrap resamples groups: its
    BCa jackknife then costs ``groups`` eigendecompositions, not one per day. The days are spread
    over the run, far apart in time, so a group holds nearly independent days like one alone."""
    size = -(-sample.sizes["sample"] // groups)
    return sample.coarsen(sample=size, boundary="trim").construct(sample=("group", "day"))


def eofs_family(reference: Source, runs: list[Source], s: Settings, modes: int = 3) -> FamilyResult:
    """Explained-variance fractions of the leading EOFs (area weights applied), and patterns."""
    out = FamilyResult("eofs")
    patterns, variance = {}, {}
    for src in [reference, *runs]:
        sample = sample_groups(eof_sample(src.field, s.eof_samples), EOF_GROUPS)
        result = leading_eofs(sample, modes)
        variance[src.label] = result["explained_variance"].values.tolist()
        patterns[src.label] = map_for_plot(result["eof"].isel(mode=0))
        gram = gram_of_days(sample)
        days = xr.DataArray(np.arange(gram.shape[0]).reshape(sample.sizes["group"], -1), dims=("group", "day"))
        numbers = intervals(
            lambda d: explained_variance_of_days(gram, d.values, modes), days, "group", s, s.eof_resamples
        )
        for k, value in enumerate(numbers):
            out.headlines.append(headline("eofs", f"eof{k + 1}_explained_variance", src.label, value))
    out.notes.append(
        f"EOFs of at most {s.eof_samples} days per source, spread evenly; {s.eof_resamples} bootstrap resamples of "
        f"at most {EOF_GROUPS} groups of days. Resampling inflates the leading shares: a basic interval lies below "
        "the estimate"
    )
    out.plot = {"explained_variance": variance, "leading_pattern": patterns}
    return out

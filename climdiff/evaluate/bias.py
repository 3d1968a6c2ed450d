"""Mean state: the long-run mean and standard deviation, the standard deviation of the daily area
mean, the per-cell long-run bias and its area-weighted mean absolute value (the ``bias`` family).

Spatial dims are those of :func:`~climdiff.evaluate.weights.area_weights` ((lat, lon) or (y, x));
every other dim (member, time, block, ...) is a sample dim. All results stay lazy on dask input.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from climdiff.evaluate.core import FamilyResult, Settings, blocks, headline, intervals, map_for_plot, members_pooled
from climdiff.evaluate.sources import Source
from climdiff.evaluate.weights import area_mean, area_weights


def sample_dims(field: xr.DataArray) -> list[str]:
    """The non-spatial dims of ``field`` (member, time, ...), in order."""
    spatial = area_weights(field).dims
    return [d for d in field.dims if d not in spatial]


def bias_map(run: xr.DataArray, reference: xr.DataArray) -> xr.DataArray:
    """Long-run mean of ``run`` minus that of ``reference`` per cell (dims: the spatial ones).

    Each is averaged over its own sample dims, so a run of 10 members x 100 years compares with a
    reference of 30 years without any alignment in time (and block means compare like days).
    """
    return run.mean(sample_dims(run)) - reference.mean(sample_dims(reference))


def mean_absolute_bias(run: xr.DataArray, reference: xr.DataArray) -> xr.DataArray:
    """Area-weighted mean of |bias_map| (a 0-d array): biases of opposite sign do not cancel."""
    return area_mean(abs(bias_map(run, reference)))


def std_of_moments(first: xr.DataArray, second: xr.DataArray) -> xr.DataArray:
    """sqrt(E[x^2] - E[x]^2) from the mean first and second raw moments."""
    return np.sqrt(second - first**2)


def mean_and_std(first: xr.DataArray, second: xr.DataArray) -> xr.DataArray:
    """The long-run area mean and standard deviation (dim ``quantity``) from the first and second
    raw moments per cell and sample (e.g. block means of x and of x^2): the standard deviation is
    over cells and days together, with area weights."""
    mean = area_mean(first.mean(sample_dims(first)))
    return xr.concat([mean, std_of_moments(mean, area_mean(second.mean(sample_dims(second))))], dim="quantity")


def area_mean_moments(field: xr.DataArray) -> dict[str, xr.DataArray]:
    """Per day, ``a1`` and ``a2``: the area mean and its square, members averaged (a member's
    own daily area mean is squared, so pooling members does not shrink the spread); lazy."""
    daily = area_mean(field)
    return {"a1": members_pooled(daily), "a2": members_pooled(daily**2)}


def bias_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Long-run mean, standard deviation (over cells and days), standard deviation of the daily
    area mean (over days), and the mean absolute bias of the long-run mean map."""
    out = FamilyResult("bias")
    units = reference.field.attrs.get("units", "")
    summaries = {}
    for src in [reference, *runs]:
        moments = {"m1": members_pooled(src.field), "m2": members_pooled(src.field**2), **area_mean_moments(src.field)}
        summaries[src.label] = blocks(xr.Dataset(moments), s.block_days).compute()
    ref_m1 = summaries[reference.label]["m1"]
    maps = {}
    for label, m in summaries.items():

        def statistic(d: xr.Dataset) -> xr.DataArray:
            area_std = std_of_moments(d["a1"].mean("block"), d["a2"].mean("block"))
            quantities = [mean_and_std(d["m1"], d["m2"]), area_std, mean_absolute_bias(d["m1"], ref_m1)]
            return xr.concat(quantities, dim="quantity")

        mean, std, area_std, mab = intervals(statistic, m, "block", s)
        out.headlines.append(headline("bias", "mean", label, mean, units=units))
        out.headlines.append(headline("bias", "std", label, std, units=units))
        out.headlines.append(headline("bias", "area_mean_std", label, area_std, units=units))
        if label != reference.label:
            out.headlines.append(headline("bias", "mean_absolute_bias", label, mab, units=units, ideal=0.0))
            maps[label] = map_for_plot(bias_map(m["m1"], ref_m1))
    out.plot = {"reference_mean": map_for_plot(ref_m1.mean("block")), "bias_maps": maps, "units": units}
    return out

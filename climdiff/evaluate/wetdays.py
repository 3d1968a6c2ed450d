"""Wet days of a precipitation field (the ``wet_days`` family): how often it rains and how much
on the days it does.

A *wet* cell-day has a value at or above the threshold (the ETCCDI rule RR >= 1 mm; the threshold
is in the field's units, 1.0 assumes mm/day). ``frequency`` is the fraction of cell-days that are
wet and ``intensity`` the mean value on wet cell-days, both area-weighted and pooled over days and
members: intensity = sum(w x wet) / sum(w wet), not a mean of daily ratios, so days with little
wet area do not weigh as much as the others. Missing values (stopped members) are neither wet nor
dry.
"""

from __future__ import annotations

import xarray as xr

from climdiff.evaluate.bias import sample_dims
from climdiff.evaluate.core import FamilyResult, Settings, blocks, headline, intervals, map_for_plot, members_pooled
from climdiff.evaluate.sources import Source
from climdiff.evaluate.weights import area_mean


def wet_day_indicators(field: xr.DataArray, threshold: float) -> xr.Dataset:
    """Per cell and day: ``wet`` (1 or 0) and ``amount`` (the value on wet days, else 0); lazy."""
    wet = (field >= threshold).where(field.notnull())
    return xr.Dataset({"wet": wet, "amount": field * wet})


def wet_day_statistics(indicators: xr.Dataset, dim: str | list[str]) -> xr.DataArray:
    """``frequency`` and ``intensity`` (dim ``quantity``) from :func:`wet_day_indicators` or from
    area means of them, as means over ``dim`` (missing values skipped); the intensity is
    missing where no day is wet."""
    wet = indicators["wet"].mean(dim)
    intensity = (indicators["amount"].mean(dim) / wet).where(wet > 0)
    return xr.concat([wet, intensity], dim="quantity").assign_coords(quantity=["frequency", "intensity"])


def wet_day_maps(field: xr.DataArray, threshold: float) -> xr.DataArray:
    """Per-cell ``frequency`` and ``intensity`` (dims: ``quantity`` and the spatial ones)."""
    return wet_day_statistics(wet_day_indicators(field, threshold), sample_dims(field))


def wet_days_family(reference: Source, runs: list[Source], s: Settings) -> FamilyResult:
    """Wet-day frequency and intensity at ``s.wet_threshold`` with intervals over blocks of days,
    and their per-cell maps as figures."""
    out = FamilyResult("wet_days")
    units = reference.field.attrs.get("units", "")
    maps: dict[str, dict[str, list]] = {"frequency": {}, "intensity": {}}
    for src in [reference, *runs]:
        indicators = wet_day_indicators(src.field, s.wet_threshold)
        daily = xr.Dataset({name: members_pooled(area_mean(values)) for name, values in indicators.items()})
        summaries = blocks(daily, s.block_days).compute()
        frequency, intensity = intervals(lambda d: wet_day_statistics(d, "block"), summaries, "block", s)
        out.headlines.append(headline("wet_days", "wet_day_frequency", src.label, frequency, units="1"))
        out.headlines.append(headline("wet_days", "wet_day_intensity", src.label, intensity, units=units))
        cells = wet_day_maps(src.field, s.wet_threshold).compute()
        for quantity in maps:
            maps[quantity][src.label] = map_for_plot(cells.sel(quantity=quantity, drop=True))
    out.notes.append(f"wet: a value >= {s.wet_threshold:g} {units}".rstrip())
    out.plot = {"threshold": s.wet_threshold, "units": units, **{f"{q}_maps": m for q, m in maps.items()}}
    return out

"""The metric families of `climdiff evaluate`, one module each; every headline number comes from
the tested helpers of its family's module (settings, results and intervals: :mod:`.core`)."""

from __future__ import annotations

from collections.abc import Callable

import xarray as xr

from climdiff.evaluate.bias import bias_family
from climdiff.evaluate.calibration import calibration_family
from climdiff.evaluate.core import FamilyResult, Headline, Settings
from climdiff.evaluate.eofs import eofs_family
from climdiff.evaluate.extremes import extremes_family
from climdiff.evaluate.sources import Source
from climdiff.evaluate.spectra import spectra_family
from climdiff.evaluate.stability import stability_family
from climdiff.evaluate.temporal import temporal_family
from climdiff.evaluate.wetdays import wet_days_family

__all__ = [
    "FAMILIES",
    "FORECAST_FAMILIES",
    "PRECIPITATION_FAMILIES",
    "FamilyResult",
    "Headline",
    "Settings",
    "is_precipitation",
]

FAMILIES: dict[str, Callable[[Source, list[Source], Settings], FamilyResult]] = {
    "bias": bias_family,
    "spectra": spectra_family,
    "temporal": temporal_family,
    "extremes": extremes_family,
    "wet_days": wet_days_family,
    "eofs": eofs_family,
    "stability": stability_family,
    "calibration": calibration_family,
}
FORECAST_FAMILIES = ("calibration",)
PRECIPITATION_FAMILIES = ("wet_days",)  # by default only where the reference is precipitation


def is_precipitation(field: xr.DataArray) -> bool:
    """Whether ``field`` is a precipitation field (by its name or CF standard name)."""
    return "precipitation" in f"{field.name} {field.attrs.get('standard_name', '')}"

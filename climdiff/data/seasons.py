"""Where a day sits in its year, in the data's own calendar: what day-of-year conditioning feeds
the networks (:func:`climdiff.models.unet.season_features`).

The value is the *year fraction* ``(day of year - 1) / days in that year``, in [0, 1): 1 January
is 0 in every calendar, and the fraction, not the day number, is what stays comparable between
a 360-day, a 365-day (``noleap``) and a leap year. Dates are cftime datetimes, so every CF
calendar works the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cftime
import numpy as np
import zarr

from climdiff.errors import ClimdiffError


def _year_length(year: int, calendar: str, has_year_zero: bool) -> int:
    start = cftime.datetime(year, 1, 1, calendar=calendar, has_year_zero=has_year_zero)
    return (cftime.datetime(year + 1, 1, 1, calendar=calendar, has_year_zero=has_year_zero) - start).days


def year_fraction(dates: Iterable[cftime.datetime]) -> np.ndarray:
    """``(day of year - 1 + time of day) / days in that year`` of each date, float64 in [0, 1)."""
    out = []
    for date in dates:
        length = _year_length(date.year, date.calendar, date.has_year_zero)
        of_day = (date.hour + (date.minute + date.second / 60.0) / 60.0) / 24.0
        out.append((date.dayofyr - 1 + of_day) / length)
    return np.asarray(out, dtype=np.float64)


def store_year_fraction(path: Path | str, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Year fractions of the store's days ``start:stop``, from its CF ``time`` coordinate (values
    with ``units`` and ``calendar`` attributes, as climdiff's training stores write it)."""
    try:
        time = zarr.open_array(str(Path(path) / "time"), mode="r")
        units, calendar = time.attrs["units"], time.attrs["calendar"]
    except (FileNotFoundError, KeyError, ValueError):
        raise ClimdiffError(
            f"{path} has no CF time coordinate with units and calendar; day-of-year conditioning needs one"
        ) from None
    values = np.asarray(time[start:stop])
    dates = cftime.num2date(values, units, calendar=calendar, only_use_cftime_datetimes=True)
    return year_fraction(np.atleast_1d(dates))

"""Dates of an emulation in the training data's cftime calendar.

``--start`` is the date of the first generated day (its two initial-condition days are the
two before it). Lengths given in years become days by calendar arithmetic, so 100 years is
36 500 days in ``noleap`` and 36 524 or 36 525 in ``standard``.
"""

from __future__ import annotations

import datetime
import re

import cftime

from climdiff.errors import ClimdiffError

_DATE = re.compile(r"^(-?\d{1,4})-(\d{1,2})-(\d{1,2})(?:T00:00:00)?$")


def parse_date(text: str, calendar: str) -> cftime.datetime:
    """A YYYY-MM-DD date in ``calendar``; a clear error for one that does not exist there."""
    match = _DATE.match(text.strip())
    if not match:
        raise ClimdiffError(f"bad date {text!r}: use YYYY-MM-DD")
    year, month, day = (int(v) for v in match.groups())
    try:
        return cftime.datetime(year, month, day, calendar=calendar, has_year_zero=True)
    except ValueError:
        raise ClimdiffError(f"{text} is not a date in the {calendar} calendar") from None


def add_days(date: cftime.datetime, days: int) -> cftime.datetime:
    return date + datetime.timedelta(days=days)


def days_in_years(start: cftime.datetime, years: int) -> int:
    """Days from ``start`` to the same calendar date ``years`` later."""
    try:
        end = start.replace(year=start.year + years)
    except ValueError:  # 29 February into a non-leap year: count to 1 March
        end = start.replace(year=start.year + years, month=3, day=1)
    return (end - start).days


def time_units(start: cftime.datetime) -> str:
    return f"days since {start.strftime('%Y-%m-%d')} 00:00:00"

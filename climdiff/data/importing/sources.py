"""Reading the source files of an import: NetCDF (netCDF4/HDF5 or classic) or Zarr, one or many.

Every check that can be made without reading the data is made here, before anything is
written: the variable is present, its dimensions are (time, lat, lon) (other dimensions of
length 1 are dropped), time is strictly increasing within each file, all files share one
calendar, one unit and one grid, and together they form one regular series without gaps.
Files are ordered by their first time; where one file overlaps the next, the later file's
repeated steps are dropped (reported), and steps that do not line up are refused.

Times become int64 seconds since :data:`REFERENCE` in the source's own calendar (kept as it
is; ``gregorian`` is spelled ``standard``, ``365_day`` ``noleap``, ``366_day`` ``all_leap``).
"""

from __future__ import annotations

import glob
import warnings
from dataclasses import dataclass
from pathlib import Path

import cftime
import numpy as np
import xarray as xr

from climdiff.data.importing.units import same_units
from climdiff.errors import ClimdiffError

REFERENCE = "1800-01-01 00:00:00"
SECONDS = f"seconds since {REFERENCE}"
DAYS = f"days since {REFERENCE}"
DAY = 86_400
CALENDARS = {
    "standard": "standard",
    "gregorian": "standard",
    "proleptic_gregorian": "proleptic_gregorian",
    "noleap": "noleap",
    "365_day": "noleap",
    "all_leap": "all_leap",
    "366_day": "all_leap",
    "360_day": "360_day",
    "julian": "julian",
}
_TIME_NAMES = ("time", "valid_time")
_LAT_UNITS = {"degrees_north", "degree_north", "degree_n", "degrees_n", "degreen", "degreesn"}
_LON_UNITS = {"degrees_east", "degree_east", "degree_e", "degrees_e", "degreee", "degreese"}


@dataclass
class Source:
    """One opened file: its field as (time, lat, lon) and its times."""

    path: Path
    field: xr.DataArray  # lazy, dims ("time", "lat", "lon") in the file's order
    seconds: np.ndarray  # int64 seconds since REFERENCE, strictly increasing
    calendar: str
    units: str | None

    @property
    def lat(self) -> np.ndarray:
        return np.asarray(self.field["lat"].values, dtype=np.float64)

    @property
    def lon(self) -> np.ndarray:
        return np.asarray(self.field["lon"].values, dtype=np.float64)

    def date(self, seconds: int) -> str:
        return format_time(seconds, self.calendar)


def format_time(seconds: int, calendar: str) -> str:
    return cftime.num2date(int(seconds), SECONDS, calendar=calendar).isoformat()


def expand_sources(patterns: list[str]) -> list[Path]:
    """Files and Zarr directories named by ``patterns`` (globs expanded, each sorted, duplicates once)."""
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches or not Path(matches[0]).exists():
            raise ClimdiffError(f"no input matches {pattern!r}")
        paths += [Path(m) for m in matches if Path(m) not in paths]
    return paths


def _open_dataset(path: Path) -> xr.Dataset:
    try:
        if path.is_dir():
            return xr.open_zarr(str(path), decode_times=False, chunks=None)
        return xr.open_dataset(path, engine="netcdf4", decode_times=False)
    except Exception as err:  # noqa: BLE001 - any reader failure is the user's file, said in one line
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ClimdiffError(f"cannot read {path} as NetCDF or Zarr: {first}") from None


def _role(coord: xr.DataArray, name: str) -> str | None:
    """'time', 'lat' or 'lon' for a dimension's coordinate, by CF attributes, else by name."""
    units = str(coord.attrs.get("units", "")).lower()
    standard_name = str(coord.attrs.get("standard_name", "")).lower()
    if " since " in units or standard_name == "time" or coord.attrs.get("axis") == "T" or name.lower() in _TIME_NAMES:
        return "time"
    if units in _LAT_UNITS or standard_name == "latitude" or name.lower() in ("lat", "latitude"):
        return "lat"
    if units in _LON_UNITS or standard_name == "longitude" or name.lower() in ("lon", "longitude"):
        return "lon"
    return None


def open_source(path: Path, variable: str) -> Source:
    """Open one file and check what can be checked within it."""
    ds = _open_dataset(path)
    if variable not in ds.data_vars:
        present = ", ".join(sorted(str(v) for v in ds.data_vars)) or "none"
        raise ClimdiffError(f"{path} has no variable {variable!r} (its variables: {present})")
    field = ds[variable]
    roles: dict[str, str] = {}
    for dim in field.dims:
        role = _role(ds[dim], str(dim)) if dim in ds.coords else None
        if role is None or role in roles:
            if field.sizes[dim] != 1:
                raise ClimdiffError(
                    f"{path}: {variable} has a dimension {dim!r} of length {field.sizes[dim]} besides time, lat and "
                    "lon; select one level or member first"
                )
            field = field.isel({dim: 0}, drop=True)
            continue
        roles[role] = str(dim)
    missing = [r for r in ("time", "lat", "lon") if r not in roles]
    if missing:
        raise ClimdiffError(
            f"{path}: {variable} has no {' or '.join(missing)} dimension (dims: {list(ds[variable].dims)})"
        )
    field = field.rename({dim: role for role, dim in roles.items()}).transpose("time", "lat", "lon")
    time = ds[roles["time"]]
    raw_calendar = str(time.attrs.get("calendar", "standard")).lower()
    if raw_calendar not in CALENDARS:
        raise ClimdiffError(f"{path}: calendar {raw_calendar!r} is not supported (use one of {', '.join(CALENDARS)})")
    calendar = CALENDARS[raw_calendar]
    time_units = str(time.attrs.get("units", ""))
    if " since " not in time_units:
        raise ClimdiffError(
            f"{path}: the time coordinate {roles['time']!r} has units {time_units!r}, not 'UNITS since DATE'; "
            "cannot date the steps"
        )
    dates = cftime.num2date(np.asarray(time.values), time_units, calendar=calendar)
    seconds = np.round(cftime.date2num(np.atleast_1d(dates), SECONDS, calendar=calendar)).astype(np.int64)
    source = Source(path, field, seconds, calendar, field.attrs.get("units"))
    _check_increasing(source)
    return source


def _check_increasing(source: Source) -> None:
    steps = np.diff(source.seconds)
    bad = np.flatnonzero(steps <= 0)
    if bad.size:
        i = int(bad[0])
        what = "duplicated" if steps[i] == 0 else "not increasing"
        raise ClimdiffError(
            f"{source.path}: time is {what} at step {i + 1} ({source.date(source.seconds[i])} -> "
            f"{source.date(source.seconds[i + 1])}); fix or split the file"
        )


@dataclass
class Timeline:
    """The series the files make together: one regular step, each step's file and index."""

    sources: list[Source]
    seconds: np.ndarray  # int64, strictly increasing with a constant step
    file: np.ndarray  # which source holds each step
    index: np.ndarray  # the step's index within that source
    step: int  # seconds between steps

    @property
    def calendar(self) -> str:
        return self.sources[0].calendar

    def date(self, seconds: int) -> str:
        return format_time(seconds, self.calendar)


def build_timeline(sources: list[Source]) -> Timeline:
    """Order the files by time, check they agree and join them into one gap-free regular series."""
    first = sources[0]
    for other in sources[1:]:
        if other.calendar != first.calendar:
            raise ClimdiffError(
                f"mixed calendars: {first.path} uses {first.calendar}, {other.path} uses {other.calendar}"
            )
        if not same_units(other.units, first.units):
            raise ClimdiffError(f"mixed units: {first.path} has {first.units!r}, {other.path} has {other.units!r}")
        if (
            other.lat.shape != first.lat.shape
            or other.lon.shape != first.lon.shape
            or not (np.allclose(other.lat, first.lat) and np.allclose(other.lon, first.lon))
        ):
            raise ClimdiffError(f"mixed grids: {other.path} is not on the grid of {first.path}")
    ordered = sorted(sources, key=lambda s: int(s.seconds[0]))
    seconds, files, indices = [], [], []
    last = None
    for number, source in enumerate(ordered):
        keep = np.ones(source.seconds.size, dtype=bool) if last is None else source.seconds > last
        if not keep.all():
            repeated = source.seconds[~keep]
            if not np.isin(repeated, np.concatenate(seconds)).all():
                raise ClimdiffError(
                    f"{source.path} overlaps the previous file with time steps that do not line up "
                    f"({source.date(repeated[0])} .. {source.date(repeated[-1])})"
                )
            warnings.warn(
                f"{source.path} overlaps the previous file: its {repeated.size} step(s) "
                f"{source.date(repeated[0])} .. {source.date(repeated[-1])} are taken from the earlier file",
                stacklevel=2,
            )
        kept = np.flatnonzero(keep)  # a suffix of the file: its times increase
        seconds.append(source.seconds[kept])
        files.append(np.full(kept.size, number))
        indices.append(kept)
        if kept.size:
            last = int(source.seconds[kept[-1]])
    all_seconds = np.concatenate(seconds)
    timeline = Timeline(ordered, all_seconds, np.concatenate(files), np.concatenate(indices), 0)
    timeline.step = _regular_step(timeline)
    return timeline


def _regular_step(timeline: Timeline) -> int:
    """The one time step of the series; gaps and irregular steps are refused."""
    seconds = timeline.seconds
    if seconds.size < 2:
        raise ClimdiffError("the inputs hold a single time step; at least two are needed to know the time step")
    steps = np.diff(seconds)
    step = int(np.min(steps))
    if step > DAY:
        raise ClimdiffError(f"the inputs are coarser than daily (time step {step / DAY:g} days)")
    if DAY % step:
        raise ClimdiffError(f"the time step of {step} s does not divide a day")
    bad = np.flatnonzero(steps != step)
    if bad.size:
        i = int(bad[0])
        raise ClimdiffError(
            f"gap in the inputs: nothing between {timeline.date(seconds[i])} and {timeline.date(seconds[i + 1])} "
            f"(time step {step} s); climdiff does not fill gaps"
        )
    return step

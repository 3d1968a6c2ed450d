"""`climdiff data import`: NetCDF or Zarr files of a lat-lon field -> a daily training store.

Everything about the inputs is checked before the store is created (:func:`plan_import`), so a
bad input is refused with one line and nothing written. The store is then filled one Zarr time
chunk of days at a time, each chunk committed with the number of days done (the resume state),
so an interrupted import continues where it stopped and gives the same store. The only input
error that needs the data itself - missing values (NaN, or ``_FillValue`` cells) - removes the
partial store, since no store can be completed from such inputs; climdiff does not fill them.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cftime
import numpy as np

from climdiff.data.importing.daily import MEAN, SUM, DayPlan, aggregate, plan_days
from climdiff.data.importing.regrid import Regridder, make_regridder
from climdiff.data.importing.sources import DAYS, Timeline, build_timeline, expand_sources, open_source
from climdiff.data.importing.units import (
    AMOUNT,
    PRECIPITATION,
    is_precipitation,
    parse_units,
    precipitation_units,
)
from climdiff.data.splits import parse_years, year_splits
from climdiff.data.statistics import field_statistics
from climdiff.data.store import TRAINING_KIND, AppendableStore, TimeVariable
from climdiff.data.transforms import PRECIPITATION_OFFSET, PRECIPITATION_UNITS, STANDARDIZE
from climdiff.errors import ClimdiffError
from climdiff.metadata import field_attrs
from climdiff.progress import ProgressReporter
from climdiff.resume import claim_output, remove_output
from climdiff.zarr_io import read_header

HOWS = ("auto", SUM, MEAN)
READ_BUDGET = 2**28  # bytes of float64 source steps held at once
# a day's total in mm is its mean rate in mm day-1: CF's rate name and "time: mean" (docs/metadata.md)
PRECIPITATION_ATTRS = field_attrs({"name": PRECIPITATION, "units": PRECIPITATION_UNITS})


@dataclass(frozen=True)
class ImportRun:
    """What the user asked for (the sources as given: globs are expanded when planning)."""

    sources: tuple[str, ...]
    variable: str
    train: str
    validation: str
    test: str
    how: str = "auto"
    factor: int | None = None
    resolution: float | None = None  # --grid D: output cells of D degrees
    chunk: int = 32

    def __post_init__(self) -> None:
        if self.how not in HOWS:
            raise ClimdiffError(f"--how must be one of {', '.join(HOWS)}, got {self.how!r}")
        if self.chunk < 1:
            raise ClimdiffError(f"--chunk must be positive, got {self.chunk}")
        if not self.sources:
            raise ClimdiffError("give at least one input file")


@dataclass(frozen=True)
class StoredField:
    """What the store holds of the source variable: name, units, daily aggregation, attributes, transform."""

    name: str
    units: str
    how: str  # SUM or MEAN over the steps of a day
    factor: float  # source units -> stored units, applied to the daily aggregate
    attrs: dict[str, Any]
    transform: dict[str, Any]


@dataclass
class ImportPlan:
    """Everything known before reading data: files, days, split, grid and the stored field."""

    run: ImportRun
    timeline: Timeline
    days: DayPlan
    field: StoredField
    regridder: Regridder
    split: dict[str, list[int]]

    @property
    def precipitation(self) -> bool:
        return self.field.name == PRECIPITATION

    def identity(self) -> dict[str, Any]:
        """The configuration stored in (and compared against) the output: the run and its exact inputs."""
        return {
            "sources": [[str(s.path.resolve()), _size(s.path)] for s in self.timeline.sources],
            "variable": self.run.variable,
            "how": self.field.how,
            "factor": self.run.factor,
            "grid": self.run.resolution,
            "years": {"train": self.run.train, "validation": self.run.validation, "test": self.run.test},
            "chunk": self.run.chunk,
            "frames": int(self.days.days.size),
        }


def _size(path: Path) -> int:
    """Bytes of a file or of every file under a Zarr directory (a cheap change detector for resume)."""
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def plan_import(run: ImportRun) -> ImportPlan:
    """Open and check every input; nothing is written."""
    sources = [open_source(path, run.variable) for path in expand_sources(list(run.sources))]
    timeline = build_timeline(sources)
    first = timeline.sources[0]
    field = stored_field(run, first.field.attrs, first.units, f"{first.path}: {run.variable}")
    days = plan_days(timeline, field.how)
    years = np.array([d.year for d in cftime.num2date(days.days, DAYS, calendar=timeline.calendar)])
    ranges = {"train": run.train, "validation": run.validation, "test": run.test}
    flags = {"train": "--train", "validation": "--val", "test": "--test"}
    split = year_splits(years, {k: parse_years(v, flags[k]) for k, v in ranges.items()})
    regridder = make_regridder(first.lat, first.lon, factor=run.factor, resolution=run.resolution)
    return ImportPlan(run, timeline, days, field, regridder, split)


def stored_field(run: ImportRun, attrs: dict[str, Any], units: str | None, where: str) -> StoredField:
    """Precipitation becomes daily totals in mm day-1 (log transform); any other field keeps its units."""
    if is_precipitation(run.variable, attrs):
        kind = precipitation_units(units, where)
        how = SUM if kind.kind == AMOUNT else MEAN
        if run.how not in ("auto", how):
            raise ClimdiffError(
                f"{where} is precipitation {kind.kind} in {kind.source!r}: its daily total is the {how} over the day, "
                f"not --how {run.how}"
            )
        return StoredField(
            PRECIPITATION, PRECIPITATION_UNITS, how, kind.factor, dict(PRECIPITATION_ATTRS), dict(PRECIPITATION_OFFSET)
        )
    how = MEAN if run.how == "auto" else run.how
    if units:
        parse_units(units, where)
    kept = {k: attrs[k] for k in ("standard_name", "long_name") if k in attrs}
    stored_attrs = {**kept, "units": units or "1", "cell_methods": f"time: {how}"}
    return StoredField(run.variable, units or "1", how, 1.0, stored_attrs, {"name": STANDARDIZE})


def import_store(
    out: Path,
    run: ImportRun,
    *,
    overwrite: bool = False,
    quiet: bool = False,
    command: str = "",
    after_commit: Callable[[int], None] | None = None,
) -> Path:
    """Write (or resume, or finish) a training store at ``out`` from the inputs of ``run``.

    ``after_commit`` is called with the number of committed days after every chunk; tests use it
    to interrupt an import at a known point.
    """
    out = Path(out)
    plan = plan_import(run)
    header = read_header(out)
    resume = claim_output(out, kind=TRAINING_KIND, config=plan.identity(), overwrite=overwrite, header=header)
    store = AppendableStore.open(out) if resume else _create_store(out, plan, command)
    state = store.load_state()
    done = 0 if state is None else int(state["days"])
    store.truncate(done)
    total = int(plan.days.days.size)
    label = f"import {plan.field.name} {plan.regridder.grid.n_lat}x{plan.regridder.grid.n_lon}"
    try:
        with ProgressReporter(label, total, unit="days", rate_label="days/s", quiet=quiet, completed=done) as progress:
            while done < total:
                stop = min(total, (done // run.chunk + 1) * run.chunk)
                t0 = time.perf_counter()
                store.append({"time": plan.days.days[done:stop], plan.field.name: _daily_fields(plan, done, stop)})
                store.save_state({"days": np.int64(stop)})
                progress.advance(stop - done, rate=(stop - done) / (time.perf_counter() - t0))
                done = stop
                if after_commit is not None:
                    after_commit(done)
    except ClimdiffError:
        remove_output(out)  # inputs no store can be completed from: leave nothing half-written
        raise
    _finalize(store, plan)
    return out


def _daily_fields(plan: ImportPlan, start: int, stop: int) -> np.ndarray:
    """Days ``start:stop`` read, checked, aggregated, converted and regridded, as float32.

    Read a few days at a time, so that memory stays near :data:`READ_BUDGET` whatever the chunk
    (32 days of hourly ERA5 at 0.25 degrees would be 6 GB at once).
    """
    step_bytes = 8 * int(np.prod(plan.timeline.sources[0].field.shape[1:]))
    per_read = max(1, READ_BUDGET // (step_bytes * plan.days.per_day))
    parts = []
    for first in range(start, stop, per_read):
        last = min(stop, first + per_read)
        daily = (
            aggregate(_read_steps(plan, plan.days.steps(first, last)), plan.days.per_day, plan.field.how)
            * plan.field.factor
        )
        if plan.precipitation:
            daily = _clip_negative(daily, plan.timeline, plan.days, first, last)
        parts.append(plan.regridder(daily).astype(np.float32))
    return np.concatenate(parts)


def _read_steps(plan: ImportPlan, steps: slice) -> np.ndarray:
    """The timeline's ``steps`` as (time, lat, lon) in the sources' order; missing values refused."""
    timeline = plan.timeline
    files, indices = timeline.file[steps], timeline.index[steps]
    parts = []
    for number in np.unique(files):
        chosen = indices[files == number]  # contiguous within a file
        source = timeline.sources[int(number)]
        values = np.asarray(source.field.isel(time=slice(int(chosen[0]), int(chosen[-1]) + 1)).values)
        bad = ~np.isfinite(values)
        if bad.any():
            t = int(source.seconds[chosen[0] + int(np.flatnonzero(bad.any(axis=(1, 2)))[0])])
            raise ClimdiffError(
                f"{source.path}: {plan.run.variable} has missing values ({int(bad.sum())} in this stretch, the first "
                f"at {source.date(t)}); climdiff does not fill them: fill or mask the inputs first"
            )
        parts.append(values)
    return np.concatenate(parts)


def _clip_negative(daily: np.ndarray, timeline: Timeline, days: DayPlan, start: int, stop: int) -> np.ndarray:
    """Precipitation below zero (packing noise in reanalyses) is set to zero, with a warning."""
    negative = daily < 0
    if negative.any():
        first = cftime.num2date(int(days.days[start]), DAYS, calendar=timeline.calendar).isoformat()[:10]
        last = cftime.num2date(int(days.days[stop - 1]), DAYS, calendar=timeline.calendar).isoformat()[:10]
        warnings.warn(
            f"set {int(negative.sum())} negative daily precipitation value(s) (lowest {daily.min():.3g} "
            f"{PRECIPITATION_UNITS}) to 0 in {first} .. {last}",
            stacklevel=2,
        )
    return np.maximum(daily, 0.0)


def _create_store(out: Path, plan: ImportPlan, command: str) -> AppendableStore:
    grid = plan.regridder.grid
    timeline = plan.timeline
    time_attrs = {"standard_name": "time", "units": DAYS, "calendar": timeline.calendar, "axis": "T"}
    variables = [
        TimeVariable("time", dtype="int64", attrs=time_attrs),
        TimeVariable(plan.field.name, dims=("lat", "lon"), shape=grid.shape, attrs=plan.field.attrs),
    ]
    source_units = timeline.sources[0].units
    return AppendableStore.create(
        out,
        kind=TRAINING_KIND,
        config=plan.identity(),
        attrs={
            "title": f"{plan.field.name}, daily, imported by climdiff",
            "Conventions": "CF-1.10",
            "source": ", ".join(s.path.name for s in timeline.sources),
            "history": command,
        },
        coords=grid.coordinates(),
        variables=variables,
        time_chunk=plan.run.chunk,
        meta={
            "variable": plan.field.name,
            "units": plan.field.units,
            "calendar": timeline.calendar,
            "grid": grid.meta(),
            "transform": plan.field.transform,
            "import": {
                "source_variable": plan.run.variable,
                "source_units": source_units,
                "unit_factor": plan.field.factor,
                "step_seconds": timeline.step,
                "steps_per_day": plan.days.per_day,
                "aggregation": plan.field.how,
                "period_ending": plan.days.period_ending,
                "source_grid": [int(s) for s in timeline.sources[0].field.shape[1:]],
                "regrid": plan.regridder.describe(),
            },
        },
    )


def _finalize(store: AppendableStore, plan: ImportPlan) -> None:
    """Raw training statistics and the split, then mark complete (idempotent if interrupted)."""
    train = plan.split["train"]
    stats = field_statistics(store.path, plan.field.name, start=train[0], stop=train[1])
    store.update_meta(complete=True, split=plan.split, stats={plan.field.name: stats})
    store.drop_state()

"""Forecast mode of `climdiff emulate`: short ensemble runs started from reference days.

Calibration (CRPS, spread-skill, rank histograms) needs many forecasts of the same days the
reference holds. Each start takes two consecutive reference days as its initial condition; the
later one is the start's ``init_time`` and lead l is the day l days after it. Starts are spread
evenly over the reference's test split (``--starts N``) or given as dates (``--start-dates``).

Chain (start, member) draws from the generator keyed by (seed, reference index of the start,
member), so a start's forecast does not depend on which other starts or how many members run
beside it. Starts are written whole, then marked complete: re-running an interrupted command
redoes only the fixed groups of starts (one sampling batch each) holding an unmarked start, so
it gives, bit for bit, what an uninterrupted run gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cftime
import numpy as np
import torch
import xarray as xr

from climdiff.bundle import Bundle
from climdiff.data.store import open_training_store
from climdiff.data.transforms import Transform, transform_from_normalization
from climdiff.errors import ClimdiffError
from climdiff.finite import require_finite
from climdiff.progress import ProgressReporter
from climdiff.resume import claim_output
from climdiff.rollout.blocks import Block, BlockRules, run_blocks
from climdiff.rollout.calendar import add_days, parse_date, time_units
from climdiff.rollout.engine import EmulateConfig, provenance, store_layout, value_limit
from climdiff.rollout.policy import chains_per_call
from climdiff.rollout.steppers import DayStepper, day_stepper
from climdiff.rollout.writer import FORECAST_KIND, ForecastStore, MemberState
from climdiff.runtime import resolve_device
from climdiff.seeding import keyed_generator
from climdiff.zarr_io import read_header, store_meta


@dataclass(frozen=True)
class ForecastConfig:
    """A forecast set: the rollout settings (``days`` = leads) and where the starts come from."""

    rollout: EmulateConfig
    reference: str
    init_indices: tuple[int, ...]
    init_dates: tuple[str, ...]

    def identity(self, bundle: Bundle) -> dict[str, Any]:
        out = self.rollout.identity(bundle)
        for key in ("start", "time_chunk", "means"):
            out.pop(key, None)
        return {**out, "reference": self.reference, "init_dates": list(self.init_dates)}


@dataclass
class ForecastResult:
    path: Path
    starts: int
    leads: int
    members: int
    stopped: int
    redraws: int


def open_reference(path: Path, bundle: Bundle) -> xr.Dataset:
    """The reference training store, refused unless it holds the bundle's variable on its grid."""
    ds = open_training_store(path)
    meta = store_meta(ds.attrs)
    variable = bundle.meta["variable"]["name"]
    if meta["variable"] != variable or meta["grid"] != bundle.meta["grid"]:
        raise ClimdiffError(
            f"{path} holds {meta['variable']} on grid {meta['grid'].get('shape')}, but the model emulates "
            f"{variable} on grid {bundle.meta['grid'].get('shape')}"
        )
    if meta["calendar"] != bundle.meta["calendar"]:
        raise ClimdiffError(f"{path} uses the {meta['calendar']} calendar, the model {bundle.meta['calendar']}")
    return ds


def spread_starts(reference: xr.Dataset, count: int, leads: int, split: str = "test") -> list[int]:
    """``count`` start indices spread evenly over the ``split`` split, each with its previous day
    and its ``leads`` verifying days inside the split."""
    lo, hi = store_meta(reference.attrs)["split"][split]
    first, last = lo + 1, hi - 1 - leads
    if count < 1:
        raise ClimdiffError(f"--starts must be positive, got {count}")
    if last - first + 1 < count:
        raise ClimdiffError(
            f"the reference's {split} split (days {lo}..{hi - 1}) has room for {max(0, last - first + 1)} starts "
            f"with {leads} verifying days each, not {count}"
        )
    return sorted({int(round(v)) for v in np.linspace(first, last, count)})


def dated_starts(reference: xr.Dataset, dates: list[str]) -> list[int]:
    """Start indices of explicit init dates (the last conditioning day of each start)."""
    calendar = store_meta(reference.attrs)["calendar"]
    times = list(reference["time"].values)
    index = {(t.year, t.month, t.day): i for i, t in enumerate(times)}
    starts = []
    for text in dates:
        day = parse_date(text, calendar)
        i = index.get((day.year, day.month, day.day))
        if i is None:
            raise ClimdiffError(f"start date {text} is not in the reference ({times[0]} .. {times[-1]})")
        if i == 0:
            raise ClimdiffError(f"start date {text} is the reference's first day; a start needs the day before it")
        starts.append(i)
    if len(set(starts)) != len(starts):
        raise ClimdiffError("--start-dates lists a date twice")
    return starts


def plan_forecast(
    bundle: Bundle, reference_path: Path, rollout: EmulateConfig, *, starts: int | None, start_dates: list[str] | None
) -> ForecastConfig:
    """The forecast set's configuration: starts spread over the test split, or at given dates."""
    if (starts is None) == (not start_dates):
        raise ClimdiffError("forecast mode needs exactly one of --starts and --start-dates")
    reference = open_reference(reference_path, bundle)
    indices = (
        dated_starts(reference, start_dates) if start_dates else spread_starts(reference, starts or 0, rollout.days)
    )
    dates = tuple(reference["time"].values[i].isoformat()[:10] for i in indices)
    field = reference[bundle.meta["variable"]["name"]]
    for index, date in zip(indices, dates, strict=True):
        conditioning = field.isel(time=slice(index - 1, index + 1)).values
        require_finite(conditioning, f"{field.name} in {reference_path} (start {date})", axis="time", offset=index - 1)
    return ForecastConfig(rollout, str(Path(reference_path).resolve()), tuple(indices), dates)


def forecast(
    bundle: Bundle,
    reference_path: Path,
    out: Path,
    config: ForecastConfig,
    *,
    batch: int | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    command: str = "",
    concurrent_guide: bool = False,
) -> ForecastResult:
    """Run (or resume, or refuse) a forecast set into ``out`` (``concurrent_guide``: see
    :class:`~climdiff.rollout.steppers.GuidedStepper`)."""
    out, rollout = Path(out), config.rollout
    reference = open_reference(reference_path, bundle)
    device = resolve_device(rollout.device)
    batch = chains_per_call(rollout.members, batch, forecast=True)
    variable = bundle.meta["variable"]["name"]
    frame = tuple(bundle.initial_state.shape[1:])
    identity = config.identity(bundle)
    stepper = day_stepper(bundle, rollout.sampler, device, guide_thread=concurrent_guide)
    if not claim_output(out, kind=FORECAST_KIND, config=identity, overwrite=overwrite, header=read_header(out)):
        _create(bundle, reference, out, config, identity, command, stepper)
    store = ForecastStore.open(out, variable, frame)
    completed = store.completed()
    per_call = max(1, batch // rollout.members)
    # fixed groups of starts, redone whole when any start in them is missing: a resumed run
    # samples with the same batch layout as an uninterrupted one, so it is bit-identical
    groups = [list(range(lo, min(lo + per_call, len(completed)))) for lo in range(0, len(completed), per_call)]
    groups = [g for g in groups if not completed[g].all()]
    transform = transform_from_normalization(bundle.meta["normalization"])
    rules = BlockRules(batch, value_limit(bundle, rollout.blowup_factor), rollout.max_redraws, transform)
    todo = sum(len(g) for g in groups)
    total = len(config.init_indices) * rollout.members * rollout.days
    done = (len(config.init_indices) - todo) * rollout.members * rollout.days
    with ProgressReporter(f"forecast {todo} start(s)", total, unit="member-days", quiet=quiet, completed=done) as bar:
        run_blocks(
            stepper, (_group_block(reference, variable, config, g, transform) for g in groups), store, rules, bar
        )
    redraws, stopped = int(store.group["redraws"][:].sum()), int((store.group["stopped_lead"][:] >= 0).sum())
    store.finish(stopped_members=stopped, total_redraws=redraws)
    return ForecastResult(out, len(config.init_indices), rollout.days, rollout.members, stopped, redraws)


def _group_block(
    reference: xr.Dataset, variable: str, config: ForecastConfig, starts: list[int], transform: Transform
) -> Block:
    """Every lead of the chains (start, member) of ``starts``, start-major; lead 1 (day 0) is the day
    after the start's ``init_time``."""
    chains = [(start, m) for start in starts for m in range(config.rollout.members)]
    times = reference["time"].values
    origins = [add_days(times[config.init_indices[start]], 1) for start, _ in chains]
    states = _initial_states(reference, variable, config, starts, transform)
    return Block(chains, states, 0, config.rollout.days, origins)


def _initial_states(
    reference: xr.Dataset, variable: str, config: ForecastConfig, starts: list[int], transform: Transform
) -> list[MemberState]:
    """One state per (start, member), start-major: the two reference days up to the start."""
    states = []
    for start in starts:
        index = config.init_indices[start]
        days = reference[variable].isel(time=slice(index - 1, index + 1)).values.astype(np.float32)
        last = transform.forward(torch.from_numpy(days)[:, None])
        for member in range(config.rollout.members):
            states.append(MemberState(last.clone(), keyed_generator(config.rollout.seed, index, member)))
    return states


def _create(
    bundle: Bundle,
    reference: xr.Dataset,
    out: Path,
    config: ForecastConfig,
    identity: dict[str, Any],
    command: str,
    stepper: DayStepper,
) -> ForecastStore:
    calendar = bundle.meta["calendar"]
    units = time_units(reference["time"].values[0])
    init_days = np.asarray(cftime.date2num([reference["time"].values[i] for i in config.init_indices], units, calendar))
    attrs = provenance(bundle, config.rollout, command, stepper, 1)
    attrs["title"] = attrs["title"].replace("emulation", "forecasts", 1)
    return ForecastStore.create(
        out,
        store_layout(bundle, config.rollout.zarr_format),
        config=identity,
        init_days=init_days.astype(np.int64),
        leads=config.rollout.days,
        members=config.rollout.members,
        time_units=units,
        attrs={**attrs, "reference": config.reference},
    )

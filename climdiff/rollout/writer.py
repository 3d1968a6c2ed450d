"""Rollout stores: Zarr groups created up front with their whole shape.

The emulation store (one long run per member) and the forecast store (short runs from many
reference days) share the header, consolidation and completion logic of :class:`RolloutStore`.

Layout: the field ``(member, time, y, x)`` (or ``lat, lon``) in physical units, chunked
``(1, time_chunk, y, x)``; ``time`` (days since the first generated day, in the bundle's cftime
calendar), ``member`` (standard_name ``realization``), the grid's coordinates (with cell bounds
on a latitude-longitude grid); per-member arrays: ``resume_state`` (the last two days in model
space, the member's random generator, days done, redraws, the day it stopped), ``redraws`` and
``stopped_day``. Attributes follow :mod:`climdiff.metadata`: netCDF-serialisable (the header
and the sampler settings as JSON text), int32 counters, units on every variable that has one.

Because the shape never changes, the consolidated metadata written at creation stays valid for
the whole run; the final attributes are consolidated once at the end.

Crash safety: a member's block of days (aligned to ``time_chunk``) is written as whole chunks,
then its resume state is replaced - one chunk file, written atomically by Zarr's local store -
so the state never describes days that are not on disk, and a resumed member recomputes at most
one block, bit for bit. Members own disjoint chunks, so ranks never write the same file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import xarray as xr
import zarr

from climdiff import __version__
from climdiff.metadata import BOUNDS_DIM, COUNTER_DTYPE, MEMBER_ATTRS, cell_bounds, counter_attrs
from climdiff.zarr_io import EMULATION_KIND, FORECAST_KIND, consolidate, create_named_array, store_attrs, update_header

# period name -> pandas/cftime resampling frequency (periods start on their first day)
MEAN_PERIODS = {"monthly": "MS", "annual": "YS"}
RNG_BYTES = int(torch.Generator().get_state().numel())
REDRAWS = "days drawn again after a failed stability check"
STOPPED = "index of the {} a member stopped at (-1: ran to the end)"


@dataclass
class MemberState:
    """What continues one member bit for bit: its last two days (model space, oldest first),
    its generator, and its counters."""

    last: torch.Tensor
    generator: torch.Generator
    days_done: int = 0
    redraws: int = 0
    stopped_day: int = -1

    @property
    def stopped(self) -> bool:
        return self.stopped_day >= 0


class RolloutWriter(Protocol):
    """What the block loop (:mod:`climdiff.rollout.blocks`) needs of a store."""

    def write_chains(
        self, chains: Sequence[Any], first: int, values: np.ndarray, states: Sequence[MemberState]
    ) -> None:
        """Days ``first ..`` of ``chains`` (``values`` (chain, day, H, W), physical units), then
        whatever their ``states`` must leave on disk for a resumed run to continue bit for bit."""
        ...


def state_bytes(frame_shape: tuple[int, ...]) -> int:
    return 2 * int(np.prod(frame_shape)) * 4 + RNG_BYTES + 3 * 8


def encode_state(state: MemberState) -> np.ndarray:
    last = state.last.detach().to("cpu", torch.float32).numpy().tobytes()
    rng = state.generator.get_state().numpy().tobytes()
    counters = np.array([state.days_done, state.redraws, state.stopped_day], dtype=np.int64).tobytes()
    return np.frombuffer(last + rng + counters, dtype=np.uint8)


def decode_state(row: np.ndarray, frame_shape: tuple[int, ...]) -> MemberState:
    n_last = 2 * int(np.prod(frame_shape)) * 4
    raw = row.tobytes()
    last = torch.from_numpy(np.frombuffer(raw[:n_last], dtype=np.float32).reshape(2, *frame_shape).copy())
    generator = torch.Generator()
    generator.set_state(torch.from_numpy(np.frombuffer(raw[n_last : n_last + RNG_BYTES], dtype=np.uint8).copy()))
    days, redraws, stopped = np.frombuffer(raw[n_last + RNG_BYTES :], dtype=np.int64)
    return MemberState(last, generator, int(days), int(redraws), int(stopped))


@dataclass(frozen=True)
class StoreLayout:
    """What every rollout store of one model shares: its field, grid, calendar and Zarr format."""

    variable: str
    variable_attrs: dict[str, Any]
    calendar: str
    coords: dict[str, np.ndarray]
    coord_attrs: dict[str, dict[str, Any]]
    frame_shape: tuple[int, ...]
    zarr_format: int = 3


class RolloutStore:
    """A pre-shaped Zarr group with climdiff's header; subclasses add their arrays."""

    kind = ""

    def __init__(self, path: Path, group: zarr.Group, variable: str, frame_shape: tuple[int, ...]) -> None:
        self.path = path
        self.group = group
        self.variable = variable
        self.frame_shape = frame_shape

    @classmethod
    def _new_group(cls, path: Path, layout: StoreLayout, members: int) -> zarr.Group:
        """A fresh group with the coordinates every rollout store has: member and the grid (and
        the cell bounds a grid coordinate names in its ``bounds`` attribute)."""
        group = zarr.open_group(str(path), mode="w", zarr_format=layout.zarr_format)
        create_named_array(
            group, "member", dims=("member",), data=np.arange(members, dtype=COUNTER_DTYPE), attributes=MEMBER_ATTRS
        )
        for name, values in layout.coords.items():
            attrs = layout.coord_attrs.get(name, {})
            create_named_array(group, name, dims=(name,), data=values, attributes=attrs)
            if "bounds" in attrs:
                create_named_array(group, attrs["bounds"], dims=(name, BOUNDS_DIM), data=cell_bounds(values, name))
        return group

    @classmethod
    def _seal(
        cls, path: Path, group: zarr.Group, layout: StoreLayout, config: dict[str, Any], attrs: dict[str, Any]
    ) -> RolloutStore:
        """Write the header (incomplete) and consolidate: the shape never changes afterwards."""
        meta = {"kind": cls.kind, "climdiff_version": __version__, "config": config, "complete": False}
        group.attrs.update(store_attrs(attrs, meta))
        store = cls(path, group, layout.variable, layout.frame_shape)
        store.consolidate()
        return store

    @classmethod
    def open(cls, path: Path, variable: str, frame_shape: tuple[int, ...]) -> RolloutStore:
        return cls(path, zarr.open_group(str(path), mode="r+", use_consolidated=False), variable, frame_shape)

    def consolidate(self) -> None:
        consolidate(self.path)

    def finish(self, **summary: Any) -> None:
        update_header(self.group, complete=True, **summary)
        self.consolidate()


class EmulationStore(RolloutStore):
    """Writes days of members into a pre-shaped store; reads and writes resume states."""

    kind = EMULATION_KIND

    @classmethod
    def create(
        cls,
        path: Path,
        layout: StoreLayout,
        *,
        config: dict[str, Any],
        members: int,
        days: int,
        time_units: str,
        time_chunk: int,
        attrs: dict[str, Any],
    ) -> EmulationStore:
        group = cls._new_group(path, layout, members)
        frame_shape = layout.frame_shape
        create_named_array(
            group,
            "time",
            dims=("time",),
            data=np.arange(days, dtype=COUNTER_DTYPE),
            chunks=(min(days, 100_000),),
            attributes={"standard_name": "time", "units": time_units, "calendar": layout.calendar, "axis": "T"},
        )
        create_named_array(
            group,
            layout.variable,
            dims=("member", "time", *layout.coords),
            shape=(members, days, *frame_shape[-2:]),
            chunks=(1, min(time_chunk, days), *frame_shape[-2:]),
            dtype="float32",
            fill_value=np.nan,
            attributes=layout.variable_attrs,
        )
        nbytes = state_bytes(frame_shape)
        create_named_array(
            group,
            "resume_state",
            dims=("member", "state_byte"),
            shape=(members, nbytes),
            chunks=(1, nbytes),
            dtype="uint8",
            fill_value=0,
            attributes={"long_name": "per-member resume state (climdiff internal)"},
        )
        create_named_array(
            group,
            "redraws",
            dims=("member",),
            data=np.zeros(members, dtype=COUNTER_DTYPE),
            chunks=(1,),
            attributes=counter_attrs(REDRAWS),
        )
        create_named_array(
            group,
            "stopped_day",
            dims=("member",),
            data=np.full(members, -1, dtype=COUNTER_DTYPE),
            chunks=(1,),
            attributes=counter_attrs(STOPPED.format("day")),
        )
        return cls._seal(path, group, layout, config, attrs)  # type: ignore[return-value]

    def load_state(self, member: int) -> MemberState | None:
        row = self.group["resume_state"][member]
        if not row.any():
            return None
        return decode_state(row, self.frame_shape)

    def write_block(self, member: int, start: int, values: np.ndarray, state: MemberState) -> None:
        """Days ``start .. start + len(values)`` of ``member`` (physical units), then its state."""
        self.group[self.variable][member, start : start + len(values)] = values
        self.group["resume_state"][member] = encode_state(state)
        self.group["redraws"][member] = state.redraws
        self.group["stopped_day"][member] = state.stopped_day

    def write_chains(
        self, chains: Sequence[Any], first: int, values: np.ndarray, states: Sequence[MemberState]
    ) -> None:
        """:class:`RolloutWriter`: chains are members."""
        for i, member in enumerate(chains):
            self.write_block(int(member), first, values[i], states[i])

    def write_means(self, period: str) -> None:
        """Add ``<variable>_<period>``: calendar-month or calendar-year means of every member, with
        the number of days each averages (a run's first and last periods may be partial; a period
        with a day missing, e.g. after a member stopped, is NaN). Written once all days are in;
        re-writing replaces it, so an interruption here is repaired by re-running."""
        ds = xr.open_zarr(str(self.path), consolidated=False, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
        field = ds[self.variable]
        dim = f"time_{period}"
        resampled = field.resample(time=MEAN_PERIODS[period])
        mean = resampled.mean(skipna=False).rename(time=dim)
        days = field["time"].resample(time=MEAN_PERIODS[period]).count().rename(time=dim).astype(COUNTER_DTYPE)
        days.attrs = counter_attrs(f"days in each {period} mean")  # not the time axis's attributes
        mean.attrs = {**field.attrs, "cell_methods": "time: mean", "long_name": f"{period} mean of {self.variable}"}
        out = xr.Dataset({f"{self.variable}_{period}": mean, f"days_{period}": days})
        out[dim].attrs = {"standard_name": "time", "long_name": f"first day of each {period} period", "axis": "T"}
        out[dim].encoding = {"units": field["time"].encoding["units"], "calendar": field["time"].encoding["calendar"]}
        out = out.drop_vars([c for c in out.coords if c not in out.dims and c != dim])
        chunked = out.chunk({"member": 1, dim: -1})
        for name in chunked.variables:
            chunked[name].encoding.pop("chunks", None)
        chunked.to_zarr(str(self.path), mode="a", consolidated=False, zarr_format=self.group.metadata.zarr_format)


class ForecastStore(RolloutStore):
    """Short ensemble forecasts from reference days: the field ``(init_time, lead, member, y, x)``.

    One chunk holds every lead and member of one start, so a start is written whole; its entry
    of ``completed`` (one chunk per start) is set afterwards, and a resumed run redraws only the
    starts not marked complete (each start's members draw from their own keyed streams).
    """

    kind = FORECAST_KIND

    @classmethod
    def create(
        cls,
        path: Path,
        layout: StoreLayout,
        *,
        config: dict[str, Any],
        init_days: np.ndarray,
        leads: int,
        members: int,
        time_units: str,
        attrs: dict[str, Any],
    ) -> ForecastStore:
        """``init_days``: each start's last conditioning day, in days since ``time_units``' origin."""
        group = cls._new_group(path, layout, members)
        starts, frame_shape = len(init_days), layout.frame_shape
        time_attrs = {"units": time_units, "calendar": layout.calendar}
        create_named_array(
            group,
            "init_time",
            dims=("init_time",),
            data=np.asarray(init_days, dtype=COUNTER_DTYPE),
            attributes={
                **time_attrs,
                "standard_name": "forecast_reference_time",
                "long_name": "last reference day the forecast is conditioned on",
            },
        )
        lead = np.arange(1, leads + 1, dtype=COUNTER_DTYPE)
        create_named_array(
            group,
            "lead",
            dims=("lead",),
            data=lead,
            attributes={"standard_name": "forecast_period", "units": "days", "long_name": "lead time"},
        )
        valid = np.asarray(init_days, dtype=COUNTER_DTYPE)[:, None] + lead[None]
        create_named_array(
            group,
            "valid_time",
            dims=("init_time", "lead"),
            data=valid,
            attributes={**time_attrs, "standard_name": "time", "long_name": "day the forecast is valid for"},
        )
        create_named_array(
            group,
            layout.variable,
            dims=("init_time", "lead", "member", *layout.coords),
            shape=(starts, leads, members, *frame_shape[-2:]),
            chunks=(1, leads, members, *frame_shape[-2:]),
            dtype="float32",
            fill_value=np.nan,
            attributes={**layout.variable_attrs, "coordinates": "valid_time"},
        )
        done = counter_attrs("1 where every lead and member of the start is written")
        create_named_array(
            group, "completed", dims=("init_time",), data=np.zeros(starts, dtype=np.int8), chunks=(1,), attributes=done
        )
        create_named_array(
            group,
            "redraws",
            dims=("init_time", "member"),
            data=np.zeros((starts, members), dtype=COUNTER_DTYPE),
            chunks=(1, members),
            attributes=counter_attrs(REDRAWS),
        )
        create_named_array(
            group,
            "stopped_lead",
            dims=("init_time", "member"),
            data=np.full((starts, members), -1, dtype=COUNTER_DTYPE),
            chunks=(1, members),
            attributes=counter_attrs(STOPPED.format("lead")),
        )
        return cls._seal(path, group, layout, config, attrs)  # type: ignore[return-value]

    def completed(self) -> np.ndarray:
        return self.group["completed"][:].astype(bool)

    def write_chains(
        self, chains: Sequence[Any], first: int, values: np.ndarray, states: Sequence[MemberState]
    ) -> None:
        """:class:`RolloutWriter`: chains are (start, member) pairs, start-major, with every lead of
        every member of their starts; starts already complete are left as they are."""
        members = self.group["member"].shape[0]
        completed = self.completed()
        for lo in range(0, len(chains), members):
            start = int(chains[lo][0])
            if not completed[start]:
                mine = states[lo : lo + members]
                self.write_start(
                    start,
                    values[lo : lo + members].swapaxes(0, 1),
                    np.array([s.redraws for s in mine]),
                    np.array([s.stopped_day for s in mine]),
                )

    def write_start(self, start: int, values: np.ndarray, redraws: np.ndarray, stopped_lead: np.ndarray) -> None:
        """Every lead and member of start ``start`` (physical units), then mark it complete."""
        self.group[self.variable][start] = values
        self.group["redraws"][start] = redraws
        self.group["stopped_lead"][start] = stopped_lead
        self.group["completed"][start] = 1

"""The stores `climdiff evaluate` compares: opened lazily, checked against one another.

A run is an emulation store (member, time, ...) or a forecast store (init_time, lead, member,
...); the reference is a training-data store (time, ...) or an emulation store. Every mismatch
that would make a comparison meaningless (variable, grid, calendar) is refused with one clear
message; differences in length and members are allowed and stated in the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from climdiff.errors import ClimdiffError, StoreError
from climdiff.finite import require_finite_field
from climdiff.zarr_io import EMULATION_KIND, FORECAST_KIND, TRAINING_KIND, open_dataset, require_store, store_meta

SPATIAL = (("y", "x"), ("lat", "lon"))


@dataclass
class Source:
    """One opened store: its field (lazy), what it is, and the facts the report states."""

    label: str
    path: Path
    kind: str
    field: xr.DataArray
    calendar: str

    @property
    def members(self) -> int:
        return int(self.field.sizes.get("member", 1))

    @property
    def days(self) -> int:
        return int(self.field.sizes.get("time", 0))

    @property
    def is_forecast(self) -> bool:
        return self.kind == FORECAST_KIND

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "path": str(self.path),
            "kind": self.kind,
            "members": self.members,
            "calendar": self.calendar,
        }
        if self.is_forecast:
            out.update(starts=int(self.field.sizes["init_time"]), leads=int(self.field.sizes["lead"]))
        else:
            out.update(
                days=self.days,
                first=str(self.field["time"].values[0])[:10],
                last=str(self.field["time"].values[-1])[:10],
            )
        return out


def spatial_dims(field: xr.DataArray) -> tuple[str, str]:
    for dims in SPATIAL:
        if all(d in field.dims for d in dims):
            return dims
    raise StoreError(f"{field.name} has no (y, x) or (lat, lon) dims: {field.dims}")


def open_source(path: Path, label: str, *, allowed: tuple[str, ...], split: str | None = None) -> Source:
    """Open ``path`` lazily; refuse what is not a complete climdiff store of an allowed kind."""
    path = Path(path)
    header = require_store(path, allowed)
    ds = open_dataset(path, chunks={}, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    meta = store_meta(ds.attrs)
    if header.kind == TRAINING_KIND:
        variable, calendar = meta["variable"], meta["calendar"]
    else:
        leading = ("member", "time") if header.kind == EMULATION_KIND else ("init_time", "lead", "member")
        variable = next((n for n, v in ds.data_vars.items() if v.dims[: len(leading)] == leading), None)
        calendar = ds["time" if header.kind == EMULATION_KIND else "init_time"].encoding.get("calendar", "standard")
    if variable not in ds.data_vars:
        held = ", ".join(sorted(map(str, ds.data_vars))) or "nothing"
        raise StoreError(f"{path} holds no field {variable or 'with dims ' + str(leading)} (it holds {held})")
    field = ds[variable]
    lo = 0
    if header.kind == TRAINING_KIND and split not in (None, "all"):
        if split not in meta["split"]:
            raise StoreError(f"{path} has no split {split!r} (it has {', '.join(meta['split'])})")
        lo, hi = meta["split"][split]
        field = field.isel(time=slice(lo, hi))
    spatial_dims(field)
    if any(size == 0 for size in field.sizes.values()):
        raise StoreError(f"{path} holds no data ({dict(field.sizes)})")
    if header.kind == TRAINING_KIND:  # training data is never NaN; a run's members may stop, so NaN there is data
        require_finite_field(field, f"{variable} in {path}", offset=lo)
    first = field.isel({field.dims[0 if header.kind == TRAINING_KIND else 1]: 0})
    if not bool(np.isfinite(first).any()):
        raise StoreError(f"{path} holds no finite values on its first day (did every member stop?)")
    return Source(label, path, header.kind, field, calendar)


def check_comparable(reference: Source, runs: list[Source]) -> None:
    """Refuse runs whose variable, grid or calendar differ from the reference's."""
    ref_dims = spatial_dims(reference.field)
    for run in runs:
        if run.field.name != reference.field.name:
            raise StoreError(f"{run.label} holds {run.field.name}, the reference {reference.field.name}")
        dims = spatial_dims(run.field)
        shape = tuple(run.field.sizes[d] for d in dims)
        ref_shape = tuple(reference.field.sizes[d] for d in ref_dims)
        if dims != ref_dims or shape != ref_shape:
            raise StoreError(f"{run.label} is on a {dims} grid of {shape}, the reference on {ref_dims} of {ref_shape}")
        if run.calendar != reference.calendar:
            raise StoreError(f"{run.label} uses the {run.calendar} calendar, the reference {reference.calendar}")


def check_block_days(block_days: int, sources: list[Source]) -> None:
    """Refuse bootstrap blocks longer than a time series they resample (forecasts resample starts)."""
    for source in sources:
        if not source.is_forecast and block_days > source.days:
            raise ClimdiffError(f"--block-days {block_days} is longer than {source.label} ({source.days} days)")

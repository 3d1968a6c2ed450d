"""A readable (or JSON) summary of an emulation or forecast store, for `climdiff info`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cftime
import xarray as xr

from climdiff.metadata import structured
from climdiff.rollout.writer import (
    EMULATION_KIND,
    FORECAST_KIND,
    MEAN_PERIODS,
    decode_state,
)
from climdiff.zarr_io import require_store, store_meta


def _dates(values: Any, attrs: dict[str, Any]) -> tuple[str, str]:
    first, last = cftime.num2date([values[0], values[-1]], attrs["units"], calendar=attrs["calendar"])
    return first.isoformat()[:10], last.isoformat()[:10]


def describe_rollout_store(path: Path) -> dict[str, Any]:
    """What a user asks first about a run: its shape, dates, settings, progress and events."""
    require_store(Path(path), (EMULATION_KIND, FORECAST_KIND), complete=False)
    ds = xr.open_zarr(str(path), consolidated=False, decode_times=False)
    meta = store_meta(ds.attrs)
    info: dict[str, Any] = {
        "path": str(path),
        "kind": meta["kind"],
        "complete": meta["complete"],
        "climdiff_version": meta["climdiff_version"],
        "members": int(ds.sizes["member"]),
        "grid": {dim: int(ds.sizes[dim]) for dim in ("y", "x", "lat", "lon") if dim in ds.sizes},
        "bundle_sha256": ds.attrs.get("bundle_sha256"),
        "guidance_lambda": ds.attrs.get("guidance_lambda"),
        "sampler_steps": structured(ds.attrs.get("sampler", "{}")).get("steps"),
        "sampler_solver": structured(ds.attrs.get("sampler", "{}")).get("solver", "heun"),
        "seed": ds.attrs.get("seed"),
        "redraws": int(ds["redraws"].values.sum()),
    }
    if meta["kind"] == EMULATION_KIND:
        field = next(v for v in ds.data_vars.values() if v.dims[:2] == ("member", "time"))
        frame = (1, *field.shape[2:])
        first, last = _dates(ds["time"].values, ds["time"].attrs)
        done = [decode_state(row, frame).days_done if row.any() else 0 for row in ds["resume_state"].values]
        info.update(
            days=int(ds.sizes["time"]),
            days_done=min(done),
            first=first,
            last=last,
            calendar=ds["time"].attrs["calendar"],
            stopped_members=int((ds["stopped_day"].values >= 0).sum()),
            means=[p for p in MEAN_PERIODS if f"time_{p}" in ds.dims],
        )
    else:
        first, last = _dates(ds["init_time"].values, ds["init_time"].attrs)
        info.update(
            starts=int(ds.sizes["init_time"]),
            leads=int(ds.sizes["lead"]),
            first_init=first,
            last_init=last,
            starts_done=int(ds["completed"].values.sum()),
            stopped_chains=int((ds["stopped_lead"].values >= 0).sum()),
            reference=ds.attrs.get("reference"),
        )
    return info

"""A readable (or JSON) summary of a training store: `climdiff data info`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cftime
import numpy as np

from climdiff.errors import StoreError
from climdiff.zarr_io import TRAINING_KIND, open_dataset, require_store, store_meta


def _date(value: float, units: str, calendar: str) -> str:
    return cftime.num2date(value, units, calendar=calendar).isoformat()


def describe_training_store(path: Path) -> dict[str, Any]:
    """Everything a user asks first about a store, as plain JSON-able values."""
    path = Path(path)
    header = require_store(path, complete=False)
    if header.kind != TRAINING_KIND:
        raise StoreError(f"{path} is a climdiff {header.kind} store, not training data; `climdiff info` describes it")
    # Times are decoded by hand: xarray cannot decode an empty cftime axis (a run in spin-up).
    ds = open_dataset(path, decode_times=False)
    meta = store_meta(ds.attrs)
    config = meta["config"]
    frames = int(ds.sizes["time"])
    info: dict[str, Any] = {
        "path": str(path),
        "kind": meta["kind"],
        "format_version": meta["format_version"],
        "climdiff_version": meta["climdiff_version"],
        "complete": meta["complete"],
        "frames": frames,
        "frames_target": config.get("frames", config.get("days", frames)),
        "grid": {dim: int(ds.sizes[dim]) for dim in ("y", "x", "lat", "lon") if dim in ds.sizes},
        "config": config,
    }
    if frames:
        times = ds["time"]
        units, calendar = times.attrs["units"], times.attrs["calendar"]
        info["time"] = {
            "first": _date(times.values[0], units, calendar),
            "last": _date(times.values[-1], units, calendar),
            "calendar": calendar,
        }
    for key in ("variable", "split", "stats"):
        if key in meta:
            info[key] = meta[key]
    if frames and "injection" in ds:
        injection = ds["injection"].values
        residual = ds["budget_residual"].values
        eps = float(config["solver"]["eps"])
        se = float(np.std(injection, ddof=1) / math.sqrt(frames)) if frames > 1 else float("nan")
        info["energy_budget"] = {
            "eps": eps,
            "injection_mean": float(injection.mean()),
            "injection_standard_error": se,
            "mean_abs_residual": float(np.abs(residual).mean()),
            "mean_abs_residual_over_eps": float(np.abs(residual).mean() / eps),
            "energy_mean": float(ds["energy"].values.mean()),
        }
    if frames and "precipitation_mean" in ds:
        info["water_budget"] = {
            "evaporation_mean": float(ds["evaporation_mean"].values.mean()),
            "precipitation_mean": float(ds["precipitation_mean"].values.mean()),
            "water_vapour_mean": float(ds["water_vapour_mean"].values.mean()),
            "max_abs_residual": float(np.abs(ds["budget_residual"].values).max()),
        }
    return info

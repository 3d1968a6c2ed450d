"""What every climdiff Zarr store shares: its header attribute, consolidation, named arrays.

Training stores (:mod:`climdiff.data.store`) and emulation stores
(:mod:`climdiff.rollout.writer`) both describe themselves in the group attribute ``climdiff``
(kind, configuration, completeness), keep consolidated metadata current for xarray, and name
their dimensions the way each Zarr format expects. The header is JSON text (format 2), so that
netCDF can hold it; stores written before hold it as a dict, which :func:`store_meta` reads too.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr
from zarr.errors import ZarrUserWarning

from climdiff.errors import StoreError
from climdiff.metadata import json_text, netcdf_attrs, structured
from climdiff.resume import OutputHeader

STORE_ATTR = "climdiff"
# 2: every attribute netCDF-serialisable (the header as JSON text), int32 counters, units throughout
FORMAT_VERSION = 2
# The kinds of climdiff Zarr store, as their headers name them. They live here, beside the header
# they go in, so that readers (evaluate, info, export) need not import the code that writes them.
TRAINING_KIND = "training-data"
EMULATION_KIND = "emulation"
FORECAST_KIND = "forecast"


@contextmanager
def quiet_zarr() -> Iterator[None]:
    """Silence zarr's warnings that consolidated metadata is not in the v3 spec (xarray relies
    on it all the same) and that a climdiff resume file is not a Zarr node (it is ours)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ZarrUserWarning)
        yield


def open_dataset(path: Path, **kwargs: Any) -> xr.Dataset:
    """Open a store with xarray: from its consolidated metadata when there is one (fast), else from
    each array's own metadata, so a store copied or edited without it reads the same."""
    with quiet_zarr(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*consolidated metadata", category=RuntimeWarning)
        return xr.open_zarr(str(path), consolidated=None, **kwargs)


def consolidate(path: Path) -> None:
    """Rewrite the consolidated metadata (readers use it when present: it must not go stale)."""
    with quiet_zarr():
        zarr.consolidate_metadata(str(path))


def store_meta(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The climdiff header among a store's attributes (JSON text, or a dict in older stores)."""
    return dict(structured(attrs[STORE_ATTR]))


def store_attrs(attrs: Mapping[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    """A new store's group attributes: ``attrs`` as netCDF holds them, and the header."""
    return {**netcdf_attrs(attrs), STORE_ATTR: json_text({**header, "format_version": FORMAT_VERSION})}


def update_header(group: zarr.Group, **values: Any) -> None:
    """Merge ``values`` into the header of the store ``group`` (e.g. complete=True)."""
    group.attrs[STORE_ATTR] = json_text({**store_meta(group.attrs), **values})


def read_header(path: Path) -> OutputHeader | None:
    """What a climdiff store at ``path`` says about itself, or None if it is not one."""
    try:
        meta = store_meta(zarr.open_group(str(path), mode="r").attrs)
        return OutputHeader(kind=meta["kind"], config=meta["config"], complete=bool(meta["complete"]))
    except Exception:  # anything unreadable is "not a climdiff store", never a crash
        return None


def require_store(path: Path, kinds: tuple[str, ...] | None = None, *, complete: bool = True) -> OutputHeader:
    """The header of the climdiff store at ``path``; one clear :class:`StoreError` if it is missing,
    not a climdiff store, of another kind than ``kinds`` or (with ``complete``) unfinished."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path} does not exist")
    header = read_header(path)
    if header is None:
        raise StoreError(f"{path} is not a climdiff store")
    if kinds is not None and header.kind not in kinds:
        raise StoreError(f"{path} is a climdiff {header.kind} store, not {' or '.join(kinds)}")
    if complete and not header.complete:
        raise StoreError(
            f"{path} is an incomplete climdiff {header.kind} store; re-run the command that made it to finish it"
        )
    if header.complete:
        require_chunks(path)
    return header


def array_dims(array: zarr.Array) -> tuple[str, ...]:
    """The dimension names of an array in either Zarr format."""
    if array.metadata.zarr_format == 3:
        return tuple(array.metadata.dimension_names or ())
    return tuple(array.attrs.get("_ARRAY_DIMENSIONS", ()))


def _stored_keys(folder: Path) -> set[str]:
    """Every file below ``folder`` as a '/'-separated relative key: one directory listing, no data read."""
    keys: set[str] = set()
    for root, _, files in os.walk(folder):
        rel = Path(root).relative_to(folder).as_posix()
        keys.update(name if rel == "." else f"{rel}/{name}" for name in files)
    return keys


def _may_be_absent(
    chunk: tuple[slice, ...], dims: tuple[str, ...], stopped: list[tuple[tuple[str, ...], np.ndarray]]
) -> bool:
    """Whether a chunk of a NaN-filled rollout field may legitimately be unwritten: Zarr skips a chunk
    that is all fill value, which happens only after every member it covers stopped."""
    for stop_dims, values in stopped:
        if set(stop_dims) <= set(dims):
            covered = values[tuple(chunk[dims.index(d)] for d in stop_dims)]
            if covered.size and bool((covered >= 0).all()):
                return True
    return False


def missing_chunks(path: Path) -> list[tuple[str, dict[str, slice]]]:
    """The field chunks a complete store must hold but that are absent on disk, as (array, {dim: range}).

    Checked: the arrays with the store's largest number of dimensions (the field, and an emulation's
    calendar means). Other arrays may legitimately skip chunks that equal their fill value (e.g. a zero
    time coordinate), so only the field, which is never all fill value unless its members stopped
    (the ``stopped_*`` arrays say so), can be verified by listing files alone.
    """
    with quiet_zarr():
        group = zarr.open_group(str(path), mode="r")
        arrays = dict(group.arrays())
    if not arrays:
        return []
    most = max(array.ndim for array in arrays.values())
    stopped = [(array_dims(a), a[...]) for name, a in arrays.items() if name.startswith("stopped_")]
    missing = []
    for name, array in sorted(arrays.items()):
        if array.ndim != most:
            continue
        dims = array_dims(array)
        fill = array.fill_value
        nan_filled = fill is not None and array.dtype.kind == "f" and bool(np.isnan(fill))
        present = _stored_keys(Path(path) / name)
        for coords in itertools.product(*(range(n) for n in array.cdata_shape)):
            if array.metadata.encode_chunk_key(coords) in present:
                continue
            chunk = tuple(
                slice(c * size, min((c + 1) * size, n))
                for c, size, n in zip(coords, array.chunks, array.shape, strict=True)
            )
            if not (nan_filled and _may_be_absent(chunk, dims, stopped)):
                missing.append((name, dict(zip(dims, chunk, strict=True))))
    return missing


def require_chunks(path: Path) -> None:
    """Refuse a store whose field has chunks missing on disk (Zarr would read them as fill values)."""
    missing = missing_chunks(path)
    if missing:
        name, chunk = missing[0]
        where = ", ".join(f"{d} {s.start}..{s.stop - 1}" for d, s in chunk.items() if d not in ("y", "x", "lat", "lon"))
        raise StoreError(
            f"{path} is damaged: {len(missing)} chunk(s) of {name} are missing on disk, the first at {where}; "
            "re-make it with its command and --overwrite (or restore it from a copy)"
        )


def create_named_array(group: zarr.Group, name: str, *, dims: tuple[str, ...], **kwargs: Any) -> zarr.Array:
    """Create an array whose dimension names xarray reads, in the group's Zarr format (v3:
    ``dimension_names``; v2: the ``_ARRAY_DIMENSIONS`` attribute)."""
    attrs = dict(kwargs.pop("attributes", None) or {})
    if group.metadata.zarr_format == 3:
        return group.create_array(name, dimension_names=dims, attributes=attrs, **kwargs)
    # v2 readers take fill_value as _FillValue: a default of 0 would mask day 0 and member 0.
    kwargs.setdefault("fill_value", None)
    return group.create_array(name, attributes={**attrs, "_ARRAY_DIMENSIONS": list(dims)}, **kwargs)

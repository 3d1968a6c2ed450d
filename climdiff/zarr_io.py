"""What every climdiff Zarr store shares: its header attribute, consolidation, named arrays.

Training stores (:mod:`climdiff.data.store`) and emulation stores
(:mod:`climdiff.rollout.writer`) both describe themselves in the group attribute ``climdiff``
(kind, configuration, completeness), keep consolidated metadata current for xarray, and name
their dimensions the way each Zarr format expects. The header is JSON text (format 2), so that
netCDF can hold it; stores written before hold it as a dict, which :func:`store_meta` reads too.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
        raise StoreError(f"{path} is an incomplete climdiff {header.kind} store; re-run the command that made it to finish it")
    return header


def create_named_array(group: zarr.Group, name: str, *, dims: tuple[str, ...], **kwargs: Any) -> zarr.Array:
    """Create an array whose dimension names xarray reads, in the group's Zarr format (v3:
    ``dimension_names``; v2: the ``_ARRAY_DIMENSIONS`` attribute)."""
    attrs = dict(kwargs.pop("attributes", None) or {})
    if group.metadata.zarr_format == 3:
        return group.create_array(name, dimension_names=dims, attributes=attrs, **kwargs)
    # v2 readers take fill_value as _FillValue: a default of 0 would mask day 0 and member 0.
    kwargs.setdefault("fill_value", None)
    return group.create_array(name, attributes={**attrs, "_ARRAY_DIMENSIONS": list(dims)}, **kwargs)

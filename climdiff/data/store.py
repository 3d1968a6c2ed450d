"""Training-data stores: chunked Zarr groups that grow along time, with resume state.

Layout (Zarr format 3, one directory):

* arrays with a leading ``time`` dimension (the field, per-frame diagnostics, the time
  coordinates), grown by whole time chunks so every chunk file is written exactly once;
* coordinate arrays without a time dimension (``y``, ``x``, ``wavenumber``);
* the group attribute ``climdiff`` (JSON text): kind, format version, package version, the
  configuration that identifies the output (compared on resume), completeness and, once
  complete, the training statistics and split; every other attribute is netCDF-serialisable
  too (:mod:`climdiff.metadata`);
* ``climdiff-resume.npz``: the producer's state after the last committed frame, replaced
  atomically (write to a temporary file, then ``os.replace``).

Crash safety follows from the order of writes: data chunks, then consolidated metadata, then the
resume state. A kill at any point leaves a resume state that describes a prefix of what is on
disk; resuming truncates the arrays to that prefix and regenerates the rest, so no frame is lost
or duplicated. Zarr's local store writes each file atomically too.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from climdiff import __version__
from climdiff.atomic import atomic_write_bytes
from climdiff.zarr_io import (
    TRAINING_KIND,
    consolidate,
    create_named_array,
    open_dataset,
    quiet_zarr,
    require_store,
    store_attrs,
    store_meta,
    update_header,
)

STATE_FILE = "climdiff-resume.npz"


@dataclass(frozen=True)
class TimeVariable:
    """An array with a leading time dimension, e.g. the field or one diagnostic."""

    name: str
    dims: tuple[str, ...] = ()
    shape: tuple[int, ...] = ()
    dtype: str = "float32"
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Coordinate:
    """A fixed coordinate array (no time dimension)."""

    name: str
    values: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)
    dims: tuple[str, ...] = ()  # default: the coordinate's own name; bounds use e.g. ("lat", "bnds")


class AppendableStore:
    """A Zarr group whose time-dimensioned arrays grow together by whole chunks."""

    def __init__(self, path: Path, group: zarr.Group) -> None:
        self.path = path
        self.group = group

    @classmethod
    def create(
        cls,
        path: Path,
        *,
        kind: str,
        config: dict[str, Any],
        attrs: dict[str, Any],
        coords: list[Coordinate],
        variables: list[TimeVariable],
        time_chunk: int,
        meta: dict[str, Any] | None = None,
    ) -> AppendableStore:
        """Create an empty store (time length 0) holding the given layout.

        ``meta`` adds entries to the ``climdiff`` attribute (e.g. the grid description).
        """
        group = zarr.open_group(str(path), mode="w", zarr_format=3)
        for coord in coords:
            create_named_array(
                group,
                coord.name,
                dims=coord.dims or (coord.name,),
                data=np.asarray(coord.values),
                attributes=coord.attrs,
            )
        for var in variables:
            create_named_array(
                group,
                var.name,
                dims=("time", *var.dims),
                shape=(0, *var.shape),
                chunks=(time_chunk, *var.shape),
                dtype=var.dtype,
                fill_value=0,
                attributes=var.attrs,
            )
        header = {"kind": kind, "climdiff_version": __version__, "config": config, "complete": False, **(meta or {})}
        group.attrs.update(store_attrs(attrs, header))
        store = cls(path, group)
        store._consolidate()
        return store

    @classmethod
    def open(cls, path: Path) -> AppendableStore:
        """Open an existing store for appending."""
        return cls(path, zarr.open_group(str(path), mode="r+", use_consolidated=False))

    @property
    def meta(self) -> dict[str, Any]:
        return store_meta(self.group.attrs)

    def time_arrays(self) -> list[zarr.Array]:
        with quiet_zarr():
            members = list(self.group.arrays())
        names = [name for name, arr in members if arr.metadata.dimension_names[0] == "time"]
        return [self.group[name] for name in sorted(names)]

    def __len__(self) -> int:
        return min(arr.shape[0] for arr in self.time_arrays())

    def append(self, block: dict[str, np.ndarray]) -> None:
        """Append equal-length blocks to every time array (all of them must be given)."""
        arrays = {arr.basename: arr for arr in self.time_arrays()}
        if set(block) != set(arrays):
            raise ValueError(f"append needs exactly {sorted(arrays)}, got {sorted(block)}")
        lengths = {len(v) for v in block.values()}
        if len(lengths) != 1:
            raise ValueError("append blocks differ in length")
        (k,) = lengths
        start = len(self)
        for name, arr in arrays.items():
            arr.resize((start + k, *arr.shape[1:]))
            arr[start : start + k] = block[name]
        self._consolidate()

    def truncate(self, length: int) -> None:
        """Cut every time array back to ``length`` (drop frames past the committed state)."""
        for arr in self.time_arrays():
            if arr.shape[0] != length:
                arr.resize((length, *arr.shape[1:]))
        self._consolidate()

    def update_meta(self, **values: Any) -> None:
        """Merge ``values`` into the ``climdiff`` attribute (e.g. complete=True, stats)."""
        update_header(self.group, **values)
        self._consolidate()

    def _consolidate(self) -> None:
        consolidate(self.path)

    # --- resume state -------------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.path / STATE_FILE

    def save_state(self, state: dict[str, np.ndarray]) -> None:
        """Replace the resume state atomically."""
        buffer = io.BytesIO()
        np.savez(buffer, **state)
        atomic_write_bytes(self._state_path, buffer.getvalue())

    def load_state(self) -> dict[str, np.ndarray] | None:
        """The last committed resume state, or None before the first commit."""
        if not self._state_path.exists():
            return None
        with np.load(self._state_path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}

    def drop_state(self) -> None:
        """Remove the resume state once the output is complete (it is no longer needed)."""
        self._state_path.unlink(missing_ok=True)


def open_training_store(path: Path | str, *, require_complete: bool = True) -> xr.Dataset:
    """Open a climdiff training store lazily (dask), refusing anything else with a clear error."""
    require_store(Path(path), (TRAINING_KIND,), complete=require_complete)
    return open_dataset(Path(path), chunks={})

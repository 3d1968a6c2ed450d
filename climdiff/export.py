"""Export a climdiff Zarr store to CF netCDF (`climdiff export`).

Any complete climdiff store (emulation, forecast, training data) becomes a netCDF-4 file that
tools reading only netCDF understand:

* every data variable and coordinate with its CF attributes (units, standard_name, long_name,
  axis), the time axis encoded with its cftime calendar and units, ``Conventions = CF-1.10``;
* climdiff's internal bookkeeping is dropped: the binary per-member ``resume_state`` of
  emulation stores (the per-member ``redraws`` and ``stopped_day`` stay: they are provenance);
* the ``climdiff`` header attribute becomes the JSON string ``climdiff_header``; attributes
  follow :mod:`climdiff.metadata` (stores written before format 2 hold dicts and booleans:
  they are written as JSON text, plain lists of numbers as numeric arrays);
* 64-bit integers (stores before format 2) are written as int32 where the values fit, since
  CF 1.8 has no 64-bit type;
* float data gets ``_FillValue = NaN``; everything is zlib-compressed (level 4, shuffle) and
  fields are chunked one step by the full horizontal field.

The dataset stays dask-backed, so writing streams chunk by chunk (memory does not grow with the
store), and each file is written to a temporary name beside its final one and renamed when
complete, so an interrupted export never leaves a half-written file under the final name.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import dask
import numpy as np
import xarray as xr

from climdiff import __version__
from climdiff.atomic import atomic_write
from climdiff.errors import ClimdiffError
from climdiff.metadata import COUNTER_DTYPE, json_text, netcdf_attrs
from climdiff.resume import check_parent_writable
from climdiff.zarr_io import STORE_ATTR, quiet_zarr, require_store, store_meta

ENGINE = "netcdf4"
NETCDF_FORMAT = "NETCDF4"
CONVENTIONS = "CF-1.10"
HEADER_ATTR = "climdiff_header"
# climdiff-internal arrays that mean nothing outside climdiff (binary resume state).
INTERNAL_VARIABLES = ("resume_state",)
COMPRESSION = {"zlib": True, "complevel": 4, "shuffle": True}
SPLITS = ("none", "year")
# What a netCDF file begins with: classic/64-bit offset ("CDF") or netCDF-4 (HDF5).
NETCDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")


def export_netcdf(
    store: Path,
    out: Path,
    *,
    split: Literal["none", "year"] = "none",
    variables: list[str] | None = None,
    overwrite: bool = False,
    command: str = "",
    on_file: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Write the climdiff Zarr store ``store`` as CF netCDF to ``out``; return the files written.

    ``split="year"`` writes one file per calendar year, ``<stem>_<YYYY><suffix>`` beside
    ``out``. ``variables`` selects data variables (default: all but climdiff's internal ones).
    Existing files are refused unless ``overwrite`` (and then only netCDF files are replaced).
    ``command`` is recorded in the ``history`` attribute; ``on_file`` is called before each
    file is written (for progress messages).
    """
    store, out = Path(store), Path(out)
    if split not in SPLITS:
        raise ClimdiffError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    ds = open_store(store)
    ds = select_variables(ds, variables, store)
    ds = to_cf(ds, store, command)
    parts = split_by_year(ds, store) if split == "year" else [(None, ds)]
    targets = [(out if year is None else year_path(out, year), part) for year, part in parts]
    for path, _ in targets:
        check_target(path, store, overwrite)
    written = []
    for path, part in targets:
        if on_file is not None:
            on_file(path)
        write_netcdf(part, path)
        written.append(path)
    return written


def open_store(store: Path) -> xr.Dataset:
    """Open a complete climdiff store lazily (dask), with cftime dates; refuse anything else."""
    require_store(store)
    with quiet_zarr():
        return xr.open_zarr(
            str(store),
            chunks={},
            decode_times=xr.coders.CFDatetimeCoder(use_cftime=True),
            decode_timedelta=False,  # a lead time stays numbers with its units attribute
            drop_variables=list(INTERNAL_VARIABLES),
        )


def select_variables(ds: xr.Dataset, variables: Iterable[str] | None, store: Path) -> xr.Dataset:
    """Keep only the named data variables (with the coordinates they use); None keeps all."""
    if not variables:
        return ds
    names = list(dict.fromkeys(variables))
    unknown = [name for name in names if name not in ds.data_vars]
    if unknown:
        available = ", ".join(sorted(map(str, ds.data_vars)))
        raise ClimdiffError(f"unknown variable(s) in {store}: {', '.join(unknown)} (available: {available})")
    return ds[names]


def to_cf(ds: xr.Dataset, store: Path, command: str = "") -> xr.Dataset:
    """Attributes netCDF can hold (the header as JSON), CF conventions, a history line."""
    ds = ds.copy()
    attrs = dict(ds.attrs)
    if STORE_ATTR in attrs:
        attrs[HEADER_ATTR] = json_text(store_meta(attrs))
        del attrs[STORE_ATTR]
    clean = netcdf_attrs(attrs)
    clean["Conventions"] = CONVENTIONS
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{stamp}: {command or f'climdiff export {store}'} (climdiff {__version__})"
    previous = clean.get("history")
    clean["history"] = f"{line}\n{previous}" if isinstance(previous, str) and previous else line
    ds.attrs = clean
    for var in ds.variables.values():
        var.attrs = netcdf_attrs(var.attrs)
    return ds


def split_by_year(ds: xr.Dataset, store: Path) -> list[tuple[int, xr.Dataset]]:
    """One dataset per calendar year of the ``time`` axis, in time order."""
    if "time" not in ds.dims:
        dims = ", ".join(map(str, ds.dims))
        raise ClimdiffError(f"--split year needs a time dimension; {store} has dims: {dims}")
    years = np.asarray(ds["time"].dt.year.values)
    # calendar means (emulate --means) live on their own time axes: each file gets its year's
    means = [d for d in ds.dims if str(d).startswith("time_") and d in ds.coords]
    parts = []
    for year in dict.fromkeys(years.tolist()):  # first-seen order = time order
        index = np.flatnonzero(years == year)
        if np.array_equal(index, np.arange(index[0], index[-1] + 1)):
            part = ds.isel(time=slice(int(index[0]), int(index[-1]) + 1))
        else:
            part = ds.isel(time=index)
        for dim in means:
            part = part.isel({dim: np.flatnonzero(np.asarray(ds[dim].dt.year.values) == year)})
        parts.append((int(year), part))
    return parts


def year_path(out: Path, year: int) -> Path:
    """``dir/run.nc`` -> ``dir/run_0001.nc`` (a year has at least four digits)."""
    return out.with_name(f"{out.stem}_{year:04d}{out.suffix or '.nc'}")


def is_netcdf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return any(head.startswith(magic) for magic in NETCDF_MAGIC)


def check_target(path: Path, store: Path, overwrite: bool) -> None:
    """Refuse an output that exists (unless ``overwrite`` and it is a netCDF file), that lies
    inside the store, or whose folder is missing or read-only."""
    if path.absolute().resolve().is_relative_to(store.absolute().resolve()):
        raise ClimdiffError(f"cannot write {path} inside the store {store}; choose another output path")
    if path.exists() or path.is_symlink():
        if path.is_dir():
            raise ClimdiffError(f"{path} exists and is a directory; choose another output path")
        if not overwrite:
            raise ClimdiffError(f"{path} exists; use --overwrite to replace it")
        if not is_netcdf(path):
            raise ClimdiffError(f"{path} exists and is not a netCDF file; refusing to replace it")
    check_parent_writable(path)


def encoding_for(ds: xr.Dataset) -> dict[Hashable, dict[str, Any]]:
    """netCDF encoding of every variable: compression, chunks, fill values, time units."""
    encoding: dict[Hashable, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        enc: dict[str, Any] = {}
        dates = var.dtype.kind == "M" or (var.dtype.kind == "O" and " since " in str(var.encoding.get("units", "")))
        if var.ndim and (var.dtype.kind in "biufM" or dates):  # netCDF cannot compress strings
            enc.update(COMPRESSION)
        if var.ndim >= 3:  # a field: one step (and member, lead, ...) by the full horizontal field
            enc["chunksizes"] = (1,) * (var.ndim - 2) + tuple(var.shape[-2:])
        if var.dtype.kind == "f":
            enc["_FillValue"] = np.nan if name in ds.data_vars else None  # coordinates have none
        elif dates:
            # decoded dates: back to numbers in the store's units and calendar
            for key in ("units", "calendar"):
                if key in var.encoding:
                    enc[key] = var.encoding[key]
            enc["dtype"] = "float64"
            enc["_FillValue"] = None
        else:
            enc["_FillValue"] = None
            if var.dtype == np.int64 and fits_int32(var):
                enc["dtype"] = COUNTER_DTYPE
        encoding[name] = enc
    return encoding


def fits_int32(var: xr.Variable) -> bool:
    """Whether every value of the integer variable ``var`` fits in int32."""
    if not var.size:
        return True
    lo, hi = dask.compute(var.data.min(), var.data.max())
    info = np.iinfo(COUNTER_DTYPE)
    return info.min <= int(lo) and int(hi) <= info.max


def write_netcdf(ds: xr.Dataset, path: Path) -> None:
    """Stream ``ds`` into a netCDF-4 file, renamed to ``path`` only once complete."""
    encoding = encoding_for(ds)
    ds = ds.copy()
    for var in ds.variables.values():
        var.encoding = {}  # Zarr codecs and chunking mean nothing to netCDF

    def write(tmp: Path) -> None:
        ds.to_netcdf(tmp, mode="w", format=NETCDF_FORMAT, engine=ENGINE, encoding=encoding)

    atomic_write(path, write)

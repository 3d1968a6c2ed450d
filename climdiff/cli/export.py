"""`climdiff export`: a CF netCDF copy of a climdiff Zarr store, for tools that read only netCDF."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from dask.callbacks import Callback

from climdiff.cli.common import OutPath, Overwrite, Quiet, command_line
from climdiff.diskspace import human_size, reporting_full_disk
from climdiff.export import export_netcdf
from climdiff.progress import ProgressReporter


class Split(str, Enum):
    none = "none"
    year = "year"


class _WriteProgress(Callback):
    """Dask tasks done while a file is written, shown by the project's progress reporter (a
    bar on a terminal, plain lines in logs)."""

    def __init__(self) -> None:
        super().__init__()
        self.description = "writing"
        self._reporter: ProgressReporter | None = None

    def _start_state(self, dsk: Any, state: dict[str, Any]) -> None:
        total = sum(len(state[key]) for key in ("ready", "waiting", "running", "finished"))
        self._reporter = ProgressReporter(self.description, total, unit="chunk tasks").__enter__()

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if self._reporter is not None:
            self._reporter.advance(1)

    def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
        if self._reporter is not None:
            self._reporter.__exit__(None, None, None)
            self._reporter = None


def _size(paths: list[Path]) -> str:
    return human_size(sum(path.stat().st_size for path in paths))


def _store_bytes(store: Path) -> int:
    """What a store takes on disk: about what its zlib-compressed netCDF copy needs."""
    return sum(f.stat().st_size for f in Path(store).rglob("*") if f.is_file())


def export(
    store: Annotated[
        Path,
        typer.Argument(
            help="A climdiff Zarr store: an emulation, forecast or training-data store.", show_default=False
        ),
    ],
    out: OutPath,
    split: Annotated[
        Split,
        typer.Option(
            help="none: one file at --out; year: one file per calendar year, named STEM_YYYY.nc beside --out."
        ),
    ] = Split.none,
    variables: Annotated[
        list[str] | None,
        typer.Option(
            "--variables",
            "-v",
            metavar="NAMES",
            help="Data variables to export, comma-separated or repeated (default: all).",
            show_default=False,
        ),
    ] = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Export a complete climdiff store to CF netCDF-4 (zlib level 4, one step by the full field per chunk).

    Keeps every data variable and coordinate with its CF attributes, and the time axis in its cftime calendar and units.

    Drops the binary resume state of emulation stores; the store's climdiff header becomes the JSON attribute climdiff_header.

    Each file is written under a temporary name beside its final one and renamed when complete.
    """
    names = [name.strip() for item in variables or [] for name in item.split(",") if name.strip()] or None
    progress = _WriteProgress()

    def starting(path: Path) -> None:
        progress.description = f"writing {path.name}"

    options: dict[str, Any] = {
        "split": split.value,
        "variables": names,
        "overwrite": overwrite,
        "command": command_line(),
    }
    with reporting_full_disk(out, _store_bytes(store) if store.is_dir() else 0):
        if quiet:
            paths = export_netcdf(store, out, **options)
        else:
            with progress:
                paths = export_netcdf(store, out, **options, on_file=starting)
    if len(paths) == 1:
        typer.echo(f"wrote {paths[0]} ({_size(paths)}) from {store}")
    else:
        typer.echo(
            f"wrote {len(paths)} files {paths[0].name} .. {paths[-1].name} in {paths[0].parent} ({_size(paths)}) from {store}"
        )

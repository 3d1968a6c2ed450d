"""Time `climdiff data import` on an ERA5-like file: hourly precipitation in metres on rows on the poles.

Writes one synthetic NetCDF4 file laid out as the CDS delivers ERA5 (``valid_time``,
``latitude`` 90..-90 with rows on the poles, ``longitude`` 0..359.x, ``tp`` in m per hour, packed
as float32), then imports it to daily totals, optionally coarsened, and prints days per second,
source steps per second, the import's CPU time and the peak resident memory of the process.

    python benchmarks/importer.py --resolution 2.0 --days 369 --grid 4.0 --workdir /tmp/bench

The days run from 30 December 1999, so that the three splits (1999, 2000, 2001) each get days.

The import itself is what is timed, not writing the synthetic file.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import netCDF4
import numpy as np

from climdiff.data.importing.run import ImportRun, import_store


def write_era5_like(path: Path, resolution: float, days: int, seed: int = 0) -> int:
    """An hourly ERA5-like ``tp`` file whose first complete day is 1999-12-30; returns its steps."""
    n_lat, n_lon = round(180 / resolution) + 1, round(360 / resolution)
    steps = 24 * days
    rng = np.random.default_rng(seed)
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("valid_time", None)
        nc.createDimension("latitude", n_lat)
        nc.createDimension("longitude", n_lon)
        time_var = nc.createVariable("valid_time", "i8", ("valid_time",))
        time_var.units, time_var.calendar = "seconds since 1970-01-01", "proleptic_gregorian"
        first = (np.datetime64("1999-12-30T01:00") - np.datetime64("1970-01-01T00:00")) // np.timedelta64(1, "s")
        time_var[:] = first + 3600 * np.arange(steps)
        nc.createVariable("latitude", "f8", ("latitude",)).setncatts({"units": "degrees_north"})
        nc["latitude"][:] = np.linspace(90, -90, n_lat)
        nc.createVariable("longitude", "f8", ("longitude",)).setncatts({"units": "degrees_east"})
        nc["longitude"][:] = np.arange(n_lon) * resolution
        tp = nc.createVariable("tp", "f4", ("valid_time", "latitude", "longitude"), chunksizes=(24, n_lat, n_lon))
        tp.units = "m"
        for day in range(days):
            tp[24 * day : 24 * (day + 1)] = rng.gamma(0.2, 5e-4, (24, n_lat, n_lon)).astype(np.float32)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=float, default=2.0, help="source spacing in degrees")
    parser.add_argument("--days", type=int, default=369, help="at least 369 for three splits (2000 is a leap year)")
    parser.add_argument("--grid", type=float, default=None, help="--grid of the import (coarsening)")
    parser.add_argument("--workdir", type=Path, default=Path("bench-import"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    source = args.workdir / "era5_like.nc"
    steps = write_era5_like(source, args.resolution, args.days)
    run = ImportRun((str(source),), "tp", "1999", "2000", "2001", resolution=args.grid)
    t0, cpu0 = time.perf_counter(), time.process_time()
    import_store(args.workdir / "tp.zarr", run, overwrite=True, quiet=True)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print("| source | grid | days | wall s | CPU s | days/s | steps/s | peak RSS MiB | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.resolution:g} deg hourly, {source.stat().st_size / 2**20:.0f} MiB | {args.grid or 'as source'} | "
        f"{args.days} | {seconds:.1f} | {cpu:.1f} | {args.days / seconds:.2f} | {steps / seconds:.0f} | {peak:.0f} | "
        f"{os.getloadavg()[0]:.1f} |"
    )


if __name__ == "__main__":
    main()

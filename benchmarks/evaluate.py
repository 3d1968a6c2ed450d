"""Time and peak memory of `climdiff evaluate` on long synthetic emulation stores.

    python benchmarks/evaluate.py --years 10 100 --size 32

For each length, two emulation stores (one member, ``size`` x ``size``, noleap) are written with
climdiff's own writer: a run and a reference, both spatially white, AR(1) in time with
coefficient 0.9 (different seeds). `climdiff evaluate` then runs in a fresh process with
every family but calibration. The benchmark prints its wall time and its peak resident memory.
Memory should not grow with the length: the families reduce the stores lazily to block
summaries.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from climdiff.rollout.calendar import parse_date, time_units
from climdiff.rollout.writer import EmulationStore, MemberState, StoreLayout


def synthetic_store(path: Path, days: int, size: int, seed: int, chunk: int = 365) -> Path:
    rng = np.random.default_rng(seed)
    coords = {"y": np.arange(size, dtype=np.float64), "x": np.arange(size, dtype=np.float64)}
    layout = StoreLayout(
        variable="vorticity",
        variable_attrs={"units": "1"},
        calendar="noleap",
        coords=coords,
        coord_attrs={},
        frame_shape=(1, size, size),
    )
    store = EmulationStore.create(
        path,
        layout,
        config={"synthetic": seed},
        members=1,
        days=days,
        time_units=time_units(parse_date("0001-01-01", "noleap")),
        time_chunk=chunk,
        attrs={"Conventions": "CF-1.10"},
    )
    state = MemberState(torch.zeros(2, 1, size, size), torch.Generator())
    x = rng.standard_normal((size, size))
    for start in range(0, days, chunk):
        block = np.empty((min(chunk, days - start), size, size), dtype=np.float32)
        for i in range(len(block)):
            x = 0.9 * x + np.sqrt(1 - 0.81) * rng.standard_normal((size, size))
            block[i] = x
        state.days_done = start + len(block)
        store.write_block(0, start, block, state)
    store.finish()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"{'years':>6} {'days':>7} {'store MB':>9} {'wall s':>8} {'peak RSS MB':>12}")
    for years in args.years:
        with tempfile.TemporaryDirectory() as tmp:
            days = 365 * years
            run = synthetic_store(Path(tmp) / "run.zarr", days, args.size, seed=1)
            ref = synthetic_store(Path(tmp) / "ref.zarr", days, args.size, seed=2)
            megabytes = days * args.size**2 * 4 / 1e6
            t0 = time.perf_counter()
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "climdiff",
                    "evaluate",
                    str(run),
                    "--reference",
                    str(ref),
                    "--out",
                    str(Path(tmp) / "ev"),
                    "--threads",
                    str(args.threads),
                    "--quiet",
                ],
            )
            _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest so far
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode:
                raise SystemExit(f"evaluate failed with exit status {child.returncode}")
            wall = time.perf_counter() - t0
            peak = usage.ru_maxrss
            print(f"{years:6d} {days:7d} {megabytes:9.0f} {wall:8.1f} {peak / 1024:12.0f}")


if __name__ == "__main__":
    main()

"""Cost against quality of sampler settings for a bundle (default: the embedded model).

    python benchmarks/sampler_quality.py --reference ref32.zarr --days 300 \
        --config steps=20 --config steps=10,S_churn=0 --config steps=10,guidance_sigma_max=5

Each ``--config`` is a comma-separated list of SamplerConfig changes applied to the bundle's
settings. For each, one member is rolled out for ``--days`` days (one thread unless --threads)
and compared with the reference store's frames: seconds per simulated day, the projected wall
time of 100 years, the spatial standard deviation and the autocorrelation at lags 1, 5 and 20,
all next to the reference's values.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import xarray as xr

from climdiff.assets import embedded_bundle
from climdiff.bundle import load_bundle
from climdiff.evaluate.bias import mean_and_std
from climdiff.evaluate.temporal import autocorrelation
from climdiff.rollout.engine import EmulateConfig, emulate

LAGS = (1, 5, 20)


def parse_changes(text: str) -> dict[str, float | int | str | None]:
    """``steps=12,S_churn=0,solver=dpmpp_2m`` as SamplerConfig changes (``none`` for None)."""
    changes: dict[str, float | int | str | None] = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=")
        if value == "none":
            changes[key] = None
        else:
            changes[key] = value if key == "solver" else (int(value) if key == "steps" else float(value))
    return changes


def summary(field: xr.DataArray) -> str:
    """The numbers `climdiff evaluate` reports, from the same functions (without intervals)."""
    std = float(mean_and_std(field, field**2)[1])
    acf = autocorrelation(field, lags=LAGS).values
    return f"std {std:5.2f}  acf(1,5,20) " + " ".join(f"{a:5.2f}" for a in acf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--reference", type=Path, required=True, help="a store made by `climdiff data turbulence`")
    parser.add_argument("--days", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", action="append", default=[], help="e.g. steps=10,S_churn=0")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bundle = load_bundle(args.checkpoint or embedded_bundle())
    reference = xr.open_zarr(args.reference)
    name = bundle.meta["variable"]["name"]
    print(f"{'reference':44s} {'':>17s}  {summary(reference[name].isel(time=slice(0, 3000)))}")
    for text in args.config or [""]:
        sampler = bundle.sampler.replace(**parse_changes(text))
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            emulate(bundle, Path(tmp) / "run.zarr", EmulateConfig(days=args.days, sampler=sampler), quiet=True)
            per_day = (time.perf_counter() - t0) / args.days
            field = xr.open_zarr(Path(tmp) / "run.zarr")[name].isel(member=0).load()
        hours = per_day * 36500 / 3600
        print(f"{text or 'bundle settings':44s} {per_day:6.3f} s/day {hours:5.2f} h/100y  {summary(field)}")


if __name__ == "__main__":
    main()

"""Persistence per spatial scale: how much of each wavenumber's variance a run keeps from one day to the next.

    python benchmarks/scale_persistence.py run.zarr --reference data.zarr [--split test]

For a run on the doubly periodic square and a reference (a data store's split), per integer
wavenumber |k|: the power P(k) (``climdiff evaluate``'s radial convention: shell sums that add up
to the domain mean of f^2), the power of the day-to-day change P_d(k) (taken within each member),
and the one-day correlation 1 - P_d / (2 P), which for a stationary series equals the lag-1
autocorrelation of the wavenumber's coefficients (E|x_{n+1} - x_n|^2 = 2 P - 2 C).

Why: the whole-field numbers of ``climdiff evaluate`` (std, autocorrelation) say that a guided
emulator is overdispersed and forgets too fast, not at which scales. Here they split: a run can
keep the right one-day correlation where most of its variance sits and still change its large
scales far too fast, or pile variance up at the scales where the daily changes are largest.
Periodic grids only: on a lat-lon grid the scales would need spherical harmonics.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import xarray as xr

from climdiff.errors import ClimdiffError
from climdiff.evaluate.sources import open_source
from climdiff.evaluate.spectra import radial_power
from climdiff.zarr_io import EMULATION_KIND, TRAINING_KIND


def scale_persistence(field: xr.DataArray) -> xr.Dataset:
    """Power, day-to-day change power and one-day correlation per wavenumber of ``field``
    (([member,] time, y, x); the mean over days and members, skipping a stopped member's days)."""
    if set(field.dims[-2:]) != {"y", "x"}:
        raise SystemExit(f"error: a doubly periodic (y, x) field is needed, got dims {field.dims}")

    def mean_power(values: xr.DataArray) -> xr.DataArray:
        power = radial_power(values)
        return power.mean([d for d in power.dims if d != "wavenumber"]).compute()

    power = mean_power(field)
    change = mean_power(field.diff("time"))
    return xr.Dataset({"power": power, "change": change, "correlation": 1.0 - change / (2.0 * power)})


def report(run: xr.Dataset, reference: xr.Dataset, share: float = 1e-3) -> list[str]:
    """A table of the wavenumbers that carry at least ``share`` of the reference's variance."""
    carrying = reference["power"] >= share * float(reference["power"].sum())
    lines = [
        "| k | power ref | power run | ratio | 1-day corr. ref | 1-day corr. run | change ref | change run | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k in reference["wavenumber"].values[carrying.values]:
        r, g = reference.sel(wavenumber=k), run.sel(wavenumber=k)
        lines.append(
            f"| {k} | {float(r.power):.4g} | {float(g.power):.4g} | {float(g.power / r.power):.2f} "
            f"| {float(r.correlation):.3f} | {float(g.correlation):.3f} "
            f"| {float(r.change):.3g} | {float(g.change):.3g} | {float(g.change / r.change):.2f} |"
        )
    total = {name: (float(reference[name].sum()), float(run[name].sum())) for name in ("power", "change")}
    lines.append(
        f"| all | {total['power'][0]:.4g} | {total['power'][1]:.4g} | {total['power'][1] / total['power'][0]:.2f} "
        f"| | | {total['change'][0]:.3g} | {total['change'][1]:.3g} | {total['change'][1] / total['change'][0]:.2f} |"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="an emulation store (climdiff emulate)")
    parser.add_argument("--reference", type=Path, required=True, help="a data store (climdiff data)")
    parser.add_argument("--split", default="test", help="the reference's split (default: test)")
    args = parser.parse_args()
    try:
        run = open_source(args.run, "run", allowed=(EMULATION_KIND,)).field
        reference = open_source(args.reference, "reference", allowed=(TRAINING_KIND,), split=args.split).field
    except ClimdiffError as err:
        raise SystemExit(f"error: {err}") from None
    for line in report(scale_persistence(run), scale_persistence(reference)):
        print(line)


if __name__ == "__main__":
    main()

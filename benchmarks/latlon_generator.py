"""Time the lat-lon generator: seconds of compute per simulated year, and where a step's time goes.

    python benchmarks/latlon_generator.py --grids 32x64 64x128 --days 30 --threads 1

Runs ``--days`` model days (after ``--warmup`` days) of the moist barotropic model at each output
grid, exactly as `climdiff data latlon` does (steps, daily accumulation, coarsening), and prints a
markdown table: wall-clock and CPU seconds per simulated year, and the share of one step spent in
the three vorticity tendencies (SSP-RK3), the face fluxes and the water transport. CPU time is the
process's own (``time.process_time``): on a shared, oversubscribed machine it is what an idle
machine's wall clock would show, while the wall clock there includes waiting for a core.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch

from climdiff.data.moist_barotropic import YEAR_DAYS, MoistBarotropicConfig, MoistBarotropicModel, default_steps_per_day


def _clock(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    """(wall, cpu) seconds per call."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls


def benchmark(n_lat: int, n_lon: int, days: int, warmup: int, steps_per_day: int) -> dict[str, float]:
    config = MoistBarotropicConfig(n_lat=n_lat, n_lon=n_lon, steps_per_day=steps_per_day)
    model = MoistBarotropicModel(config)
    generator = torch.Generator().manual_seed(0)
    state = model.initial_state(generator, 0)

    def day(doy: int) -> None:
        forcing = model.seasonal_forcing(doy)
        total = torch.zeros_like(state["q"])
        for _ in range(steps_per_day):
            total += model.step(state, forcing, generator).precipitation
        model.coarsen(total)

    for d in range(warmup):
        day(d)
    counter = iter(range(warmup, warmup + days))
    wall, cpu = _clock(lambda: day(next(counter) % YEAR_DAYS), days)
    forcing = model.seasonal_forcing(0)
    zeta, chi, q = state["zeta"], state["chi"], state["q"]
    fluxes = model.face_fluxes(zeta, chi, forcing)
    parts = {
        "tendencies": 3 * _clock(lambda: model.vorticity_tendency(zeta, forcing.zeta_eq), 50)[1],
        "fluxes": _clock(lambda: model.face_fluxes(zeta, chi, forcing), 50)[1],
        "transport": _clock(lambda: model.advect(q, *fluxes), 50)[1],
    }
    step_cpu = cpu / steps_per_day
    return {
        "wall_per_year": wall * YEAR_DAYS,
        "cpu_per_year": cpu * YEAR_DAYS,
        "step_ms": step_cpu * 1e3,
        **{f"{name}_share": value / step_cpu for name, value in parts.items()},
        "truncation": config.truncation,
        "steps_per_day": steps_per_day,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", nargs="+", default=["32x64"], help="output grids NLATxNLON")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps-per-day", type=int, default=None, help="default: as `climdiff data latlon`")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), load average {os.getloadavg()[0]:.1f}")
    print(
        "| output grid | model | steps/day | s/year wall | s/year CPU | ms/step CPU | RK3 tendencies | fluxes "
        "| transport |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for text in args.grids:
        n_lat, n_lon = (int(v) for v in text.split("x"))
        r = benchmark(n_lat, n_lon, args.days, args.warmup, args.steps_per_day or default_steps_per_day(n_lat))
        print(
            f"| {n_lat}x{n_lon} | T{r['truncation']} on {2 * n_lat}x{2 * n_lon} | {r['steps_per_day']} | "
            f"{r['wall_per_year']:.1f} | "
            f"{r['cpu_per_year']:.1f} | {r['step_ms']:.2f} | {r['tendencies_share']:.0%} | {r['fluxes_share']:.0%} | "
            f"{r['transport_share']:.0%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

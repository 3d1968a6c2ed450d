"""Emulation performance of a bundle (default: the embedded model).

    python benchmarks/emulate.py --members 1 8 32 --days 5 --threads 2
    python benchmarks/emulate.py --memory-days 365 3650       # peak memory of whole runs
    python benchmarks/emulate.py --compare latlon32 turbulence32 --days 20   # embedded models side by side

Prints: seconds per simulated day (and per member-day) at each ensemble size; the guidance
overhead, time(lambda > 0) / time(lambda = 0) in one process, with the guidance run after the
IDM on the same thread and beside it on a thread of its own (what `climdiff emulate` does for
small calls when it has two cores; --threads is torch's intra-op count); the achieved FLOP/s of the network
calls against this machine's measured convolution peak; the writer's share of the run time; and
(with --memory-days) the peak resident memory of complete runs of those lengths, each in a
fresh process, which should not grow with the length.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from climdiff.assets import bundle_path, embedded_bundle
from climdiff.bundle import load_bundle
from climdiff.rollout.engine import EmulateConfig, emulate
from climdiff.rollout.writer import EmulationStore
from climdiff.sampling.edm import evaluation_sigmas, in_window


def run_seconds(
    bundle,
    members: int,
    days: int,
    guidance: float | None = None,  # noqa: ANN001
    concurrent: bool = False,
) -> tuple[float, float]:
    """(total seconds, seconds spent in the writer) of one run; ``concurrent`` runs the guidance
    on a thread of its own."""
    sampler = bundle.sampler if guidance is None else bundle.sampler.replace(guidance=guidance)
    writer_time = [0.0]
    original = EmulationStore.write_block

    def timed(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        t = time.perf_counter()
        original(self, *args, **kwargs)
        writer_time[0] += time.perf_counter() - t

    EmulationStore.write_block = timed  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = EmulateConfig(days=days, members=members, sampler=sampler, time_chunk=max(1, days // 2))
            t0 = time.perf_counter()
            emulate(bundle, Path(tmp) / "run.zarr", cfg, quiet=True, concurrent_guide=concurrent)
            return time.perf_counter() - t0, writer_time[0]
    finally:
        EmulationStore.write_block = original  # type: ignore[method-assign]


def conv_peak_flops(seconds: float = 2.0) -> float:
    """FLOP/s of a large 3x3 convolution, the best case for the networks' dominant kernel."""
    x, w = torch.randn(16, 64, 64, 64), torch.randn(64, 64, 3, 3)
    flops = 2 * 16 * 64 * 64 * 64 * 64 * 9
    torch.nn.functional.conv2d(x, w, padding=1)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.nn.functional.conv2d(x, w, padding=1)
        n += 1
    return flops * n / (time.perf_counter() - t0)


def _flops(fn) -> float:  # noqa: ANN001
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return float(counter.get_total_flops())


def day_flops(bundle, members: int) -> float:  # noqa: ANN001
    """FLOPs of one simulated day's network calls: an IDM call at each of the sampler's evaluation
    levels (2N - 1 for Heun, N for DPM-Solver++(2M)), and a discriminator pass at each of them inside
    the guidance window, each forward + backward counted as 3 forwards (the usual estimate; the FLOP
    counter cannot run inside autograd.grad)."""
    shape = (members, *bundle.initial_state.shape[1:])
    x, sigma = torch.zeros(shape), torch.ones(members)
    levels = evaluation_sigmas(bundle.sampler)
    total = len(levels) * _flops(lambda: bundle.models["idm"](x, sigma))
    guided = sum(in_window(level, bundle.sampler) for level in levels)
    if guided:
        cond = torch.zeros(members, 2 * shape[1], *shape[2:])
        total += guided * 3 * _flops(lambda: bundle.models["disc"](x, sigma, cond))
    return total


_MEASURE = """
import resource, sys
from climdiff.cli import main
sys.argv = ["climdiff", *sys.argv[1:]]
try:
    main()
finally:
    print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def peak_memory_mb(bundle_path: Path, days: int) -> float:
    """Peak resident memory of a complete run, measured inside its own process."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "emulate",
            "--checkpoint",
            str(bundle_path),
            "--days",
            str(days),
            "--out",
            str(Path(tmp) / "run.zarr"),
            "--quiet",
            "--threads",
            str(torch.get_num_threads()),
        ]
        done = subprocess.run([sys.executable, "-c", _MEASURE, *args], capture_output=True, text=True, check=True)
        kb = next(line.split()[1] for line in done.stderr.splitlines() if line.startswith("PEAK_KB"))
        return int(kb) / 1024.0


def compare_models(names: list[str], days: int) -> None:
    """Seconds per simulated day of one member of each model (embedded name or bundle path), run as
    `climdiff emulate` runs it on two cores (guidance beside the IDM), one after the other in this
    process."""
    rows = []
    for name in names:
        bundle = load_bundle(bundle_path(name))
        run_seconds(bundle, 1, 1, concurrent=True)  # warm-up: the traces
        seconds, _ = run_seconds(bundle, 1, days, concurrent=True)
        rows.append((name, math.prod(bundle.initial_state.shape[-2:]), seconds / days))
    _, base_points, base_day = rows[0]
    print("| model | grid points | s per day | 100 years (h) | per day vs first | per grid point vs first |")
    print("|---|---|---|---|---|---|")
    for name, points, per_day in rows:
        per_point = (per_day / points) / (base_day / base_points)
        print(
            f"| {name} | {points} | {per_day:.3f} | {per_day * 36500 / 3600:.2f} | {per_day / base_day:.2f} x "
            f"| {per_point:.2f} x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=None, help="bundle (default: the embedded model)")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-days", type=int, nargs="*", default=[])
    parser.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="MODEL",
        help="time models (embedded names or bundle paths) side by side",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.compare:
        torch.set_num_threads(1)  # one intra-op thread and the guidance beside it, as emulate runs small calls
        compare_models(args.compare, args.days)
        return
    path = args.bundle or embedded_bundle()
    bundle = load_bundle(path)
    print(f"torch {torch.__version__}, {args.threads} threads, load {os.getloadavg()[0]:.2f}; bundle {path}")
    print(f"sampler: {bundle.sampler.steps} {bundle.sampler.solver} steps, lambda {bundle.sampler.guidance}")
    run_seconds(bundle, 1, 1)  # warm-up
    peak = conv_peak_flops()
    print(f"\nconvolution peak: {peak / 1e9:.1f} GFLOP/s\n")
    print(
        "| members | s per day | s per member-day | 100 years of one member (h) | writer share | network GFLOP/s | of peak |"
    )
    print("|---|---|---|---|---|---|---|")
    for members in args.members:
        total, writer = run_seconds(bundle, members, args.days)
        per_day = total / args.days
        achieved = day_flops(bundle, members) / per_day
        print(
            f"| {members} | {per_day:.3f} | {per_day / members:.4f} | {per_day / members * 36500 / 3600:.2f} | "
            f"{writer / total:.1%} | {achieved / 1e9:.2f} | {achieved / peak:.1%} |"
        )
    guided, _ = run_seconds(bundle, 1, args.days)
    beside, _ = run_seconds(bundle, 1, args.days, concurrent=True)
    plain, _ = run_seconds(bundle, 1, args.days, guidance=0.0)
    print(
        f"\nguidance overhead (1 member): {guided / plain:.2f} x the unguided time on one thread, "
        f"{beside / plain:.2f} x with the guidance on a thread of its own ({beside / args.days:.3f} s per day)"
    )
    for days in args.memory_days:
        print(f"peak memory, {days}-day run: {peak_memory_mb(path, days):.0f} MB")


if __name__ == "__main__":
    main()

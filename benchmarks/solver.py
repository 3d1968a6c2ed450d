"""Time one forced step of the 2-D turbulence solver against its FFT floor.

A forced step (what data generation does) is one forcing draw (CPU noise, one float64 ``rfft2``
of ``(n, n)``) plus one ETDRK4 step (four nonlinear evaluations, each one batched ``irfft2``
of ``(3, n, n//2+1)`` and one batched ``rfft2`` of ``(2, n, n)``). The FFT floor times exactly
those transforms alone; ``step / floor`` says how much the pointwise work, Python overhead and
kernel launches add on top of the transforms that cannot be avoided.

    python benchmarks/solver.py --sizes 64 128 256 --steps 200 --device cpu --threads 2

Prints a markdown table. Timings are medians over ``--repeats`` blocks of ``--steps`` calls, the
blocks of step and floor interleaved; the ratio is the median of the per-block ratios. On a shared
machine check the printed load average: oversubscribed OpenMP threads make everything slower.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from climdiff.data.navier_stokes import ForcedTurbulence, TurbulenceConfig

EVALUATIONS_PER_STEP = 4  # ETDRK4 stages


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds_per_call(fn: Callable[[], None], calls: int, device: torch.device) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / calls


def benchmark(size: int, device: torch.device, dtype: torch.dtype, steps: int, repeats: int) -> dict[str, float]:
    solver = ForcedTurbulence(TurbulenceConfig(size=size), device=device, dtype=dtype)
    generator = torch.Generator().manual_seed(0)
    state = {"zeta_hat": solver.initial_state(generator)}

    def forced_step() -> None:
        state["zeta_hat"], _ = solver.step(state["zeta_hat"], solver.draw_forcing(generator))

    zeta_hat, forcing = solver.initial_state(generator), solver.draw_forcing(generator)

    def step_only() -> None:
        # A fixed input: repeating one forcing on an evolving state would drive it to blow-up.
        solver.step(zeta_hat, forcing)

    grid = solver.grid
    spectral3 = torch.randn((3, size, size // 2 + 1), dtype=grid.cdtype, device=device)
    physical2 = torch.randn((2, size, size), dtype=grid.dtype, device=device)
    noise = torch.randn((size, size), dtype=torch.float64)

    def fft_floor() -> None:
        torch.fft.rfft2(noise)  # the forcing draw's transform (CPU, float64)
        for _ in range(EVALUATIONS_PER_STEP):
            grid.ifft(spectral3)
            grid.fft(physical2)

    timed = {"step": forced_step, "step_only": step_only, "floor": fft_floor}
    for fn in timed.values():  # warm-up (plans, allocator)
        _seconds_per_call(fn, max(3, steps // 10), device)
    # Interleaved blocks, so a change of machine load hits step and floor alike.
    samples: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(repeats):
        for name, fn in timed.items():
            samples[name].append(_seconds_per_call(fn, steps, device))
    result = {name: statistics.median(values) for name, values in samples.items()}
    result["ratio"] = statistics.median(
        step / floor for step, floor in zip(samples["step"], samples["floor"], strict=True)
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--steps", type=int, default=200, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks; the median is reported")
    parser.add_argument("--device", nargs="+", default=None, help="default: cpu, and cuda if available")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads on the CPU")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    dtype = getattr(torch, args.dtype)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"torch {torch.__version__}, {args.threads} CPU threads, {args.dtype}, "
        f"median of {args.repeats} interleaved blocks of {args.steps} steps; load average {load}\n"
    )
    print("| grid | device | forced step (ms) | step without draw (ms) | FFT floor (ms) | step / floor |")
    print("|---|---|---|---|---|---|")
    for device_name in devices:
        device = torch.device(device_name)
        for size in args.sizes:
            r = benchmark(size, device, dtype, args.steps, args.repeats)
            print(
                f"| {size}x{size} | {device_name} | {1e3 * r['step']:.3f} | {1e3 * r['step_only']:.3f} | "
                f"{1e3 * r['floor']:.3f} | {r['ratio']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

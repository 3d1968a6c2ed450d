"""Size and speed of climdiff's networks per preset: parameters, training-step and sampling cost.

For each preset and model kind (IDM, discriminator, VDM) it times, on CPU and on CUDA if present:

* train: one forward + backward of the training loss (EDM loss for IDM/VDM, binary cross-entropy
  on the logit for the discriminator), optimizer step excluded;
* sample: what one sampler evaluation costs - a no-grad denoiser call for IDM/VDM, and for the
  discriminator a forward pass plus the gradient of the logit w.r.t. the candidate (the guidance
  term).

and prints the cost ratios discriminator : IDM : VDM. Best of ``--repeats`` rounds after two
warm-up rounds, the operations taking turns within each round: on a shared machine the minimum is
the stable statistic (interference only ever adds time).

    python benchmarks/models.py --threads 2            # tiny and small
    python benchmarks/models.py --threads 2 --paper    # also the paper preset (slow on CPU)
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from climdiff.models import EDMLoss, build_model, config_for, count_parameters

RESOLUTION = {"tiny": 16, "small": 64, "paper": 256}
BATCH = {"tiny": 4, "small": 8, "paper": 1}
KINDS = ("disc", "idm", "vdm")
Step = Callable[[], None]
Key = tuple[str, str]  # (model kind, "train" | "sample")


def workloads(kind: str, preset: str, res: int, batch: int, device: torch.device) -> tuple[int, dict[str, Step]]:
    """Parameter count and the two timed operations ("train", "sample") of one model."""
    torch.manual_seed(0)
    model = build_model(kind, config_for(kind, preset)).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, 1, res, res, device=device, generator=gen)
    cond = torch.randn(batch, 2, res, res, device=device, generator=gen)
    sigma = torch.full((batch,), 0.5, device=device)
    loss_fn = EDMLoss(sigma_data=1.0)
    labels = (torch.arange(batch, device=device) % 2).float()

    def train() -> None:
        model.train()
        model.zero_grad(set_to_none=True)
        if kind == "disc":
            loss = F.binary_cross_entropy_with_logits(model(x, sigma, cond), labels)
        else:
            loss = loss_fn(model, x, cond if kind == "vdm" else None, generator=gen).mean()
        loss.backward()

    def sample() -> None:
        model.eval()
        if kind == "disc":
            candidate = x.detach().requires_grad_(True)
            torch.autograd.grad(model(candidate, sigma, cond).sum(), candidate)
        else:
            with torch.no_grad():
                model(x, sigma, cond if kind == "vdm" else None)

    return count_parameters(model), {"train": train, "sample": sample}


def best_seconds(steps: dict[Key, Step], repeats: int, device: torch.device) -> dict[Key, float]:
    """Shortest wall time of each step over ``repeats`` rounds, after two warm-up rounds. The steps
    take turns within a round, so a burst of load from other processes hits all of them alike."""

    def timed(fn: Step) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    best = {name: float("inf") for name in steps}
    for round_ in range(repeats + 2):
        for name, fn in steps.items():
            t = timed(fn)
            if round_ >= 2:
                best[name] = min(best[name], t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--paper", action="store_true", help="also time the paper preset (batch 1)")
    parser.add_argument("--resolution", type=int, help="grid size for every preset (default: per preset)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    presets = ["tiny", "small"] + (["paper"] if args.paper else [])
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {args.threads} CPU threads, load average {os.getloadavg()[0]:.2f}")
    header = (
        f"{'device':6} {'preset':6} {'grid':>7} {'batch':>5} {'model':5} {'params':>11} {'train s':>9} {'sample s':>9}"
    )
    print(header)
    print("-" * len(header))
    ratios = []
    for device in devices:
        for preset in presets:
            res = args.resolution or RESOLUTION[preset]
            batch = BATCH[preset]
            params: dict[str, int] = {}
            steps: dict[Key, Step] = {}
            for kind in KINDS:
                params[kind], ops = workloads(kind, preset, res, batch, device)
                steps.update({(kind, what): fn for what, fn in ops.items()})
            best = best_seconds(steps, args.repeats, device)
            results = {kind: {what: best[(kind, what)] for what in ("train", "sample")} for kind in KINDS}
            for kind, r in results.items():
                print(
                    f"{device.type:6} {preset:6} {f'{res}x{res}':>7} {batch:>5} {kind:5} "
                    f"{params[kind]:>11,} {r['train']:>9.4f} {r['sample']:>9.4f}"
                )
            ratios.append((device.type, preset, results))
    print("\ncost ratio disc : IDM : VDM (IDM = 1)")
    for device_type, preset, results in ratios:
        parts = [
            f"{what} " + " : ".join(f"{results[k][what] / results['idm'][what]:.2f}" for k in KINDS)
            for what in ("train", "sample")
        ]
        print(f"{device_type:6} {preset:6} " + "   ".join(parts))


if __name__ == "__main__":
    main()

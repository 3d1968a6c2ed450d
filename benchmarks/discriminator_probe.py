"""What a time-consistency discriminator tells apart: its logit for the true next day against
candidates that differ from it in known ways, at several noise levels.

    python benchmarks/discriminator_probe.py DISC --data STORE [--split test] [--days 256]
        [--sigmas 0.02,0.1,0.3,1,3] [--seed 0]

DISC is a bundle with a discriminator (a path or an embedded model's name) or a discriminator
checkpoint or training-run folder; STORE a training store of the same data. For ``--days`` days n
of the split (drawn by seed), the candidates for day n+1 given x^n and x^{n-1}, in model space:

* ``next``: the true next day x^{n+1} (the positives);
* ``copy``: x^n; ``offset 2``: x^{n+2} (the negatives training uses);
* ``2 x change``, ``0.5 x change``: x^n + k (x^{n+1} - x^n), the true change at the wrong size;
* ``another day's change``: x^n + (x^{m+1} - x^m) for a random other day m: a change of the right
  size and texture, unrelated to x^n;
* ``change moved``: x^n plus the true change rolled by a quarter of the grid in both axes: the
  right change in the wrong place;
* ``large scales 5 days on`` (periodic grids): the true next day with the large scales
  (wavenumbers up to 4, ``climdiff.data.windows.square_grid(...).large_scales``) of day n+6: a drift of five days
  in the scales the sampler sets first, at high noise.

Each is noised with the same noise at each level sigma, and the table gives its mean logit and the
ROC-AUC of the positives against it (1: always rated below the truth; 0.5: indistinguishable). A
discriminator that rates the last two like the truth judges the size of a day's change, not its
direction; at the noise levels where every AUC is near 0.5 it cannot guide.

The first line gives the correlation between consecutive one-day changes of the split: how much
of a day's change the previous change already tells (near 0 for changes driven by white-in-time
forcing, which no discriminator can predict).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from climdiff.assets import embedded_bundle
from climdiff.bundle import descriptions_agree, load_bundle, resolve_checkpoint
from climdiff.checkpoint import load_checkpoint
from climdiff.data.transforms import normalization_entry
from climdiff.data.windows import FrameSource, square_grid
from climdiff.train.tasks import roc_auc

Candidate = Callable[[dict[str, torch.Tensor]], torch.Tensor]

CANDIDATES: dict[str, Candidate] = {
    "copy": lambda d: d["x0"],
    "offset 2": lambda d: d["x2"],
    "2 x change": lambda d: d["x0"] + 2 * (d["x1"] - d["x0"]),
    "0.5 x change": lambda d: d["x0"] + 0.5 * (d["x1"] - d["x0"]),
    "another day's change": lambda d: d["x0"] + d["other_next"] - d["other"],
    "change moved": lambda d: d["x0"] + moved(d["x1"] - d["x0"]),
}
PERIODIC_CANDIDATES: dict[str, Candidate] = {
    "large scales 5 days on": lambda d: d["x1"] + d["large_drift"],
}


def moved(change: torch.Tensor) -> torch.Tensor:
    """The change rolled by a quarter of the grid in both axes."""
    h, w = change.shape[-2:]
    return change.roll((h // 4, w // 4), dims=(-2, -1))


def load_discriminator(source: str) -> tuple[nn.Module, dict]:
    """The discriminator of a bundle (path or embedded name), or of a checkpoint or run folder,
    and the normalization of the data it was trained on."""
    path = Path(source)
    if (path / "model.safetensors").exists() or path.suffix == ".safetensors":
        disc, header = load_checkpoint(resolve_checkpoint(path), "disc")
        return disc, header["normalization"]
    bundle = load_bundle(path if path.exists() else embedded_bundle(source))
    if "disc" not in bundle.models:
        raise SystemExit(f"{source} has no discriminator")
    return bundle.models["disc"].eval(), bundle.meta["normalization"]


def consecutive_change_correlation(source: FrameSource, pairs: int = 400) -> float:
    """Mean correlation over the split between the changes n-1 -> n and n -> n+1."""
    days = np.linspace(1, len(source) - 2, min(pairs, len(source) - 2)).astype(int)
    correlations = []
    for n in days:
        before, now, after = (f.double().flatten() for f in source.frames([n - 1, n, n + 1]))
        correlations.append(float(np.corrcoef(now - before, after - now)[0, 1]))
    return float(np.mean(correlations))


def probe(
    disc: nn.Module, source: FrameSource, days: int, sigmas: list[float], seed: int
) -> dict[float, dict[str, tuple[float, float]]]:
    """{sigma: {candidate: (mean logit, AUC of the positives against it)}}; ``next`` has AUC 0.5."""
    rng = np.random.default_rng(seed)
    n = rng.choice(np.arange(1, len(source) - 6), size=min(days, len(source) - 7), replace=False)
    other = rng.integers(0, len(source) - 2, size=n.size)
    other = np.where(other == n, (other + 1) % (len(source) - 2), other)

    def frames(index: np.ndarray) -> torch.Tensor:
        return source.frames(index.tolist())

    d = {"xm1": frames(n - 1), "x0": frames(n), "x1": frames(n + 1), "x2": frames(n + 2), "x6": frames(n + 6)}
    d |= {"other": frames(other), "other_next": frames(other + 1)}
    cond = torch.cat([d["x0"], d["xm1"]], dim=1)
    doy = source.year_fraction((n + 1).tolist()) if getattr(disc, "day_of_year", False) else None
    kinds = dict(CANDIDATES)
    if source.grid.get("kind") != "latlon":
        d["large_drift"] = square_grid(source).large_scales(d["x6"] - d["x1"], 4)
        kinds |= PERIODIC_CANDIDATES
    candidates = {"next": d["x1"], **{name: make(d) for name, make in kinds.items()}}
    generator = torch.Generator().manual_seed(seed)
    table = {}
    for sigma in sigmas:
        noise = torch.randn(d["x1"].shape, generator=generator)
        level = torch.full((n.size,), sigma)
        with torch.no_grad():
            logits = {k: disc(c + sigma * noise, level, cond, doy).double().numpy() for k, c in candidates.items()}
        positives = logits["next"]
        labels = np.r_[np.ones(n.size), np.zeros(n.size)] > 0.5
        table[sigma] = {k: (float(v.mean()), roc_auc(np.r_[positives, v], labels)) for k, v in logits.items()}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("disc", help="bundle (path or embedded name), or discriminator checkpoint or run folder")
    parser.add_argument("--data", type=Path, required=True, help="training store of the same data")
    parser.add_argument("--split", default="test")
    parser.add_argument("--days", type=int, default=256)
    parser.add_argument("--sigmas", default="0.02,0.1,0.3,1,3")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    disc, normalization = load_discriminator(args.disc)
    source = FrameSource(args.data, args.split)
    if not descriptions_agree(normalization_entry(source.transform, source.variable, source.stats), normalization):
        raise SystemExit(f"{args.data} is not the data {args.disc} was trained on (its normalization differs)")
    sigmas = [float(s) for s in args.sigmas.split(",")]
    print(f"correlation of consecutive one-day changes: {consecutive_change_correlation(source):+.3f}")
    table = probe(disc, source, args.days, sigmas, args.seed)
    names = list(next(iter(table.values())))
    print("| sigma | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for sigma, row in table.items():
        cells = [f"{row['next'][0]:+.2f}"] + [f"{row[k][0]:+.2f} ({row[k][1]:.2f})" for k in names[1:]]
        print(f"| {sigma:g} | " + " | ".join(cells) + " |")
    print("cells: mean logit (AUC of the true next day against the candidate)")


if __name__ == "__main__":
    main()

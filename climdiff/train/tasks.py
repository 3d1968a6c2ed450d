"""What each model learns from: datasets, per-sample losses and validation metrics.

All randomness of a training example (its noise level, noise, crop) comes from a generator
seeded by (run seed, step, position in the global batch). A sample's draw therefore does not
depend on how the batch is split across processes or on whether the run was resumed, which is
what makes resume exact and a DDP step equal to a single-process step on the full batch.

On a lat-lon grid the EDM loss of the IDM and the VDM weights every cell by its area
(``area_weighted``, on by default; see :func:`cell_weights`). The discriminator needs no such
weights: its loss is one binary cross-entropy per sample, not a sum over cells. With
``day_of_year`` each batch carries the year fraction of its target day (the day generated or
judged; :mod:`climdiff.data.seasons`), which every model kind then takes as a condition.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from climdiff.data.latlon import LatLonGrid
from climdiff.data.windows import (
    COPY_OFFSETS,
    FOREIGN_CHANGE,
    OTHER_LARGE_SCALES,
    ConsecutiveWindows,
    FrameSource,
    OffsetPairs,
)
from climdiff.errors import ClimdiffError
from climdiff.models.conditioning import conditioning
from climdiff.models.edm import EDMLoss, training_sigma
from climdiff.seeding import keyed_generator
from climdiff.train.config import TrainConfig

# Validation noise bands of the discriminator (sigma edges): from nearly clean to pure noise.
SIGMA_BANDS: tuple[tuple[float, float], ...] = ((0.002, 0.05), (0.05, 0.2), (0.2, 1.0), (1.0, 5.0), (5.0, 80.0))
# The sampler's smallest noise level (EDM), the floor of the widened discriminator distribution.
SIGMA_MIN = 0.002


# Independent random streams: training examples, validation loss, validation noise bands.
TRAIN_STREAM, VALIDATION_STREAM, BAND_STREAM = 0, 1, 2


def sample_generator(seed: int, step: int, position: int, stream: int = TRAIN_STREAM) -> torch.Generator:
    """A CPU generator for one example, independent of batch layout and resume."""
    return keyed_generator(seed, stream, step, position)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties half.

    Mann-Whitney U from average ranks; NaN if a class is missing.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    _, inverse, counts = np.unique(scores[order], return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = np.empty(len(scores))
    ranks[order] = average_rank[inverse]
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def cell_weights(grid: dict[str, Any]) -> torch.Tensor | None:
    """Per-cell loss weights of a grid: cos(latitude) normalised to mean 1, shape (n_lat, 1), on a
    lat-lon grid; None (every cell alike) on the periodic square, whose cells all have one area.

    Mean 1 keeps the loss on the scale of the unweighted one, so learning rates carry over.
    """
    if grid.get("kind") != "latlon":
        return None
    weights = np.cos(np.deg2rad(LatLonGrid.from_meta(grid).lat))
    return torch.from_numpy(weights / weights.mean()).to(torch.float32)[:, None]


@dataclass
class Batch:
    """A collated batch: the target/candidate, conditioning days (or None), labels, offsets, and
    the target day's year fraction (with day-of-year conditioning)."""

    target: torch.Tensor
    cond: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    offsets: torch.Tensor | None = None
    doy: torch.Tensor | None = None

    def to(self, device: torch.device) -> Batch:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Batch(move(self.target), move(self.cond), move(self.labels), move(self.offsets), move(self.doy))


class Task:
    """Shared machinery; subclasses say what an example is and how it is scored."""

    kind: str

    def __init__(self, config: TrainConfig, data: Path) -> None:
        self.config = config
        self.train_frames = FrameSource(data, "train")
        self.val_frames = FrameSource(data, "validation")
        self.train_set = self.make_dataset(self.train_frames)
        self.val_set = self.make_dataset(self.val_frames)

    def make_dataset(self, frames: FrameSource) -> Dataset:
        raise NotImplementedError

    def model_settings(self) -> dict[str, Any]:
        """Model configuration values that come from the data or the training settings (not from
        the preset)."""
        return {"day_of_year": True} if self.config.day_of_year else {}

    def set_epoch(self, epoch: int) -> None:
        """Vary epoch-dependent draws (the discriminator's negatives)."""

    def collate(self, items: Sequence[Any]) -> Batch:
        raise NotImplementedError

    def batch(self, split: str, indices: Sequence[int]) -> Batch:
        """The examples ``indices`` of the ``"train"`` or ``"validation"`` set, collated, with
        their target days' year fractions when the models are conditioned on the date."""
        frames, dataset = (self.train_frames, self.train_set) if split == "train" else (self.val_frames, self.val_set)
        batch = self.collate([dataset[i] for i in indices])
        if self.config.day_of_year:
            batch.doy = frames.year_fraction([dataset.target_frame(i) for i in indices])
        return batch

    def losses(self, model: nn.Module, batch: Batch, generators: Sequence[torch.Generator]) -> torch.Tensor:
        raise NotImplementedError

    def sigma(self, generator: torch.Generator) -> float:
        """Noise level of one example: ln sigma ~ N(P_mean, P_std^2) (EDM's training law)."""
        z = torch.randn((), generator=generator, dtype=torch.float64)
        return float(training_sigma(z, self.config.P_mean, self.config.P_std))

    def draw(
        self,
        clean: torch.Tensor,
        generators: Sequence[torch.Generator],
        sigma_law: Callable[[torch.Generator], float] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(sigma (B, 1, 1, 1), noise) with each example's draws from its own generator; sigma
        from ``sigma_law`` (default: the training law, :meth:`sigma`)."""
        sigmas = [(sigma_law or self.sigma)(g) for g in generators]
        noise = torch.stack([torch.randn(clean.shape[1:], generator=g) for g in generators]).to(clean)
        return torch.tensor(sigmas, dtype=clean.dtype, device=clean.device).view(-1, 1, 1, 1), noise

    def validation_batches(self, device: torch.device) -> list[tuple[range, Batch]]:
        """The fixed validation examples, collated once: (their indices, the batch)."""
        count = min(len(self.val_set), self.config.val_batches * self.config.batch_size)
        starts = range(0, count, self.config.batch_size)
        spans = [range(start, min(count, start + self.config.batch_size)) for start in starts]
        return [(idx, self.batch("validation", idx).to(device)) for idx in spans]

    @torch.no_grad()
    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """Loss on a fixed set of validation examples with fixed draws (comparable over time)."""
        return self.validation_loss(model, self.validation_batches(device))

    def validation_loss(self, model: nn.Module, batches: list[tuple[range, Batch]]) -> dict[str, float]:
        total, n = 0.0, 0
        for idx, batch in batches:
            generators = [sample_generator(self.config.seed, 0, i, VALIDATION_STREAM) for i in idx]
            total += float(self.losses(model, batch, generators).sum())
            n += len(idx)
        return {"val_loss": total / max(n, 1)}


class DiffusionTask(Task):
    """EDM denoising loss; the IDM on single frames, the VDM on windows of three."""

    def __init__(self, config: TrainConfig, data: Path) -> None:
        self.conditional = config.kind == "vdm"
        super().__init__(config, data)
        self.cell_weights = cell_weights(self.train_frames.grid) if config.area_weighted else None

    def make_dataset(self, frames: FrameSource) -> Dataset:
        return ConsecutiveWindows(frames, 3) if self.conditional else frames

    def collate(self, items: Sequence[torch.Tensor]) -> Batch:
        stacked = torch.stack(list(items))
        if not self.conditional:
            return Batch(stacked)
        return Batch(stacked[:, 2], conditioning(stacked[:, 0], stacked[:, 1]))

    def losses(self, model: nn.Module, batch: Batch, generators: Sequence[torch.Generator]) -> torch.Tensor:
        y = batch.target
        sigma, noise = self.draw(y, generators)
        loss = EDMLoss(model_sigma_data(model), self.config.P_mean, self.config.P_std, self.cell_weights)
        return loss.at(model, y, sigma, noise, batch.cond, batch.doy)


def model_sigma_data(model: nn.Module) -> float:
    """sigma_data of a (possibly DDP-wrapped) EDM model."""
    return float(getattr(model, "module", model).sigma_data)


class DiscriminatorTask(Task):
    """Binary cross-entropy: true next day (1) versus a real day at a wrong offset (0)."""

    def __init__(self, config: TrainConfig, data: Path) -> None:
        super().__init__(config, data)
        if config.crop is not None and self.train_frames.grid.get("kind") == "latlon":
            raise ClimdiffError(
                "random crops are periodic in both axes and would join the poles; train the discriminator "
                "on a lat-lon grid without --crop"
            )
        if config.large_scale_negatives > 0 and self.train_frames.grid.get("kind") == "latlon":
            raise ClimdiffError(
                "large-scale negatives take the large scales on the periodic square; train the discriminator "
                "on a lat-lon grid without --large-scale-negatives"
            )

    def make_dataset(self, frames: FrameSource) -> Dataset:
        cfg = self.config
        return OffsetPairs(
            frames,
            std=cfg.offset_std,
            seed=cfg.seed,
            negatives=cfg.negatives,
            foreign_changes=cfg.foreign_changes,
            large_scale_negatives=cfg.large_scale_negatives,
            large_scale_cutoff=cfg.large_scale_cutoff,
        )

    def model_settings(self) -> dict[str, Any]:
        return {**super().model_settings(), "tendency_scale": self.train_frames.change_std()}

    def set_epoch(self, epoch: int) -> None:
        self.train_set.set_epoch(epoch)

    def collate(self, items: Sequence[tuple[torch.Tensor, torch.Tensor, int]]) -> Batch:
        windows = torch.stack([w for w, _, _ in items])
        labels = torch.stack([label for _, label, _ in items])
        offsets = torch.tensor([offset for _, _, offset in items])
        return Batch(windows[:, 2], conditioning(windows[:, 0], windows[:, 1]), labels, offsets)

    def sigma(self, generator: torch.Generator) -> float:
        """EDM's law, or (with ``disc_sigma_max``) half of the draws log-uniform up to that level,
        so the discriminator also sees the sampler's largest noise levels."""
        widen = self.config.disc_sigma_max
        if widen is not None and float(torch.rand((), generator=generator, dtype=torch.float64)) < 0.5:
            u = float(torch.rand((), generator=generator, dtype=torch.float64))
            return math.exp(math.log(SIGMA_MIN) + u * (math.log(widen) - math.log(SIGMA_MIN)))
        return super().sigma(generator)

    def crop(self, batch: Batch, generators: Sequence[torch.Generator]) -> Batch:
        """Random periodic crops, the same window for the candidate and its conditioning days."""
        size = self.config.crop
        if size is None:
            return batch
        h, w = batch.target.shape[-2:]
        if size > min(h, w):
            return batch
        targets, conds = [], []
        for i, g in enumerate(generators):
            dy, dx = (int(v) for v in torch.randint(0, max(h, w), (2,), generator=g))
            roll = lambda t, dy=dy, dx=dx: t.roll((-dy % h, -dx % w), dims=(-2, -1))[..., :size, :size]  # noqa: E731
            targets.append(roll(batch.target[i]))
            conds.append(roll(batch.cond[i]))
        return Batch(torch.stack(targets), torch.stack(conds), batch.labels, batch.offsets, batch.doy)

    def logits(self, model: nn.Module, batch: Batch, generators: Sequence[torch.Generator]) -> torch.Tensor:
        batch = self.crop(batch, generators)
        sigma, noise = self.draw(batch.target, generators)
        return judge(model, batch, sigma, noise)

    def losses(self, model: nn.Module, batch: Batch, generators: Sequence[torch.Generator]) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(
            self.logits(model, batch, generators), batch.labels.float(), reduction="none"
        )

    @torch.no_grad()
    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """Loss at training noise, then accuracy and ROC-AUC per noise band, over all offsets and
        over the offsets other than 0 and -1 (which copy a conditioning day and are easy), and for
        each kind of made-up negative the AUC of the positives against those alone."""
        self.val_set.set_epoch(0)
        batches = self.validation_batches(device)
        metrics = self.validation_loss(model, batches)
        for lo, hi in SIGMA_BANDS:

            def band_law(g: torch.Generator, lo: float = lo, hi: float = hi) -> float:
                return math.exp(math.log(lo) + float(torch.rand((), generator=g)) * math.log(hi / lo))

            scores, labels, offsets = [], [], []
            for idx, batch in batches:
                generators = [sample_generator(self.config.seed, 0, i, BAND_STREAM) for i in idx]
                sigma, noise = self.draw(batch.target, generators, band_law)
                scores.append(judge(model, batch, sigma, noise).cpu().numpy())
                labels.append(batch.labels.cpu().numpy())
                offsets.append(batch.offsets.cpu().numpy())
            s, y, o = np.concatenate(scores), np.concatenate(labels) > 0.5, np.concatenate(offsets)
            hard = ~np.isin(o, COPY_OFFSETS)
            band = f"sigma_{lo:g}-{hi:g}"
            metrics[f"acc_{band}"] = float(((s > 0) == y).mean())
            metrics[f"auc_{band}"] = roc_auc(s, y)
            metrics[f"acc_hard_{band}"] = float(((s[hard] > 0) == y[hard]).mean())
            metrics[f"auc_hard_{band}"] = roc_auc(s[hard], y[hard])
            for name, made_up in (("foreign", FOREIGN_CHANGE), ("large_scales", OTHER_LARGE_SCALES)):
                if (o == made_up).any():  # the positives against this kind of made-up negative alone
                    pick = y | (o == made_up)
                    metrics[f"auc_{name}_{band}"] = roc_auc(s[pick], y[pick])
        return metrics


def judge(model: nn.Module, batch: Batch, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The discriminator's float32 logits for the batch's candidates noised at ``sigma``."""
    return model(batch.target + sigma * noise, sigma, batch.cond, batch.doy).float()


def make_task(config: TrainConfig, data: Path) -> Task:
    return DiscriminatorTask(config, data) if config.kind == "disc" else DiffusionTask(config, data)

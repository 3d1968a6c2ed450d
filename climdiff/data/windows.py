"""Training access to a store: transformed frames, consecutive windows and offset pairs.

* :class:`FrameSource` - one split's frames in model space, through the store's data transform
  (:mod:`climdiff.data.transforms`: standardised by default, log-min/max for precipitation) with
  the training statistics stored in the data (held in memory when they fit, read lazily from
  Zarr otherwise);
* :class:`ConsecutiveWindows` - ``(x^{n-1}, x^n, x^{n+1})`` stacks for the VDM;
* :class:`OffsetPairs` - the discriminator's examples: two clean conditioning days and a
  candidate that is the true next day (label 1) or a real day at a wrong offset ``l != 1``
  (label 0), classes balanced; optionally some negatives are made from real days (x^n plus
  another day's change; the true next day with another day's large scales).

Every item is a tensor of shape ``(frames, channels, H, W)``, oldest frame first. Each dataset
names the *target day* of an item (``target_frame``): the day the model generates or judges,
whose date day-of-year conditioning gives it (:meth:`FrameSource.year_fraction`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr
from torch.utils.data import Dataset

from climdiff.data.seasons import store_year_fraction
from climdiff.data.spectral import SpectralGrid
from climdiff.data.store import open_training_store
from climdiff.data.transforms import transform_from_header
from climdiff.errors import ClimdiffError
from climdiff.finite import require_finite
from climdiff.zarr_io import store_meta

DEFAULT_MEMORY_CAP = 4 * 2**30


class FrameSource(Dataset):
    """Frames of one split in model space (the store's transform, e.g. ``(x - mean) / std``), each (C, H, W)."""

    def __init__(self, path: Path | str, split: str = "train", *, memory_cap: int = DEFAULT_MEMORY_CAP) -> None:
        ds = open_training_store(path)
        meta: dict[str, Any] = store_meta(ds.attrs)
        if split not in meta["split"]:
            raise ClimdiffError(f"unknown split {split!r} (use one of {', '.join(meta['split'])})")
        self.path = Path(path)
        self.split = split
        self.variable: str = meta["variable"]
        self.units: str = meta["units"]
        self.calendar: str = meta["calendar"]
        self.grid: dict[str, Any] = meta["grid"]
        self.store_config: dict[str, Any] = {"kind": meta["kind"], **meta["config"]}
        self.start, self.stop = meta["split"][split]
        self.stats: dict[str, float] = {k: float(v) for k, v in meta["stats"][self.variable].items()}
        self.transform = transform_from_header(meta)
        field = ds[self.variable]
        self.shape = tuple(field.shape[1:])
        self.channels = 1 if field.ndim == 3 else int(field.shape[1])
        self._memory: np.ndarray | None = None
        self._lazy = zarr.open_array(str(self.path / self.variable), mode="r")
        nbytes = (self.stop - self.start) * int(np.prod(self.shape)) * 4
        if nbytes <= memory_cap:
            self._memory = self._standardise(self._lazy[self.start : self.stop], self.start)

    def _standardise(self, values: np.ndarray, index: int) -> np.ndarray:
        """Frames from time ``index`` on, in model space; non-finite data are refused, never trained on."""
        require_finite(values, f"{self.variable} in {self.path}", axis="time", offset=index)
        return self.transform.forward(values.astype(np.float32)).astype(np.float32)

    def __len__(self) -> int:
        return self.stop - self.start

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` of the split (0-based), in model space, shape (C, H, W)."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        if self._memory is not None:
            values = self._memory[index]
        else:
            at = self.start + index
            values = self._standardise(self._lazy[at : at + 1], at)[0]
        return values[None] if values.ndim == 2 else values

    def frames(self, indices: list[int]) -> torch.Tensor:
        """Frames at ``indices`` stacked to (len(indices), C, H, W)."""
        return torch.from_numpy(np.stack([self.frame(i) for i in indices]))

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.frame(index))

    def target_frame(self, index: int) -> int:
        """The day item ``index`` is: itself."""
        return index

    @functools.cached_property
    def _year_fractions(self) -> np.ndarray:
        return store_year_fraction(self.path, self.start, self.stop)

    def year_fraction(self, indices: list[int]) -> torch.Tensor:
        """Year fractions (:mod:`climdiff.data.seasons`) of the split's frames ``indices``, float32."""
        return torch.from_numpy(self._year_fractions[indices].astype(np.float32))

    def destandardise(self, x: torch.Tensor) -> torch.Tensor:
        """Back to physical units."""
        return self.transform.inverse(x)

    def change_std(self, max_pairs: int = 2000) -> float:
        """Standard deviation of the one-day change x^{n+1} - x^n (model-space units).

        From at most ``max_pairs`` pairs evenly spread over the split (deterministic), which pins
        it to a few per cent; the discriminator uses it to scale its change inputs.
        """
        if len(self) < 2:
            raise ClimdiffError(f"the {self.split} split of {self.path} needs at least 2 frames")
        starts = np.unique(np.linspace(0, len(self) - 2, min(max_pairs, len(self) - 1)).round().astype(int))
        changes = [self.frame(int(n) + 1).astype(np.float64) - self.frame(int(n)) for n in starts]
        return float(np.sqrt(np.mean(np.square(changes))))


class ConsecutiveWindows(Dataset):
    """Windows of ``length`` consecutive frames; item ``i`` starts at frame ``i``."""

    def __init__(self, source: FrameSource, length: int = 3) -> None:
        if len(source) < length:
            raise ClimdiffError(
                f"the {source.split} split of {source.path} has {len(source)} frames; windows need at least {length}"
            )
        self.source = source
        self.length = length

    def __len__(self) -> int:
        return len(self.source) - self.length + 1

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.source.frames(list(range(index, index + self.length)))

    def target_frame(self, index: int) -> int:
        """The window's newest day (the one the VDM generates)."""
        return index + self.length - 1


# Offsets whose candidate is a copy of a conditioning day (x^n, x^{n-1}).
COPY_OFFSETS = (0, -1)
# Which wrong offsets ``l`` the discriminator's negatives may have: every one; every one but the
# copies of a conditioning day; only later days (l >= 2).
NEGATIVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "all": lambda offsets: offsets != 1,
    "no-copies": lambda offsets: ~np.isin(offsets, (1, *COPY_OFFSETS)),
    "later": lambda offsets: offsets >= 2,
}


# The offsets reported for negatives that are no real day (:class:`OffsetPairs`): x^n plus the
# one-day change of another day (``foreign_changes``), and the true next day with the large scales of
# a day up to LARGE_SCALE_SHIFT days away (``large_scale_negatives``). Far outside any split.
FOREIGN_CHANGE = -(2**31)
OTHER_LARGE_SCALES = -(2**31) + 1
LARGE_SCALE_SHIFT = 10


def require_negatives(negatives: str) -> None:
    """Refuse an unknown kind of negatives in one line."""
    if negatives not in NEGATIVES:
        raise ClimdiffError(f"unknown kind of negatives {negatives!r} (use {', '.join(NEGATIVES)})")


def require_synthetic_negatives(foreign_changes: float, large_scale_negatives: float, cutoff: int) -> None:
    """Refuse fractions of made-up negatives outside [0, 1], together above 1, or a cutoff below 1."""
    for name, fraction in (("foreign_changes", foreign_changes), ("large_scale_negatives", large_scale_negatives)):
        if not 0 <= fraction <= 1:
            raise ClimdiffError(f"{name} is a fraction of the negatives, 0 to 1; got {fraction}")
    if foreign_changes + large_scale_negatives > 1:
        raise ClimdiffError("foreign_changes and large_scale_negatives are parts of the negatives: together at most 1")
    if cutoff < 1:
        raise ClimdiffError(f"large_scale_cutoff is a wavenumber, at least 1; got {cutoff}")


def square_grid(source: FrameSource) -> SpectralGrid:
    """The Fourier grid of a split's periodic square frames (float32, as the frames)."""
    h, w = source.frame(0).shape[-2:]
    if h != w:
        raise ClimdiffError(f"large-scale negatives need square periodic frames, got {h} x {w}")
    return SpectralGrid(w, dtype=torch.float32)


def allowed_offsets(n: int, length: int, std: float, negatives: str) -> np.ndarray:
    """The wrong offsets ``l`` of the kind ``negatives`` within reach of the normal around 1 and
    with ``n + l`` inside a split of ``length`` days (possibly none near its end)."""
    require_negatives(negatives)
    reach = int(math.ceil(8 * std)) + 1
    offsets = np.arange(max(-n, 1 - reach), min(length - 1 - n, 1 + reach) + 1)
    return offsets[NEGATIVES[negatives](offsets)]


def offset_distribution(n: int, length: int, std: float, negatives: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Allowed wrong offsets ``l`` for conditioning day ``n`` and their probabilities.

    ``l`` is a normal around 1 with standard deviation ``std``, rounded to an integer,
    conditioned on being one of the ``negatives`` (:data:`NEGATIVES`) and on ``n + l`` lying
    inside the split. Conditioning is what "redraw until valid" gives, computed exactly so
    sampling is bounded and reproducible.
    """
    offsets = allowed_offsets(n, length, std, negatives)
    if offsets.size == 0:
        raise ClimdiffError(f"no day of the split can be a {negatives!r} negative for day {n}")
    cdf = np.vectorize(lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2))))
    probs = cdf((offsets - 0.5) / std) - cdf((offsets - 1.5) / std)
    return offsets, probs / probs.sum()


class OffsetPairs(Dataset):
    """Discriminator examples ``(x^{n-1}, x^n, candidate)`` with a label.

    Item ``2j`` is a positive (candidate = x^{n+1}) and item ``2j+1`` a negative
    (candidate = x^{n+l}, ``l`` from :func:`offset_distribution`) for ``n = j + 1``, so classes
    are exactly balanced. Negatives are drawn from a generator seeded by (seed, epoch, index):
    reproducible whatever the number of loader workers; :meth:`set_epoch` varies them per epoch.
    ``negatives`` limits the wrong offsets (:data:`NEGATIVES`, docs/training.md says why).

    Two kinds of negative are made from real days, each a fraction of the negatives (0, the
    default, draws exactly as earlier versions did). Why: every real day at a wrong offset lies on
    the trajectory through x^n, so its change from x^n differs from the true one mostly in size,
    and mostly in its small scales, which the sampler sets last. A discriminator trained on those
    alone judges the size of a day's change, not where it goes, and hardly sees the large scales
    drift at the noise levels where the sampler decides them (measured on the 32x32 turbulence
    default with ``benchmarks/discriminator_probe.py``; docs/benchmarks.md, which also says what
    they did to guided emulation: no reliable gain over the training-run spread):

    * ``foreign_changes``: x^n + (x^{m+1} - x^m) for another day m (offset :data:`FOREIGN_CHANGE`):
      a change of the right size and texture that does not follow from x^n;
    * ``large_scale_negatives``: the true next day with its large scales (wavenumbers up to
      ``large_scale_cutoff``, :meth:`SpectralGrid.large_scales`) replaced by those of the day k days away, 2 <= |k|
      <= :data:`LARGE_SCALE_SHIFT` (offset :data:`OTHER_LARGE_SCALES`): right in every detail
      except a large-scale drift of several days. Periodic square grids only.
    """

    def __init__(
        self,
        source: FrameSource,
        *,
        std: float = 2.0,
        seed: int = 0,
        negatives: str = "all",
        foreign_changes: float = 0.0,
        large_scale_negatives: float = 0.0,
        large_scale_cutoff: int = 4,
    ) -> None:
        require_negatives(negatives)
        if std <= 0:
            raise ClimdiffError(f"offset std must be positive, got {std}")
        require_synthetic_negatives(foreign_changes, large_scale_negatives, large_scale_cutoff)
        # conditioning days n = 1 .. last: each needs its true next day and a negative in the split
        self.last = len(source) - 2
        while self.last >= 1 and allowed_offsets(self.last, len(source), std, negatives).size == 0:
            self.last -= 1
        if self.last < 1:
            raise ClimdiffError(
                f"the {source.split} split of {source.path} has {len(source)} frames, too few for the "
                f"discriminator with {negatives} negatives (each day needs its next day and a negative)"
            )
        self.source = source
        self.std = std
        self.seed = seed
        self.negatives = negatives
        self.foreign_changes = foreign_changes
        self.large_scale_negatives = large_scale_negatives
        self.large_scale_cutoff = large_scale_cutoff
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @functools.cached_property
    def grid(self) -> SpectralGrid:
        """The Fourier grid of the large-scale negatives, built at the first one."""
        return square_grid(self.source)

    def __len__(self) -> int:
        return 2 * self.last

    def draw(self, index: int) -> tuple[int, int | None]:
        """Item ``index``'s candidate: its offset from x^n (1 for positives; :data:`FOREIGN_CHANGE`,
        :data:`OTHER_LARGE_SCALES` for the made-up negatives) and, for those, the other day they
        take a change or large scales from."""
        n = index // 2 + 1
        if index % 2 == 0:
            return 1, None
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.foreign_changes + self.large_scale_negatives > 0:
            u = rng.random()
            if u < self.foreign_changes:
                m = int(rng.integers(0, len(self.source) - 2))  # one of the changes m -> m+1 other than n -> n+1
                return FOREIGN_CHANGE, m + (m >= n)
            if u < self.foreign_changes + self.large_scale_negatives:
                shifts = [k for k in range(-LARGE_SCALE_SHIFT, LARGE_SCALE_SHIFT + 1) if abs(k) >= 2]
                days = [n + 1 + k for k in shifts if 0 <= n + 1 + k < len(self.source)]
                return OTHER_LARGE_SCALES, int(rng.choice(days))
        offsets, probs = offset_distribution(n, len(self.source), self.std, self.negatives)
        return int(rng.choice(offsets, p=probs)), None

    def offset(self, index: int) -> int:
        """The candidate's offset from x^n for item ``index`` (1 for positives)."""
        return self.draw(index)[0]

    def target_frame(self, index: int) -> int:
        """Day n + 1, the day the sampler would generate after x^n, for negatives too: the date
        must not tell a negative's candidate apart."""
        return index // 2 + 2

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        n = index // 2 + 1
        offset, other = self.draw(index)
        if offset == FOREIGN_CHANGE:
            days = self.source.frames([n - 1, n, other, other + 1])
            window = torch.stack([days[0], days[1], days[1] + days[3] - days[2]])
        elif offset == OTHER_LARGE_SCALES:
            days = self.source.frames([n - 1, n, n + 1, other])
            drift = self.grid.large_scales(days[3] - days[2], self.large_scale_cutoff)
            window = torch.stack([days[0], days[1], days[2] + drift])
        else:
            window = self.source.frames([n - 1, n, n + offset])
        label = torch.tensor(1.0 if offset == 1 else 0.0)
        return window, label, offset

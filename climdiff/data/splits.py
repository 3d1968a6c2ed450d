"""Train / validation / test split by time (contiguous blocks, in that order).

Splitting by time rather than at random keeps the splits' days from being near-copies of one
another (consecutive days are strongly correlated), so validation measures generalisation.
"""

from __future__ import annotations

import itertools
import re

import numpy as np

from climdiff.errors import ClimdiffError

SPLITS = ("train", "validation", "test")
_YEARS = re.compile(r"^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$")


def split_counts(frames: int, fractions: tuple[float, ...] | list[float], block: int = 1) -> dict[str, list[int]]:
    """Half-open index ranges ``[start, stop)`` of each split for ``frames`` frames.

    With ``block > 1`` and ``frames`` a whole number of blocks, the boundaries fall on whole blocks
    (whole years of daily data, so every split holds complete seasonal cycles).
    """
    if block > 1 and frames % block == 0:
        counts = split_counts(frames // block, fractions)
        return {name: [start * block, stop * block] for name, (start, stop) in counts.items()}
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ClimdiffError(
            f"--split needs three non-negative fractions summing to 1 (train,validation,test), got {list(fractions)}"
        )
    if fractions[0] == 0:
        raise ClimdiffError("--split: the training fraction must be positive")
    n_train = max(1, round(fractions[0] * frames))
    n_val = min(frames - n_train, round(fractions[1] * frames))
    bounds = [0, n_train, n_train + n_val, frames]
    return {name: [bounds[i], bounds[i + 1]] for i, name in enumerate(SPLITS)}


def parse_split(text: str) -> tuple[float, float, float]:
    """Parse ``"0.8,0.1,0.1"`` from the command line."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ClimdiffError(f"--split must be three numbers like 0.8,0.1,0.1, got {text!r}") from None
    if len(values) != 3:
        raise ClimdiffError(f"--split must be three numbers like 0.8,0.1,0.1, got {text!r}")
    return values  # type: ignore[return-value]


def parse_years(text: str, flag: str) -> tuple[int, int]:
    """``"1979-2000"`` (both years included) or ``"2005"`` from the command line."""
    match = _YEARS.match(text.strip())
    if not match or int(match[2] or match[1]) < int(match[1]):
        raise ClimdiffError(f"{flag} must be a year range like 1979-2000 or one year, got {text!r}")
    return int(match[1]), int(match[2] or match[1])


def year_splits(years: np.ndarray, ranges: dict[str, tuple[int, int]]) -> dict[str, list[int]]:
    """Half-open index ranges of each split from inclusive year ranges over days whose years are ``years``.

    Every split must hold at least one day and the splits must not overlap; days outside all of
    them stay in the store but in no split.
    """
    counts: dict[str, list[int]] = {}
    for name in SPLITS:
        first, last = ranges[name]
        inside = np.flatnonzero((years >= first) & (years <= last))
        if not inside.size:
            raise ClimdiffError(
                f"the {name} years {first}-{last} hold no imported day (the data cover {years[0]}-{years[-1]})"
            )
        counts[name] = [int(inside[0]), int(inside[-1]) + 1]
    spans = sorted(counts.values())
    if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
        raise ClimdiffError(f"the train, validation and test years overlap: {ranges}")
    return counts

"""Train / validation / test split by time (contiguous blocks, in that order).

Splitting by time rather than at random keeps the splits' days from being near-copies of one
another (consecutive days are strongly correlated), so validation measures generalisation.
"""

from __future__ import annotations

from climdiff.errors import ClimdiffError

SPLITS = ("train", "validation", "test")


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

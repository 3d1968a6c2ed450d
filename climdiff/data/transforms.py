"""Data transforms: physical units <-> the model space the networks see (DESIGN.md, "Data").

One object per kind, built from a store header (``transform`` entry plus the raw training
``stats``) or from the ``normalization`` entry that checkpoints and bundles carry, with
``forward``/``inverse`` for numpy arrays and torch tensors alike, so training, emulation and
forecasts apply the very same map:

* ``standardize`` (the default, and what a header without a ``transform`` entry means):
  x' = (x - mean) / std;
* ``log_minmax`` (precipitation): y = log(x + c) - log(c) = log1p(x / c), then min/max of y over
  the training split to [-1, 1]. The log map is monotonic, so y's training range follows from the
  raw ``stats`` min/max and a store needs nothing beyond them. The inverse goes through expm1
  (exact to float32 round-off, also for drizzle far below c) and clamps at 0, so emulated
  precipitation is never negative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from climdiff.errors import ClimdiffError

STANDARDIZE = "standardize"
LOG_MINMAX = "log_minmax"
PRECIPITATION_UNITS = "mm day-1"  # what every precipitation store holds, imported or generated
# The transform entry of precipitation stores: log(x + c) - log(c) with c = 0.1 mm/day, then min/max.
PRECIPITATION_OFFSET = {"name": LOG_MINMAX, "offset": 0.1, "offset_units": PRECIPITATION_UNITS}

Array = TypeVar("Array", np.ndarray, torch.Tensor)


@dataclass(frozen=True)
class Standardize:
    """x' = (x - mean) / std with the training statistics (the turbulence default, unchanged)."""

    mean: float
    std: float
    min: float | None = None
    max: float | None = None
    name: str = STANDARDIZE

    def forward(self, x: Array) -> Array:
        return (x - self.mean) / self.std

    def inverse(self, x: Array) -> Array:
        return x * self.std + self.mean

    def excursion(self) -> float:
        """Largest |value| of the training data in model space (five std without the range)."""
        if self.min is None or self.max is None:
            return 5.0
        return max(abs(self.min - self.mean), abs(self.max - self.mean)) / self.std

    def entry(self) -> dict[str, Any]:
        return {"name": self.name}


@dataclass(frozen=True)
class LogMinMax:
    """y = log1p(x / offset), then [y_min, y_max] of the training split to [-1, 1]."""

    offset: float
    offset_units: str
    min: float
    max: float
    name: str = LOG_MINMAX

    def __post_init__(self) -> None:
        if self.offset <= 0:
            raise ClimdiffError(f"the log transform's offset must be positive, got {self.offset}")
        if self.min < 0:
            raise ClimdiffError(f"log_minmax needs non-negative data, the training minimum is {self.min}")
        if not self.max > self.min:
            raise ClimdiffError(f"log_minmax needs a training range, got min {self.min} = max {self.max}")

    @property
    def _log_range(self) -> tuple[float, float]:
        return math.log1p(self.min / self.offset), math.log1p(self.max / self.offset)

    def forward(self, x: Array) -> Array:
        lo, hi = self._log_range
        y = _lib(x).log1p(_float64(x) / self.offset)
        return _like(x, 2.0 * (y - lo) / (hi - lo) - 1.0)

    def inverse(self, x: Array) -> Array:
        lo, hi = self._log_range
        y = (_float64(x) + 1.0) * (0.5 * (hi - lo)) + lo
        return _like(x, (self.offset * _lib(x).expm1(y)).clip(min=0.0))

    def excursion(self) -> float:
        return 1.0

    def entry(self) -> dict[str, Any]:
        return {"name": self.name, "offset": self.offset, "offset_units": self.offset_units}


Transform = Standardize | LogMinMax


def _lib(x: np.ndarray | torch.Tensor) -> Any:
    return torch if isinstance(x, torch.Tensor) else np


def _float64(x: Array) -> Array:
    """The log maps run in float64, so a float32 round trip loses nothing beyond float32 rounding."""
    return x.to(torch.float64) if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def _like(x: Array, y: Array) -> Array:
    if isinstance(x, torch.Tensor):
        return y.to(x.dtype if x.is_floating_point() else torch.float32)
    dtype = x.dtype if np.issubdtype(np.asarray(x).dtype, np.floating) else np.float32
    return np.asarray(y, dtype=dtype)


def build_transform(entry: dict[str, Any] | None, stats: dict[str, Any]) -> Transform:
    """The transform named by a header's ``transform`` entry (None: standardize) and raw ``stats``."""
    name = (entry or {}).get("name", STANDARDIZE)
    if name == STANDARDIZE:
        return Standardize(
            float(stats["mean"]),
            float(stats["std"]),
            float(stats["min"]) if "min" in stats else None,
            float(stats["max"]) if "max" in stats else None,
        )
    if name == LOG_MINMAX:
        settings = entry or {}
        return LogMinMax(
            float(settings["offset"]), str(settings.get("offset_units", "")), float(stats["min"]), float(stats["max"])
        )
    raise ClimdiffError(f"unknown data transform {name!r} (known: {STANDARDIZE}, {LOG_MINMAX})")


def transform_from_header(meta: dict[str, Any]) -> Transform:
    """The transform of a complete training store (its header: ``transform``, ``variable``, ``stats``)."""
    return build_transform(meta.get("transform"), meta["stats"][meta["variable"]])


def normalization_entry(transform: Transform, variable: str, stats: dict[str, float]) -> dict[str, Any]:
    """The ``normalization`` entry of checkpoints and bundles: the transform's name and settings plus the raw stats.

    For standardize it is exactly what checkpoints always held, so turbulence bundles are unchanged.
    """
    settings = {k: v for k, v in transform.entry().items() if k != "name"}
    return {"transform": transform.name, "variable": variable, **stats, **settings}


def transform_from_normalization(norm: dict[str, Any]) -> Transform:
    """Inverse of :func:`normalization_entry` (a missing transform name means standardize)."""
    entry = {
        "name": norm.get("transform", STANDARDIZE),
        **{k: norm[k] for k in ("offset", "offset_units") if k in norm},
    }
    return build_transform(entry, norm)


def describe(transform: Transform) -> str:
    """One line naming the transform, for output metadata, e.g. ``log_minmax(offset=0.1 mm day-1)``."""
    if isinstance(transform, LogMinMax):
        return f"{transform.name}(offset={transform.offset:g} {transform.offset_units})".replace(" )", ")")
    return transform.name

"""One check for non-finite numbers in inputs: a NaN or infinity in data, a reference, an initial
state or a setting is refused up front, naming what holds it and where, instead of turning into a
misleading loss, score or blow-up much later."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import xarray as xr

from climdiff.errors import ClimdiffError


def require_finite(values: np.ndarray | torch.Tensor, what: str, *, axis: str = "index", offset: int = 0) -> None:
    """Refuse ``values`` holding a NaN or infinity, naming ``what`` and the first bad position along
    the leading axis (called ``axis``, counted from ``offset``)."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.argwhere(bad.reshape(len(array), -1).any(axis=1))[0, 0]) if array.ndim else 0
        raise ClimdiffError(f"{what} holds non-finite values (NaN or infinity), the first at {axis} {offset + first}")


def require_finite_field(field: xr.DataArray, what: str, dim: str = "time", offset: int = 0) -> None:
    """:func:`require_finite` for a lazy field, reduced chunk by chunk (never loaded whole)."""
    others = [d for d in field.dims if d != dim]
    bad = (~np.isfinite(field)).any(dim=others).values
    require_finite(np.where(bad, np.nan, 0.0), what, axis=dim, offset=offset)


def require_finite_settings(settings: Any) -> None:
    """Refuse a dataclass of settings with a NaN or infinite number in it, naming the setting."""
    for name, value in vars(settings).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ClimdiffError(f"{name} must be a finite number, got {value}")

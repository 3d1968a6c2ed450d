"""The data transforms: standardize (turbulence, unchanged) and log_minmax (precipitation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from climdiff.data.transforms import (
    PRECIPITATION_OFFSET,
    LogMinMax,
    Standardize,
    build_transform,
    describe,
    normalization_entry,
    transform_from_header,
    transform_from_normalization,
)
from climdiff.errors import ClimdiffError

STATS = {"mean": 2.5, "std": 4.0, "min": 0.0, "max": 180.0}


def _precipitation(seed: int = 0, n: int = 20_000) -> np.ndarray:
    """Intermittent, heavy-tailed daily totals in mm/day: many dry cells, drizzle, extremes."""
    rng = np.random.default_rng(seed)
    wet = rng.random(n) < 0.6
    values = np.where(wet, rng.gamma(0.5, 6.0, n), 0.0)
    values[:5] = [0.0, 1e-6, 0.05, 0.1, 180.0]
    return values.astype(np.float32)


def test_log_minmax_maps_training_range_to_unit_interval_and_inverts_exactly() -> None:
    x = _precipitation()
    t = build_transform(PRECIPITATION_OFFSET, {**STATS, "min": float(x.min()), "max": float(x.max())})
    assert isinstance(t, LogMinMax)
    z = t.forward(x)
    assert z.dtype == np.float32
    assert z.min() == pytest.approx(-1.0, abs=1e-6) and z.max() == pytest.approx(1.0, abs=1e-6)
    # the definition: log(x + c) - log(c), then min/max to [-1, 1]
    y = np.log(x.astype(np.float64) + 0.1) - np.log(0.1)
    expected = 2 * (y - y.min()) / (y.max() - y.min()) - 1
    np.testing.assert_allclose(z, expected, atol=2e-7)
    back = t.inverse(z)
    assert back.dtype == np.float32 and (back >= 0).all()
    # exact to float32 round-off of z: a few ulps of x, also for drizzle far below c
    np.testing.assert_allclose(back, x, rtol=4e-6, atol=1e-7)


def test_log_minmax_numpy_and_torch_agree_and_inverse_never_negative() -> None:
    t = LogMinMax(0.1, "mm day-1", 0.0, 150.0)
    x = _precipitation(1)
    z_np = t.forward(x)
    z_torch = t.forward(torch.from_numpy(x))
    assert z_torch.dtype == torch.float32
    np.testing.assert_array_equal(z_torch.numpy(), z_np)
    # samples in model space below the training minimum (or anywhere) come back non-negative
    samples = torch.linspace(-3.0, 1.5, 1001)
    physical = t.inverse(samples)
    assert (physical >= 0).all() and physical.dtype == torch.float32
    assert float(physical[0]) == 0.0
    np.testing.assert_array_equal(physical.numpy(), t.inverse(samples.numpy()))


def test_standardize_is_the_old_formula_bit_for_bit() -> None:
    t = build_transform(None, STATS)  # no entry: old turbulence stores
    assert isinstance(t, Standardize)
    x = np.random.default_rng(2).normal(size=(3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(t.forward(x), (x - 2.5) / 4.0)
    xt = torch.from_numpy(x)
    assert torch.equal(t.forward(xt), (xt - 2.5) / 4.0)
    assert torch.equal(t.inverse(xt), xt * 4.0 + 2.5)
    assert t.excursion() == pytest.approx(max(2.5, 177.5) / 4.0)
    assert Standardize(0.0, 1.0).excursion() == 5.0


def test_normalization_entry_round_trips_and_keeps_the_turbulence_layout() -> None:
    standard = transform_from_header({"variable": "vorticity", "stats": {"vorticity": STATS}})
    entry = normalization_entry(standard, "vorticity", STATS)
    assert entry == {"transform": "standardize", "variable": "vorticity", **STATS}
    assert list(entry) == ["transform", "variable", "mean", "std", "min", "max"]  # as checkpoints always held it
    assert transform_from_normalization(entry) == standard

    header = {"variable": "precipitation", "stats": {"precipitation": STATS}, "transform": PRECIPITATION_OFFSET}
    log = transform_from_header(header)
    entry = normalization_entry(log, "precipitation", STATS)
    assert entry["transform"] == "log_minmax" and entry["offset"] == 0.1 and entry["offset_units"] == "mm day-1"
    assert transform_from_normalization(entry) == log
    assert describe(log) == "log_minmax(offset=0.1 mm day-1)"
    assert log.excursion() == 1.0


def test_bad_transforms_are_refused() -> None:
    with pytest.raises(ClimdiffError, match="unknown data transform"):
        build_transform({"name": "sqrt"}, STATS)
    with pytest.raises(ClimdiffError, match="non-negative"):
        build_transform(PRECIPITATION_OFFSET, {**STATS, "min": -1.0})
    with pytest.raises(ClimdiffError, match="range"):
        build_transform(PRECIPITATION_OFFSET, {**STATS, "min": 0.0, "max": 0.0})

"""Forecast mode of `climdiff emulate` (--init-from): starts, layout, determinism, resume, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
import zarr

from climdiff.bundle import load_bundle
from climdiff.data.transforms import transform_from_normalization
from climdiff.errors import ClimdiffError
from climdiff.rollout.engine import EmulateConfig
from climdiff.rollout.forecast import _initial_states, forecast, plan_forecast
from climdiff.zarr_io import store_meta, update_header


@pytest.fixture(scope="module")
def bundle(guided_bundle):
    return load_bundle(guided_bundle)


def rollout(bundle, **overrides) -> EmulateConfig:
    return EmulateConfig(**{"days": 3, "members": 2, "seed": 3, "sampler": bundle.sampler, **overrides})


@pytest.fixture(scope="module")
def four_starts(bundle, learning_store, tmp_path_factory):
    plan = plan_forecast(bundle, learning_store, rollout(bundle), starts=4, start_dates=None)
    out = tmp_path_factory.mktemp("fc") / "fc.zarr"
    return plan, forecast(bundle, learning_store, out, plan, quiet=True).path


def test_starts_lie_in_the_test_split_and_valid_times_follow_them(learning_store, four_starts) -> None:
    plan, path = four_starts
    reference = xr.open_zarr(learning_store)
    lo, hi = store_meta(reference.attrs)["split"]["test"]
    assert len(plan.init_indices) == 4 and all(lo + 1 <= i <= hi - 1 - 3 for i in plan.init_indices)
    assert plan.init_indices[0] == lo + 1 and plan.init_indices[-1] == hi - 4  # spread to both ends
    ds = xr.open_zarr(path)
    assert ds["vorticity"].dims == ("init_time", "lead", "member", "y", "x")
    assert ds["vorticity"].shape == (4, 3, 2, 32, 32)
    assert list(ds["lead"].values) == [1, 2, 3] and ds["lead"].attrs["standard_name"] == "forecast_period"
    assert list(ds["init_time"].values) == [reference["time"].values[i] for i in plan.init_indices]
    for s, i in enumerate(plan.init_indices):
        assert list(ds["valid_time"].values[s]) == list(reference["time"].values[i + 1 : i + 4])
    assert store_meta(ds.attrs)["complete"] is True and ds["completed"].values.all()
    values = ds["vorticity"].values
    assert np.isfinite(values).all() and not np.allclose(values[:, :, 0], values[:, :, 1])


def test_a_start_does_not_depend_on_the_other_starts_or_batching(bundle, learning_store, four_starts, tmp_path) -> None:
    plan, path = four_starts
    full = zarr.open_group(str(path))["vorticity"][:]
    one = plan_forecast(bundle, learning_store, rollout(bundle), starts=None, start_dates=[plan.init_dates[2]])
    alone = forecast(bundle, learning_store, tmp_path / "one.zarr", one, quiet=True).path
    # another batch layout: equal to float tolerance (bit-identical needs the same layout)
    np.testing.assert_allclose(zarr.open_group(str(alone))["vorticity"][0], full[2], rtol=1e-4, atol=1e-4)
    small = forecast(bundle, learning_store, tmp_path / "b1.zarr", plan, batch=1, quiet=True).path
    np.testing.assert_allclose(zarr.open_group(str(small))["vorticity"][:], full, rtol=1e-4, atol=1e-4)


def test_each_chain_starts_from_its_two_reference_days(bundle, learning_store, four_starts) -> None:
    plan, _ = four_starts
    reference = xr.open_zarr(learning_store)
    norm = bundle.meta["normalization"]
    states = _initial_states(reference, "vorticity", plan, [1, 3], transform_from_normalization(norm))
    assert len(states) == 2 * 2  # start-major: (start 1, members 0, 1), (start 3, members 0, 1)
    for k, start in enumerate([1, 1, 3, 3]):
        i = plan.init_indices[start]
        days = reference["vorticity"].values[i - 1 : i + 1]
        np.testing.assert_allclose(
            states[k].last[:, 0].numpy() * norm["std"] + norm["mean"], days, rtol=1e-5, atol=1e-5
        )
    # members of one start draw different noise; the same member of two starts too
    draws = [torch.randn(4, generator=s.generator) for s in states]
    assert len({tuple(d.tolist()) for d in draws}) == 4


def test_interrupted_forecast_redoes_only_unfinished_starts(bundle, learning_store, four_starts, tmp_path) -> None:
    plan, path = four_starts
    out = tmp_path / "resume.zarr"
    forecast(bundle, learning_store, out, plan, batch=4, quiet=True)  # groups of two starts
    group = zarr.open_group(str(out), mode="r+")
    # as after a kill while the second group was written: start 2 done, start 3 not
    group["vorticity"][3:] = np.nan
    group["completed"][3:] = 0
    update_header(group, complete=False)
    kept = group["vorticity"][2].copy()
    forecast(bundle, learning_store, out, plan, batch=4, quiet=True)
    resumed = zarr.open_group(str(out))["vorticity"][:]
    np.testing.assert_array_equal(resumed[2], kept)  # a finished start is not rewritten
    uninterrupted = forecast(bundle, learning_store, tmp_path / "whole.zarr", plan, batch=4, quiet=True).path
    np.testing.assert_array_equal(resumed, zarr.open_group(str(uninterrupted))["vorticity"][:])


def test_forecast_errors(bundle, learning_store, turbulence_store, tmp_path) -> None:
    with pytest.raises(ClimdiffError, match="room for"):
        plan_forecast(bundle, learning_store, rollout(bundle), starts=500, start_dates=None)
    with pytest.raises(ClimdiffError, match="not in the reference"):
        plan_forecast(bundle, learning_store, rollout(bundle), starts=None, start_dates=["2999-01-01"])
    with pytest.raises(ClimdiffError, match="day before"):
        first = str(xr.open_zarr(learning_store)["time"].values[0])[:10]
        plan_forecast(bundle, learning_store, rollout(bundle), starts=None, start_dates=[first])
    with pytest.raises(ClimdiffError, match="exactly one"):
        plan_forecast(bundle, learning_store, rollout(bundle), starts=None, start_dates=None)
    with pytest.raises(ClimdiffError, match="not a climdiff store|does not exist"):
        plan_forecast(bundle, tmp_path / "missing.zarr", rollout(bundle), starts=2, start_dates=None)


def test_cli_forecast_mode_and_its_errors(cli, guided_bundle, learning_store, tmp_path) -> None:
    out = tmp_path / "fc.zarr"
    ok = cli(
        "emulate",
        "--checkpoint",
        str(guided_bundle),
        "--init-from",
        str(learning_store),
        "--starts",
        "2",
        "--days",
        "2",
        "--members",
        "2",
        "--out",
        str(out),
        "--quiet",
    )
    assert ok.exit_code == 0, ok.stderr
    assert "2 start(s) x 2 leads x 2 member(s)" in ok.stdout
    again = cli(
        "emulate",
        "--checkpoint",
        str(guided_bundle),
        "--init-from",
        str(learning_store),
        "--starts",
        "2",
        "--days",
        "2",
        "--members",
        "2",
        "--out",
        str(out),
        "--quiet",
    )
    assert again.exit_code == 2 and "complete" in again.stderr
    bad = cli(
        "emulate", "--checkpoint", str(guided_bundle), "--starts", "2", "--days", "2", "--out", str(tmp_path / "x.zarr")
    )
    assert bad.exit_code == 2 and "--init-from" in bad.stderr
    years = cli(
        "emulate",
        "--checkpoint",
        str(guided_bundle),
        "--init-from",
        str(learning_store),
        "--starts",
        "2",
        "--years",
        "1",
        "--out",
        str(tmp_path / "y.zarr"),
    )
    assert years.exit_code == 2 and "leads" in years.stderr

"""The embedded models beside the default: each runs by name from the command line, and the video
diffusion baselines make days that follow from the days before (not independent draws). What
`--list-models` says of each model is tested in test_latlon_emulate.py."""

from __future__ import annotations

import json

import pytest
import xarray as xr

from climdiff.assets import DEFAULT_MODEL, available_models, embedded_bundle
from climdiff.bundle import read_bundle_meta
from climdiff.evaluate.temporal import autocorrelation

VDM_MODELS = [name for name in available_models() if read_bundle_meta(embedded_bundle(name))["mode"] == "vdm"]


def test_both_cases_ship_a_video_diffusion_baseline() -> None:
    assert sorted(VDM_MODELS) == ["latlon32-vdm", "turbulence32-vdm"]
    assert read_bundle_meta(embedded_bundle(DEFAULT_MODEL))["mode"] == "guided"


@pytest.mark.parametrize("name", VDM_MODELS)
def test_a_vdm_model_runs_by_name_and_couples_its_days(name: str, cli, tmp_path) -> None:
    """Consecutive days of an unguided image model are independent; the VDM's follow from the two
    before. Over 40 days (anomalies from their own mean) the lag-1 autocorrelation of the unguided
    defaults is -0.00 (turbulence) and 0.26 (lat-lon, where the date-conditioned season alone
    correlates the days), of the VDMs 0.98 and 0.67: above 0.45 the conditioning works in the
    shipped bundle."""
    out = tmp_path / f"{name}.zarr"
    result = cli("emulate", "--model", name, "--days", "40", "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    meta = read_bundle_meta(embedded_bundle(name))
    field = xr.open_zarr(out)[meta["variable"]["name"]].isel(member=0).load()
    assert field.notnull().all()
    lag1 = float(autocorrelation(field, lags=(1,)).item())
    assert lag1 > 0.45, lag1


def test_the_one_call_solver_is_chosen_on_the_command_line_and_recorded(cli, tmp_path) -> None:
    """`--solver dpmpp_2m --churn 0` turns the guided turbulence default (Heun with churn) into the
    one-call solver: its days still follow from the days before (guided lag 1 about 0.4 over these 40
    days, where the unguided model's days are independent), and the store says how they were drawn.
    Without --churn 0 the churned sampler refuses it in one line."""
    out = tmp_path / "multistep.zarr"
    args = ("emulate", "--model", "turbulence32", "--solver", "dpmpp_2m", "--days", "40")
    result = cli(*args, "--churn", "0", "--out", out)
    assert result.exit_code == 0, result.stderr
    ds = xr.open_zarr(out)
    sampler = json.loads(ds.attrs["sampler"])
    assert sampler["solver"] == "dpmpp_2m" and sampler["S_churn"] == 0
    assert "dpmpp_2m" in cli("info", out).stdout
    assert float(autocorrelation(ds["vorticity"].isel(member=0).load(), lags=(1,)).item()) > 0.25
    churned = tmp_path / "churned.zarr"
    refused = cli(*args, "--out", churned)
    assert refused.exit_code != 0 and "needs S_churn = 0 (--churn 0)" in refused.stderr
    assert "Traceback" not in refused.stderr and not churned.exists()

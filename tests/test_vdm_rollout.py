"""The VDM baseline rolls out through the same engine, stores and resume as the guided IDM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
import zarr

from climdiff.bundle import load_bundle
from climdiff.errors import ClimdiffError
from climdiff.models.conditioning import conditioning
from climdiff.rollout.engine import EmulateConfig, emulate
from climdiff.rollout.forecast import forecast, plan_forecast
from climdiff.rollout.steppers import VDMStepper, day_stepper
from climdiff.sampling.edm import edm_sample
from climdiff.seeding import keyed_generator
from climdiff.zarr_io import store_meta


@pytest.fixture(scope="module")
def bundle(vdm_bundle):
    return load_bundle(vdm_bundle)


def config(bundle, **overrides) -> EmulateConfig:
    settings = {"days": 4, "members": 3, "seed": 2, "time_chunk": 2, "sampler": bundle.sampler}
    return EmulateConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def vdm_run(bundle, tmp_path_factory):
    return emulate(bundle, tmp_path_factory.mktemp("vdm") / "run.zarr", config(bundle), quiet=True).path


def model_space_initial(bundle, members: int) -> torch.Tensor:
    norm = bundle.meta["normalization"]
    return ((bundle.initial_state - norm["mean"]) / norm["std"]).expand(members, -1, -1, -1, -1)


def test_a_vdm_bundle_gets_the_vdm_stepper_without_guidance(bundle) -> None:
    assert bundle.kind == "vdm" and bundle.sampler.guidance == 0
    stepper = day_stepper(bundle, bundle.sampler, torch.device("cpu"), guide_thread=True)
    assert isinstance(stepper, VDMStepper) and stepper.guidance_thread is False
    with pytest.raises(ClimdiffError, match="without guidance"):
        day_stepper(bundle, bundle.sampler.replace(guidance=2.0), torch.device("cpu"))


def test_the_vdm_stepper_samples_the_vdm_conditioned_on_the_last_two_days(bundle) -> None:
    last = model_space_initial(bundle, 2)
    stepper = day_stepper(bundle, bundle.sampler, torch.device("cpu"), trace=False)

    def streams() -> list[torch.Generator]:
        return [keyed_generator(0, m) for m in range(2)]

    drawn = stepper(last, streams())
    vdm, cond = bundle.models["vdm"], conditioning(previous=last[:, 0], current=last[:, 1])
    with torch.no_grad():
        by_hand = edm_sample(lambda x, s: vdm(x, s, cond), last[:, 1].shape, streams(), bundle.sampler)
    assert torch.equal(drawn, by_hand)
    # other conditioning days, same noise: another day
    swapped = stepper(last.flip(1), streams())
    assert not torch.allclose(swapped, drawn, atol=1e-3)


def test_vdm_emulation_is_a_complete_store_with_finite_days(bundle, vdm_run) -> None:
    ds = xr.open_zarr(vdm_run)
    assert ds["vorticity"].shape == (3, 4, 32, 32) and np.isfinite(ds["vorticity"].values).all()
    assert store_meta(ds.attrs)["complete"] is True and "(vdm)" in ds.attrs["title"]
    assert (
        ds.attrs["guidance_lambda"] == 0 and ds.attrs["guidance_thread"] == "false"
    )  # booleans are JSON text (netCDF has none)
    days = ds["vorticity"].values
    assert not np.allclose(days[0], days[1])  # members draw their own noise


def test_interrupted_vdm_run_resumes_bit_for_bit(bundle, vdm_run, tmp_path) -> None:
    out = tmp_path / "resumed.zarr"

    class Stop(Exception):
        pass

    def stop(days: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        emulate(bundle, out, config(bundle), quiet=True, after_commit=stop)
    assert np.isnan(zarr.open_group(str(out))["vorticity"][:, 2:]).all()
    emulate(bundle, out, config(bundle), quiet=True)
    uninterrupted = zarr.open_group(str(vdm_run))["vorticity"][:]
    np.testing.assert_array_equal(zarr.open_group(str(out))["vorticity"][:], uninterrupted)


def test_vdm_members_do_not_depend_on_the_batch_layout(bundle, vdm_run, tmp_path) -> None:
    single = emulate(bundle, tmp_path / "b1.zarr", config(bundle), batch=1, quiet=True).path
    batched = zarr.open_group(str(vdm_run))["vorticity"][:]
    np.testing.assert_allclose(zarr.open_group(str(single))["vorticity"][:], batched, rtol=1e-4, atol=1e-4)


def test_vdm_forecasts_and_the_cli(cli, bundle, vdm_bundle, learning_store, tmp_path) -> None:
    plan = plan_forecast(bundle, learning_store, config(bundle, days=2, members=2), starts=2, start_dates=None)
    fc = xr.open_zarr(forecast(bundle, learning_store, tmp_path / "fc.zarr", plan, quiet=True).path)
    assert fc["vorticity"].shape == (2, 2, 2, 32, 32) and np.isfinite(fc["vorticity"].values).all()
    base = ("emulate", "--checkpoint", vdm_bundle, "--days", "2", "--quiet")
    run = cli(*base, "--out", tmp_path / "cli.zarr")
    assert run.exit_code == 0, run.stderr
    guided = cli(*base, "--guidance", "3", "--out", tmp_path / "g.zarr")
    assert guided.exit_code == 2 and "without guidance" in guided.stderr and "Traceback" not in guided.stderr

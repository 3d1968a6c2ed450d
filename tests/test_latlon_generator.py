"""The lat-lon generator: the moist barotropic model's physics and its store, end to end on disk."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cftime
import numpy as np
import pytest
import torch
import xarray as xr
import zarr

from climdiff.data.latlon import LatLonGrid
from climdiff.data.latlon_generator import DIAGNOSTICS, TRANSFORM, LatLonRun, generate_latlon
from climdiff.data.moist_barotropic import MoistBarotropicConfig, MoistBarotropicModel
from climdiff.data.splits import split_counts
from climdiff.data.store import STATE_FILE, AppendableStore
from climdiff.errors import ClimdiffError, SolverError, StoreError
from climdiff.zarr_io import store_meta

# A 16 x 32 output grid (the model runs on 32 x 64 at T10): small enough for the default suite.
SMALL_MODEL = MoistBarotropicConfig(
    n_lat=16, n_lon=32, steps_per_day=8, stirring_wavenumber=6, stirring_width=2, divergent_wavenumbers=(2, 8)
)
SMALL_RUN = LatLonRun(model=SMALL_MODEL, days=24, spinup_days=6, seed=3, split=(0.5, 0.25, 0.25), chunk=8)
ARRAYS = ("time", "precipitation", *DIAGNOSTICS)


def cell_areas(grid: LatLonGrid) -> np.ndarray:
    """Exact relative cell areas of an output grid, from its latitude bounds."""
    bounds = np.radians(grid.lat_bounds())
    return (np.sin(bounds[:, 0]) - np.sin(bounds[:, 1]))[:, None] * np.ones(grid.n_lon)


def assert_same_store(a: Path, b: Path) -> None:
    ga, gb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    for name in ARRAYS:
        np.testing.assert_array_equal(ga[name][:], gb[name][:], err_msg=name)


@pytest.fixture(scope="module")
def model() -> MoistBarotropicModel:
    return MoistBarotropicModel(SMALL_MODEL)


@pytest.fixture(scope="module")
def spun_up(model: MoistBarotropicModel) -> tuple[dict[str, torch.Tensor], torch.Generator]:
    """A state after 8 model days, with eddies, rain and dry regions."""
    generator = torch.Generator().manual_seed(0)
    state = model.initial_state(generator, 170)
    forcing = model.seasonal_forcing(170)
    for _ in range(8 * SMALL_MODEL.steps_per_day):
        model.step(state, forcing, generator)
    return state, generator


@pytest.fixture(scope="module")
def latlon_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_latlon(tmp_path_factory.mktemp("latlon") / "small.zarr", SMALL_RUN, quiet=True)


# --- physics -------------------------------------------------------------------------------


def test_water_budget_closes_every_step_and_water_stays_non_negative(model, spun_up) -> None:
    state = dict(spun_up[0])
    generator = torch.Generator()
    generator.set_state(spun_up[1].get_state())
    forcing = model.seasonal_forcing(171)
    rained = 0.0
    for _ in range(2 * SMALL_MODEL.steps_per_day):
        before = model.area_mean(state["q"])
        totals = model.step(state, forcing, generator)
        after = model.area_mean(state["q"])
        sources = model.area_mean(totals.evaporation) - model.area_mean(totals.precipitation)
        assert float(abs(after - before - sources)) < 1e-12 * float(before)
        assert float(state["q"].min()) >= 0.0
        assert float(totals.precipitation.min()) >= 0.0 and float(totals.evaporation.min()) >= 0.0
        rained += float(model.area_mean(totals.precipitation))
    assert rained > 0.0  # the budget is not trivially closed by a model that never rains


def test_rotational_face_fluxes_are_divergence_free(model, spun_up) -> None:
    state, _ = spun_up
    quiet = dataclasses.replace(model.seasonal_forcing(0))
    quiet.hadley_flux = torch.zeros_like(quiet.hadley_flux)
    zonal, meridional = model.face_fluxes(state["zeta"], torch.zeros_like(state["chi"]), quiet)
    net = torch.roll(zonal, -1, dims=-1) - zonal + meridional[:-1] - meridional[1:]
    scale = float(zonal.abs().max())
    assert scale > 0 and float(net.abs().max()) < 1e-12 * scale
    assert float(meridional[0].abs().max()) == 0.0 and float(meridional[-1].abs().max()) == 0.0


def test_transport_conserves_water_and_stays_positive_at_large_courant_numbers(model) -> None:
    """A strong flow (zonal Courant numbers far above 1 near the poles) moves a random field conservatively."""
    generator = torch.Generator().manual_seed(1)
    q = torch.rand(model.sht.n_lat, model.sht.n_lon, generator=generator, dtype=torch.float64) ** 4
    zeta = model.initial_state(generator, 0)["zeta"] * 3
    chi = torch.zeros_like(zeta)
    zonal, meridional = model.face_fluxes(zeta, chi, model.seasonal_forcing(0))
    assert float((zonal * model.config.dt / model.area).abs().max()) > 2
    moved = model.advect(q, zonal, meridional)
    assert float(moved.min()) >= 0.0
    assert float(model.area_mean(moved)) == pytest.approx(float(model.area_mean(q)), rel=1e-13)
    assert not torch.equal(moved, q)


def test_coarsening_preserves_area_means(model) -> None:
    shape = (model.sht.n_lat, model.sht.n_lon)
    field = torch.rand(shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    coarse = model.coarsen(field).numpy()
    areas = cell_areas(LatLonGrid(SMALL_MODEL.n_lat, SMALL_MODEL.n_lon))
    assert (coarse * areas).sum() / areas.sum() == pytest.approx(float(model.area_mean(field)), rel=1e-13)
    # a field that is constant on each output cell comes back unchanged (cells nest exactly)
    coarse_shape = (SMALL_MODEL.n_lat, SMALL_MODEL.n_lon)
    blocks = torch.rand(coarse_shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    fine = torch.roll(blocks.repeat_interleave(2, 0).repeat_interleave(2, 1), -1, dims=-1)
    torch.testing.assert_close(model.coarsen(fine), blocks, atol=1e-14, rtol=0)


def test_seasonal_forcing_migrates_with_the_calendar(model) -> None:
    lat = model.lat
    july, january = model.seasonal_forcing(195), model.seasonal_forcing(15)
    north = lat > 0
    assert float(july.q_sat[north].mean()) > float(january.q_sat[north].mean())
    assert lat[int(july.q_sat[:, 0].argmax())] > 0 > lat[int(january.q_sat[:, 0].argmax())]
    assert float((july.q_target <= july.q_sat).all()) and float(july.q_sat.min()) > 0


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(ClimdiffError, match="stirring band"):
        MoistBarotropicConfig(n_lat=8, n_lon=16)
    with pytest.raises(ClimdiffError, match="steps-per-day"):
        MoistBarotropicConfig(steps_per_day=0)
    with pytest.raises(ClimdiffError, match="at least one day"):
        LatLonRun(days=0)


# --- the store -----------------------------------------------------------------------------


def test_store_has_cf_metadata_grid_and_transform(latlon_store: Path) -> None:
    ds = xr.open_zarr(latlon_store)
    p = ds["precipitation"]
    assert p.dims == ("time", "lat", "lon") and p.shape == (24, 16, 32)
    assert p.attrs["units"] == "mm day-1"
    assert p.attrs["standard_name"] == "lwe_precipitation_rate"
    assert p.attrs["cell_methods"] == "time: mean"
    assert isinstance(ds["time"].values[0], cftime.DatetimeNoLeap)
    assert ds["time"].values[0] == cftime.DatetimeNoLeap(1, 1, 1)
    grid = LatLonGrid.from_coordinates(ds["lat"].values, ds["lon"].values)
    meta = store_meta(ds.attrs)
    assert meta["grid"] == grid.meta() == LatLonGrid(16, 32).meta()
    assert meta["transform"] == TRANSFORM
    assert meta["variable"] == "precipitation" and meta["units"] == "mm day-1" and meta["calendar"] == "noleap"
    assert meta["complete"] is True and meta["split"] == {"train": [0, 12], "validation": [12, 18], "test": [18, 24]}
    stats = meta["stats"]["precipitation"]
    train = p.isel(time=slice(0, 12)).values.astype(np.float64)
    assert stats["min"] == pytest.approx(train.min()) and stats["max"] == pytest.approx(train.max())
    assert stats["mean"] == pytest.approx(train.mean(), rel=1e-9)
    assert not (latlon_store / STATE_FILE).exists()


def test_stored_precipitation_is_intermittent_and_its_budget_closes(latlon_store: Path) -> None:
    ds = xr.open_zarr(latlon_store)
    p = ds["precipitation"].values
    assert p.min() >= 0.0 and np.isfinite(p).all()
    assert 0.05 < (p == 0).mean() < 0.95  # dry cells exactly zero, and rain elsewhere
    assert p.max() > 5.0
    areas = cell_areas(LatLonGrid(16, 32))
    field_mean = (p.astype(np.float64) * areas).sum(axis=(1, 2)) / areas.sum()
    np.testing.assert_allclose(field_mean, ds["precipitation_mean"].values, rtol=1e-6)
    residual = ds["budget_residual"].values
    assert np.abs(residual).max() < 1e-10
    tendency = ds["water_vapour_tendency"].values
    np.testing.assert_allclose(
        tendency, ds["evaporation_mean"].values - ds["precipitation_mean"].values, rtol=0, atol=1e-10
    )
    # the day's tendency is the change of the stored end-of-day water vapour
    np.testing.assert_allclose(np.diff(ds["water_vapour_mean"].values), tendency[1:], atol=1e-10)


def test_same_seed_same_store_other_seed_other_store(latlon_store: Path, tmp_path: Path) -> None:
    again = generate_latlon(tmp_path / "again.zarr", SMALL_RUN, quiet=True)
    assert_same_store(latlon_store, again)
    other = generate_latlon(tmp_path / "other.zarr", dataclasses.replace(SMALL_RUN, seed=4, days=8), quiet=True)
    a = zarr.open_group(str(latlon_store), mode="r")["precipitation"][:8]
    assert not np.array_equal(a, zarr.open_group(str(other), mode="r")["precipitation"][:])


class Interrupt(Exception):
    """Raised from the commit hook to stop a run at a known point."""


def test_interrupted_and_resumed_equals_uninterrupted(latlon_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed.zarr"

    def stop_after_eight(done: int) -> None:
        if done >= 8:
            raise Interrupt

    with pytest.raises(Interrupt):
        generate_latlon(out, SMALL_RUN, quiet=True, after_commit=stop_after_eight)
    assert xr.open_zarr(out).sizes["time"] == 8
    # frames written after the last committed state (a crash mid-chunk) are discarded on resume
    store = AppendableStore.open(out)
    store.append({arr.basename: np.zeros((8, *arr.shape[1:]), dtype=arr.dtype) for arr in store.time_arrays()})
    generate_latlon(out, SMALL_RUN, quiet=True)
    assert_same_store(latlon_store, out)


def test_interrupted_during_spinup_resumes_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = dataclasses.replace(SMALL_RUN, spinup_days=4, days=4, chunk=2, split=(0.5, 0.5, 0.0))
    reference = generate_latlon(tmp_path / "ref.zarr", run, quiet=True)
    calls = {"n": 0}
    original = AppendableStore.save_state

    def save_then_stop(self: AppendableStore, state: dict) -> None:
        original(self, state)
        calls["n"] += 1
        if calls["n"] == 1:  # after the first spin-up commit (2 of 4 days)
            raise Interrupt

    monkeypatch.setattr(AppendableStore, "save_state", save_then_stop)
    with pytest.raises(Interrupt):
        generate_latlon(tmp_path / "spin.zarr", run, quiet=True)
    monkeypatch.setattr(AppendableStore, "save_state", original)
    assert zarr.open_group(str(tmp_path / "spin.zarr"), mode="r")["precipitation"].shape[0] == 0
    generate_latlon(tmp_path / "spin.zarr", run, quiet=True)
    assert_same_store(reference, tmp_path / "spin.zarr")


def test_complete_store_is_refused_and_blow_up_keeps_committed_days(
    latlon_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StoreError, match="already complete"):
        generate_latlon(latlon_store, SMALL_RUN, quiet=True)
    healthy = MoistBarotropicModel.step
    calls = {"n": 0}

    def step(self, state, forcing, generator):  # noqa: ANN001, ANN202
        totals = healthy(self, state, forcing, generator)
        calls["n"] += 1
        if calls["n"] > (SMALL_RUN.spinup_days + 10) * SMALL_MODEL.steps_per_day:
            state["q"] = state["q"] * float("nan")
        return totals

    monkeypatch.setattr(MoistBarotropicModel, "step", step)
    with pytest.raises(SolverError, match="The 8 frames already in"):
        generate_latlon(tmp_path / "blow.zarr", SMALL_RUN, quiet=True)
    kept = zarr.open_group(str(tmp_path / "blow.zarr"), mode="r")["precipitation"][:]
    np.testing.assert_array_equal(kept, zarr.open_group(str(latlon_store), mode="r")["precipitation"][:8])


def test_splits_fall_on_whole_years() -> None:
    whole_years = {"train": [0, 2920], "validation": [2920, 3285], "test": [3285, 3650]}
    assert split_counts(10 * 365, (0.8, 0.1, 0.1), 365) == whole_years
    assert split_counts(40, (0.5, 0.25, 0.25), 365) == split_counts(40, (0.5, 0.25, 0.25))


def test_cli_refuses_a_grid_too_coarse_for_the_default_stirring(cli, tmp_path: Path) -> None:
    out = tmp_path / "cli.zarr"
    result = cli("data", "latlon", "--out", out, "--days", "4", "--n-lat", "16", "--n-lon", "32", "--quiet")
    assert result.exit_code == 2 and "stirring band" in result.stderr  # T10 cannot hold the default stirring
    assert "Traceback" not in result.stderr


def test_cli_makes_a_default_grid_store_and_info_describes_it(cli, tmp_path: Path) -> None:
    out = tmp_path / "cli.zarr"
    args = ["--days", "2", "--spinup-days", "0", "--chunk", "2", "--split", "0.5,0.5,0", "--threads", "1"]
    result = cli("data", "latlon", "--out", out, *args, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert "wrote 2 days of 32x64 daily precipitation" in result.stdout
    info = json.loads(cli("data", "info", out, "--json").stdout)
    assert info["complete"] and info["frames"] == 2 and info["grid"] == {"lat": 32, "lon": 64}
    assert abs(info["water_budget"]["max_abs_residual"]) < 1e-10
    picture = tmp_path / "look.png"
    assert cli("data", "info", out, "--plot", picture).exit_code == 0 and picture.stat().st_size > 10_000
    again = cli("data", "latlon", "--out", out, "--days", "3", "--spinup-days", "0", "--quiet")
    assert again.exit_code != 0 and "another configuration" in again.stderr


# --- long runs (slow): stationarity and the seasonal cycle at the default grid ---------------

LONG_YEARS = 6


@pytest.fixture(scope="module")
def long_store(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    """Six years of the default 32 x 64 configuration after one year of spin-up."""
    run = LatLonRun(days=LONG_YEARS * 365, seed=1)
    out = generate_latlon(tmp_path_factory.mktemp("latlon") / "long.zarr", run, quiet=True)
    return xr.open_zarr(out).load()


@pytest.mark.slow
def test_long_run_is_stationary(long_store: xr.Dataset) -> None:
    """Annual global means do not drift: no year departs from the mean, no trend across years."""
    years = np.arange(LONG_YEARS)
    for name, tolerance in (("precipitation_mean", 0.03), ("water_vapour_mean", 0.01), ("kinetic_energy", 0.05)):
        annual = long_store[name].values.reshape(LONG_YEARS, 365).mean(axis=1)
        mean = annual.mean()
        assert np.abs(annual - mean).max() < tolerance * mean, (name, annual)
        slope = np.polyfit(years, annual, 1)[0]
        assert abs(slope) * (LONG_YEARS - 1) < tolerance * mean, (name, annual)
    assert np.abs(long_store["budget_residual"].values).max() < 1e-10


@pytest.mark.slow
def test_long_run_has_a_repeatable_seasonal_cycle(long_store: xr.Dataset) -> None:
    """The tropical rain band follows the sun north in JJA and south in DJF, the same way every year."""
    p = long_store["precipitation"].values.astype(np.float64)  # (days, lat, lon)
    lat = long_store["lat"].values
    zonal = p.mean(axis=2).reshape(LONG_YEARS, 365, -1)
    doy = np.arange(365)
    jja, djf = (doy >= 151) & (doy < 243), (doy < 59) | (doy >= 334)
    tropics = np.abs(lat) < 30

    def rain_latitude(profile: np.ndarray) -> np.ndarray:
        weights = profile[..., tropics]
        return (weights * lat[tropics]).sum(-1) / weights.sum(-1)

    north, south = rain_latitude(zonal[:, jja].mean(1)), rain_latitude(zonal[:, djf].mean(1))
    assert (north - south > 3.0).all(), (north, south)
    # monthly zonal-mean climatologies of the first and last three years agree
    months = zonal[:, :360].reshape(LONG_YEARS, 12, 30, -1).mean(2)
    first, last = months[:3].mean(0), months[3:].mean(0)
    anomaly_first, anomaly_last = first - first.mean(0), last - last.mean(0)
    assert np.corrcoef(anomaly_first.ravel(), anomaly_last.ravel())[0, 1] > 0.8

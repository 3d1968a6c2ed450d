"""The climate path end to end: the lat-lon generator's store -> IDM and discriminator trained on it
-> a bundle -> a guided `climdiff emulate` -> a CF netCDF export that the checker passes."""

from __future__ import annotations

import datetime
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from climdiff.assets import DEFAULT_MODEL, METHODS, available_models, embedded_bundle
from climdiff.bundle import Bundle, load_bundle, make_bundle, read_bundle_meta
from climdiff.data.latlon import LatLonGrid
from climdiff.data.latlon_generator import generate_latlon
from climdiff.data.seasons import year_fraction
from climdiff.data.transforms import transform_from_normalization
from climdiff.rollout.engine import EmulateConfig, emulate
from climdiff.rollout.forecast import forecast, plan_forecast
from climdiff.rollout.steppers import GuidedStepper, TracedStepper, day_stepper
from climdiff.sampling.config import SamplerConfig
from climdiff.seeding import keyed_generator
from climdiff.train.loop import train_model
from tests.test_export import cf_failures
from tests.test_latlon_generator import SMALL_RUN
from tests.test_latlon_training import doy_runs, latlon_store, tiny  # noqa: F401 - fixtures used below

GRID = LatLonGrid(SMALL_RUN.model.n_lat, SMALL_RUN.model.n_lon)
# The date-conditioned models below are trained a few steps only: their days are far from the data, so
# the rollouts that test how dates reach them keep every day (no redraws, which would repeat a date).
UNCHECKED = 1e6
CFTIME = xr.coders.CFDatetimeCoder(use_cftime=True)


@pytest.fixture(scope="module")
def generated_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny models trained on 120 generated days, bundled with a short guided sampler (the IDM needs a
    few hundred steps before its days stay inside the stability check's bounds)."""
    root = tmp_path_factory.mktemp("latlon_e2e")
    store = generate_latlon(root / "precip.zarr", replace(SMALL_RUN, days=120, split=(0.6, 0.2, 0.2)), quiet=True)
    steps = {"idm": 300, "disc": 40}
    runs = {
        kind: train_model(tiny(kind, steps=n, checkpoint_every=n, val_every=n, lr=3e-3), store, root / kind, quiet=True)
        for kind, n in steps.items()
    }
    sampler = SamplerConfig(steps=6, guidance=5.0)
    return make_bundle(root / "latlon.bundle", data=store, idm=runs["idm"], disc=runs["disc"], sampler=sampler)


def test_guided_latlon_emulation_writes_cf_precipitation(
    cli, generated_bundle: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "run.zarr"
    run = cli(
        "emulate",
        "--checkpoint",
        generated_bundle,
        "--days",
        "5",
        "--members",
        "2",
        "--out",
        out,
        "--threads",
        "1",
        "--quiet",
    )
    assert run.exit_code == 0, run.stderr
    ds = xr.open_zarr(out)
    p = ds["precipitation"]
    assert p.dims == ("member", "time", "lat", "lon") and p.shape == (2, 5, *GRID.shape)
    np.testing.assert_array_equal(ds["lat"].values, GRID.lat)  # north to south, cell centres
    np.testing.assert_array_equal(ds["lon"].values, GRID.lon)
    assert ds["lat_bnds"].dims == ("lat", "bnds") and ds["lat"].attrs["units"] == "degrees_north"
    values = p.values
    assert np.isfinite(values).all() and (values >= 0).all()  # the log transform's inverse never rains < 0
    assert p.attrs["standard_name"] == "lwe_precipitation_rate" and p.attrs["units"] == "mm day-1"
    assert p.attrs["climdiff_transform"].startswith("log_minmax")
    ds.to_netcdf(tmp_path / "direct.nc")  # an xarray user's copy works as it is
    exported = tmp_path / "run.nc"
    assert cli("export", out, "--out", exported, "--quiet").exit_code == 0
    failures = cf_failures(exported, monkeypatch)
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def dated_bundle(
    doy_runs: dict[str, Path],  # noqa: F811 - the imported fixture
    latlon_store: Path,  # noqa: F811 - the imported fixture
    tmp_path_factory: pytest.TempPathFactory,
) -> Bundle:
    """A guided bundle whose IDM and discriminator both take the day of the year."""
    path = make_bundle(
        tmp_path_factory.mktemp("dated") / "doy.bundle",
        data=latlon_store,
        idm=doy_runs["idm"],
        disc=doy_runs["disc"],
        sampler=SamplerConfig(steps=4, guidance=2.0),
    )
    return load_bundle(path)


def _recording(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """Every ``doy`` a stepper is called with, in order (the steppers themselves still draw)."""
    seen: list[np.ndarray] = []
    draw = TracedStepper.__call__

    def recorded(self, last, generators, doy=None):  # noqa: ANN001, ANN202
        seen.append(None if doy is None else doy.numpy().copy())
        return draw(self, last, generators, doy)

    monkeypatch.setattr(TracedStepper, "__call__", recorded)
    return seen


def test_a_dated_stepper_gives_each_network_the_date_traced_as_eager(dated_bundle: Bundle) -> None:
    """Traced and eager networks draw the same day for the same date; another date, another day;
    a date-conditioned stepper refuses to draw without one."""
    last = transform_from_normalization(dated_bundle.meta["normalization"]).forward(dated_bundle.initial_state)[None]
    last = last.expand(2, *last.shape[1:]).contiguous()
    cpu = torch.device("cpu")

    def draw(trace: bool, doy: list[float]) -> torch.Tensor:
        stepper = day_stepper(dated_bundle, dated_bundle.sampler, cpu, trace=trace)
        assert isinstance(stepper, GuidedStepper) and stepper.needs_date
        return stepper(last, [keyed_generator(0, m) for m in range(2)], torch.tensor(doy))

    january, july = draw(True, [0.0, 0.0]), draw(True, [0.5, 0.5])
    torch.testing.assert_close(january, draw(False, [0.0, 0.0]), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(january, july, atol=1e-4)
    with pytest.raises(ValueError, match="need the date"):
        day_stepper(dated_bundle, dated_bundle.sampler, cpu)(last, [keyed_generator(0, m) for m in range(2)])


def test_a_dated_emulation_passes_the_stored_date_of_every_day(
    dated_bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _recording(monkeypatch)
    config = EmulateConfig(
        days=4, members=2, start="2003-12-30", sampler=dated_bundle.sampler, time_chunk=2, blowup_factor=UNCHECKED
    )
    emulate(dated_bundle, tmp_path / "run.zarr", config, quiet=True)
    times = xr.open_zarr(tmp_path / "run.zarr", decode_times=CFTIME)["time"].values
    expected = np.repeat(year_fraction(times)[:, None], 2, axis=1)  # both members stand on the same day
    np.testing.assert_allclose(np.stack(seen), expected, rtol=0, atol=1e-7)
    assert expected[2, 0] == 0.0  # the run crosses 1 January


def test_dated_forecasts_pass_the_date_of_each_lead(
    dated_bundle: Bundle,
    latlon_store: Path,  # noqa: F811 - the imported fixture
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _recording(monkeypatch)
    rollout = EmulateConfig(days=3, members=1, sampler=dated_bundle.sampler, blowup_factor=UNCHECKED)
    plan = plan_forecast(dated_bundle, latlon_store, rollout, starts=2, start_dates=None)
    forecast(dated_bundle, latlon_store, tmp_path / "fc.zarr", plan, batch=1, quiet=True)
    init = xr.open_zarr(latlon_store, decode_times=CFTIME)["time"].values[list(plan.init_indices)]
    leads = [[t + datetime.timedelta(days=lead) for lead in (1, 2, 3)] for t in init]
    np.testing.assert_allclose(np.concatenate(seen), np.concatenate([year_fraction(d) for d in leads]), atol=1e-7)


def test_the_date_steers_a_dated_emulation_and_not_an_undated_one(
    dated_bundle: Bundle, generated_bundle: Path, tmp_path: Path
) -> None:
    def run(bundle: Bundle, start: str) -> np.ndarray:
        out = tmp_path / f"{bundle.path.name}-{start}.zarr"
        emulate(
            bundle, out, EmulateConfig(days=2, start=start, sampler=bundle.sampler, blowup_factor=UNCHECKED), quiet=True
        )
        values = xr.open_zarr(out)["precipitation"].values
        assert np.isfinite(values).all()
        return values

    assert not np.allclose(run(dated_bundle, "2001-01-01"), run(dated_bundle, "2001-07-02"))
    undated = load_bundle(generated_bundle)
    np.testing.assert_array_equal(run(undated, "2001-01-01"), run(undated, "2001-07-02"))


def test_list_models_names_every_embedded_model_and_marks_the_default(cli) -> None:
    result = cli("emulate", "--list-models")  # no --out needed
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0].rstrip(":") for line in lines] == available_models()
    assert [line.split()[0] for line in lines if "(default)" in line] == [DEFAULT_MODEL]
    for name, line in zip(available_models(), lines, strict=True):  # the date shown where the models take it
        meta = read_bundle_meta(embedded_bundle(name))
        assert ("conditioned on the day of year" in line) == any(meta.get("day_of_year", {}).values()), line
        method = METHODS[meta["mode"]]  # and the method, with lambda only where a discriminator guides
        assert f", {method}, " in line and ("lambda" in line) == (method == METHODS["guided"]), line
    assert "conditioned on the day of year" in lines[available_models().index("latlon32")]

"""The climate path end to end: the lat-lon generator's store -> IDM and discriminator trained on it
-> a bundle -> a guided `climdiff emulate` -> a CF netCDF export that the checker passes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from climdiff.assets import DEFAULT_MODEL, available_models
from climdiff.bundle import make_bundle
from climdiff.data.latlon import LatLonGrid
from climdiff.data.latlon_generator import generate_latlon
from climdiff.sampling.config import SamplerConfig
from climdiff.train.loop import train_model
from tests.test_export import cf_failures
from tests.test_latlon_generator import SMALL_RUN
from tests.test_latlon_training import doy_runs, latlon_store, tiny  # noqa: F401 - fixtures used below

GRID = LatLonGrid(SMALL_RUN.model.n_lat, SMALL_RUN.model.n_lon)


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


def test_a_date_conditioned_bundle_is_refused_in_one_line(
    cli,
    doy_runs: dict[str, Path],  # noqa: F811 - the imported fixture
    latlon_store: Path,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    bundle = make_bundle(tmp_path / "doy.bundle", data=latlon_store, idm=doy_runs["idm"], disc=doy_runs["disc"])
    result = cli("emulate", "--checkpoint", bundle, "--days", "2", "--out", tmp_path / "r.zarr", "--quiet")
    assert result.exit_code != 0 and "day of year" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "r.zarr").exists()


def test_list_models_names_every_embedded_model_and_marks_the_default(cli) -> None:
    result = cli("emulate", "--list-models")  # no --out needed
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0].rstrip(":") for line in lines] == available_models()
    assert [line.split()[0] for line in lines if "(default)" in line] == [DEFAULT_MODEL]

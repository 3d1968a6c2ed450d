"""`climdiff export`: CF netCDF copies of real climdiff stores (training data, emulation, forecast)."""

from __future__ import annotations

import json
import os
import shutil

import cftime
import numpy as np
import pytest
import torch
import xarray as xr
import zarr

from climdiff.errors import ClimdiffError, StoreError
from climdiff.export import export_netcdf
from climdiff.metadata import netcdf_attribute
from climdiff.zarr_io import STORE_ATTR, consolidate, quiet_zarr, store_meta, update_header

CFTIME = xr.coders.CFDatetimeCoder(use_cftime=True)


def open_nc(path) -> xr.Dataset:  # noqa: ANN001
    return xr.open_dataset(path, engine="netcdf4", decode_times=CFTIME)


def open_store(path) -> xr.Dataset:  # noqa: ANN001
    with quiet_zarr():
        return xr.open_zarr(str(path), decode_times=CFTIME, decode_timedelta=False)


def header(path) -> dict:  # noqa: ANN001
    return store_meta(zarr.open_group(str(path), mode="r").attrs)


def same_reference(units_a: str, units_b: str, calendar: str) -> bool:
    """Two CF time units name the same unit and reference date ('... 00:00:00' or not)."""
    return units_a.split(" since ")[0] == units_b.split(" since ")[0] and cftime.num2date(
        0, units_a, calendar
    ) == cftime.num2date(0, units_b, calendar)


def only_files(folder) -> list[str]:  # noqa: ANN001
    """Everything in ``folder``, hidden temporary files included."""
    return sorted(os.listdir(folder))


def error_line(result) -> str:  # noqa: ANN001
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("climdiff: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def emulation_store(tmp_path_factory):  # noqa: ANN001, ANN201
    """2 members x 4 days from 0001-12-30 (crossing a year boundary) with the embedded model,
    unguided with 5 sampler steps so it takes about a second."""
    from climdiff.assets import embedded_bundle
    from climdiff.bundle import load_bundle
    from climdiff.rollout.engine import EmulateConfig, emulate

    bundle = load_bundle(embedded_bundle("turbulence32"))
    sampler = bundle.sampler.replace(guidance=0.0, steps=5)
    config = EmulateConfig(
        days=4, members=2, seed=3, start="0001-12-30", time_chunk=365, sampler=sampler, means=("monthly", "annual")
    )
    out = tmp_path_factory.mktemp("emu") / "run.zarr"
    return emulate(bundle, out, config, quiet=True, command="climdiff emulate (test)").path


@pytest.fixture(scope="module")
def forecast_like_store(tmp_path_factory):  # noqa: ANN001, ANN201
    """A complete climdiff store without a time dimension (init_time, lead, member, y, x)."""
    rng = np.random.default_rng(0)
    init = xr.DataArray(
        [cftime.DatetimeNoLeap(1, 1, 1), cftime.DatetimeNoLeap(1, 2, 1)],
        dims="init_time",
        attrs={"standard_name": "forecast_reference_time"},
    )
    ds = xr.Dataset(
        {
            "vorticity": (
                ("init_time", "lead", "member", "y", "x"),
                rng.standard_normal((2, 3, 2, 8, 8)).astype("float32"),
                {"units": "1", "long_name": "vorticity"},
            )
        },
        coords={
            "init_time": init,
            "lead": ("lead", np.arange(1, 4), {"units": "days", "long_name": "lead time"}),
            "member": ("member", np.arange(2), {"standard_name": "realization"}),
            "y": np.arange(8.0),
            "x": np.arange(8.0),
        },
        attrs={STORE_ATTR: {"kind": "forecast", "config": {"leads": 3}, "complete": True}, "flag": True},
    )
    out = tmp_path_factory.mktemp("fc") / "forecast.zarr"
    with quiet_zarr():
        ds.to_zarr(out, zarr_format=3, consolidated=True)
    return out


def test_training_store_round_trips(turbulence_store, tmp_path) -> None:
    folder = tmp_path / "nc"
    folder.mkdir()
    out = folder / "turb.nc"
    assert export_netcdf(turbulence_store, out) == [out]
    assert only_files(folder) == ["turb.nc"]  # the temporary file was renamed, nothing left over
    store, nc = open_store(turbulence_store), open_nc(out)
    xr.testing.assert_equal(nc, store)  # every variable and coordinate, values and dates
    assert "model_time" in nc.coords and isinstance(nc["time"].values[0], cftime.DatetimeNoLeap)
    assert nc.attrs["Conventions"] == "CF-1.10" and "climdiff export" in nc.attrs["history"]
    assert "climdiff" not in nc.attrs and json.loads(nc.attrs["climdiff_header"]) == header(turbulence_store)
    assert nc["time"].encoding["calendar"] == store["time"].encoding["calendar"] == "noleap"
    assert same_reference(nc["time"].encoding["units"], store["time"].encoding["units"], "noleap")
    for name in ("vorticity", "energy", "x", "y"):
        assert nc[name].attrs == store[name].attrs
    field = nc["vorticity"].encoding
    assert field["zlib"] and field["complevel"] == 4 and field["chunksizes"] == (1, 32, 32)
    assert np.isnan(field["_FillValue"]) and "_FillValue" not in nc["x"].encoding


def test_emulation_store_drops_resume_state_and_keeps_provenance(cli, emulation_store, tmp_path) -> None:
    out = tmp_path / "run.nc"
    result = cli("export", emulation_store, "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out}") and result.stdout.count("\n") == 1
    store, nc = open_store(emulation_store), open_nc(out)
    assert "resume_state" not in nc and "state_byte" not in nc.dims
    xr.testing.assert_equal(nc, store.drop_vars("resume_state"))
    assert nc["vorticity"].dims == ("member", "time", "y", "x") and nc["vorticity"].encoding["chunksizes"] == (
        1,
        1,
        32,
        32,
    )
    assert nc["member"].attrs["standard_name"] == "realization" and nc["time"].encoding["calendar"] == "noleap"
    assert nc["stopped_day"].dtype.kind == "i" and "_FillValue" not in nc["stopped_day"].encoding
    assert json.loads(nc.attrs["climdiff_header"]) == header(emulation_store)
    assert json.loads(nc.attrs["sampler"])["steps"] == 5 and isinstance(json.loads(nc.attrs["initial_dates"]), list)
    assert nc.attrs["seed"] == 3 and nc.attrs["Conventions"] == "CF-1.10"


def test_split_year_writes_every_day_once(cli, emulation_store, tmp_path) -> None:
    folder = tmp_path / "years"
    folder.mkdir()
    result = cli("export", emulation_store, "--out", folder / "run.nc", "--split", "year")
    assert result.exit_code == 0, result.stderr
    assert only_files(folder) == ["run_0001.nc", "run_0002.nc"]
    store = open_store(emulation_store)
    parts = [open_nc(folder / name) for name in only_files(folder)]
    for year, part in zip((1, 2), parts, strict=True):
        assert {t.year for t in part["time"].values} == {year}
        # the calendar means travel with their year: one month and one year in each file
        assert [t.year for t in part["time_monthly"].values] == [year] == [t.year for t in part["time_annual"].values]
        np.testing.assert_array_equal(part["days_annual"].values, [2])
        assert json.loads(part.attrs["climdiff_header"])["kind"] == "emulation"
    joined = xr.concat([part["vorticity"] for part in parts], dim="time")
    assert [t.isoformat() for t in joined["time"].values] == [t.isoformat() for t in store["time"].values]
    np.testing.assert_array_equal(joined.values, store["vorticity"].values)
    again = cli("export", emulation_store, "--out", folder / "run.nc", "--split", "year", "--overwrite", "--quiet")
    assert again.exit_code == 0, again.stderr
    assert "2 files" in again.stdout and only_files(folder) == ["run_0001.nc", "run_0002.nc"]


def test_variable_selection(cli, turbulence_store, tmp_path) -> None:
    out = tmp_path / "v.nc"
    result = cli("export", turbulence_store, "--out", out, "-v", "vorticity,energy", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert sorted(open_nc(out).data_vars) == ["energy", "vorticity"]
    unknown = error_line(cli("export", turbulence_store, "--out", tmp_path / "u.nc", "--variables", "nosuch"))
    assert "nosuch" in unknown and "available: " in unknown and not (tmp_path / "u.nc").exists()


def test_forecast_store_has_no_time_dimension(forecast_like_store, tmp_path) -> None:
    (out,) = export_netcdf(forecast_like_store, tmp_path / "fc.nc")
    nc = open_nc(out)
    assert nc["vorticity"].encoding["chunksizes"] == (1, 1, 1, 8, 8)
    assert nc["lead"].attrs["units"] == "days" and nc["lead"].dtype.kind == "i"  # not turned into timedeltas
    assert isinstance(nc["init_time"].values[0], cftime.DatetimeNoLeap) and nc.attrs["flag"] == "true"
    xr.testing.assert_equal(nc, open_store(forecast_like_store))
    with pytest.raises(ClimdiffError, match="needs a time dimension"):
        export_netcdf(forecast_like_store, tmp_path / "fc2.nc", split="year")


def test_refusals_are_one_line_errors(cli, turbulence_store, tmp_path) -> None:
    assert "does not exist" in error_line(cli("export", tmp_path / "missing.zarr", "--out", tmp_path / "a.nc"))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert "not a climdiff store" in error_line(cli("export", foreign, "--out", tmp_path / "b.nc"))
    assert not (tmp_path / "a.nc").exists() and not (tmp_path / "b.nc").exists()

    out = tmp_path / "c.nc"
    assert cli("export", turbulence_store, "--out", out, "--quiet").exit_code == 0
    before = out.stat().st_mtime_ns
    assert "use --overwrite" in error_line(cli("export", turbulence_store, "--out", out))
    assert out.stat().st_mtime_ns == before
    assert cli("export", turbulence_store, "--out", out, "--overwrite", "--quiet").exit_code == 0
    text = tmp_path / "notes.nc"
    text.write_text("not netCDF")
    assert "not a netCDF file" in error_line(cli("export", turbulence_store, "--out", text, "--overwrite"))
    assert text.read_text() == "not netCDF"
    assert "does not exist" in error_line(cli("export", turbulence_store, "--out", tmp_path / "no" / "d.nc"))
    assert "--split" in cli("export", turbulence_store, "--out", out, "--split", "month").stderr


def test_incomplete_store_is_refused(turbulence_store, tmp_path) -> None:
    partial = tmp_path / "partial.zarr"
    shutil.copytree(turbulence_store, partial)
    group = zarr.open_group(str(partial), mode="r+", use_consolidated=False)
    update_header(group, complete=False)
    consolidate(partial)
    with pytest.raises(StoreError, match="incomplete"):
        export_netcdf(partial, tmp_path / "p.nc")
    assert not (tmp_path / "p.nc").exists()


def test_interrupted_write_leaves_nothing(turbulence_store, tmp_path, monkeypatch) -> None:
    folder = tmp_path / "nc"
    folder.mkdir()

    def killed(self, path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        with open(path, "wb") as fh:
            fh.write(b"\x89HDF\r\n\x1a\n half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", killed)
    with pytest.raises(KeyboardInterrupt):
        export_netcdf(turbulence_store, folder / "x.nc")
    assert only_files(folder) == []


def test_attributes_netcdf_can_hold() -> None:
    assert netcdf_attribute({"a": [1, {"b": None}]}) == '{"a": [1, {"b": null}]}'
    assert netcdf_attribute(True) == "true" and netcdf_attribute(None) == "null"
    assert netcdf_attribute(["a", "b"]) == '["a", "b"]' and netcdf_attribute([]) == "[]"
    np.testing.assert_array_equal(netcdf_attribute([1, 2.5]), [1.0, 2.5])
    assert netcdf_attribute("text") == "text" and netcdf_attribute(3) == 3


# --- output metadata: CF 1.8 compliance and netCDF-serialisable stores ---------------------------


@pytest.fixture(scope="module")
def forecast_store(turbulence_store, tmp_path_factory):  # noqa: ANN001, ANN201
    """A real forecast store: 2 starts x 2 leads x 2 members of the embedded model, unguided."""
    from climdiff.assets import embedded_bundle
    from climdiff.bundle import load_bundle
    from climdiff.rollout.engine import EmulateConfig
    from climdiff.rollout.forecast import forecast, plan_forecast

    bundle = load_bundle(embedded_bundle("turbulence32"))
    config = EmulateConfig(days=2, members=2, seed=3, sampler=bundle.sampler.replace(guidance=0.0, steps=3))
    plan = plan_forecast(bundle, turbulence_store, config, starts=2, start_dates=None)
    return forecast(bundle, turbulence_store, tmp_path_factory.mktemp("fc") / "fc.zarr", plan, quiet=True).path


@pytest.fixture(scope="module")
def latlon_store(tmp_path_factory):  # noqa: ANN001, ANN201
    """A (member, time, lat, lon) precipitation store written by the rollout writer: latitude
    north to south, as a source may order it."""
    from climdiff.metadata import field_attrs, grid_coordinates
    from climdiff.rollout.writer import EmulationStore, MemberState, StoreLayout

    lat, lon = [67.5, 22.5, -22.5, -67.5], list(np.arange(8) * 45.0 + 22.5)
    grid = {"kind": "latlon", "dims": ["lat", "lon"], "shape": [4, 8], "lat": lat, "lon": lon}
    coords, coord_attrs = grid_coordinates(grid)
    field = field_attrs({"name": "precipitation", "units": "mm day-1"})
    layout = StoreLayout("precipitation", field, "noleap", coords, coord_attrs, (1, 4, 8))
    out = tmp_path_factory.mktemp("latlon") / "pr.zarr"
    attrs = {"title": "lat-lon test", "sampler": {"steps": 3}, "flag": True}
    units = "days since 2000-01-01"
    store = EmulationStore.create(
        out, layout, config={}, members=2, days=3, time_units=units, time_chunk=3, attrs=attrs
    )
    rng = np.random.default_rng(0)
    for member in range(2):
        state = MemberState(torch.zeros(2, 1, 4, 8), torch.Generator(), days_done=3)
        store.write_block(member, 0, rng.gamma(0.5, 4.0, (3, 4, 8)).astype(np.float32), state)
    store.finish(stopped_members=0)
    return out


def cf_failures(path, monkeypatch) -> list[str]:  # noqa: ANN001
    """The high-priority failures of the compliance checker's cf:1.8 suite on ``path``, run
    offline: any network connection (a standard-name table download) fails the test."""
    import socket

    from compliance_checker.base import BaseCheck
    from compliance_checker.runner import CheckSuite

    attempts = []

    def no_network(self, address):  # noqa: ANN001, ANN202
        attempts.append(address)
        raise OSError("no network in tests")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    CheckSuite.load_all_available_checkers()
    suite = CheckSuite()
    results, errors = suite.run_all(suite.load_dataset(str(path)), ["cf:1.8"], skip_checks=[])["cf:1.8"]
    assert not errors and not attempts, (errors, attempts)
    failed = [r for r in results if r.weight == BaseCheck.HIGH and r.value is not None and not passed(r.value)]
    return [f"{r.name}: {msg}" for r in failed for msg in r.msgs or ["(no message)"]]


def passed(value) -> bool:  # noqa: ANN001
    return bool(value) if isinstance(value, bool) else value[0] == value[1]


STORES = ["turbulence_store", "emulation_store", "forecast_store", "latlon_store"]


@pytest.mark.parametrize("name", STORES)
def test_export_passes_the_cf_checker(name, request, cli, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    out = tmp_path / "x.nc"
    result = cli("export", request.getfixturevalue(name), "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    failures = cf_failures(out, monkeypatch)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", STORES)
def test_stores_hold_what_netcdf_holds(name, request, tmp_path) -> None:  # noqa: ANN001
    path = request.getfixturevalue(name)
    store = open_store(path)
    for attrs in [store.attrs, *(var.attrs for var in store.variables.values())]:
        assert all(netcdf_value(v) for v in attrs.values()), attrs
    assert not [n for n, v in store.variables.items() if v.dtype == np.int64], "64-bit integers are not CF 1.8"
    unitless = [n for n, v in store.variables.items() if "units" not in v.attrs and "units" not in v.encoding]
    assert set(unitless) <= {"resume_state", "lat_bnds", "lon_bnds"}, unitless
    out = tmp_path / "direct.nc"
    xr.open_zarr(path).to_netcdf(out)  # what an xarray user does
    nc = xr.open_dataset(out, decode_times=CFTIME, decode_timedelta=False)
    assert store_meta(nc.attrs) == header(path) and nc.attrs.keys() == store.attrs.keys()
    xr.testing.assert_identical(nc.load(), store.load())


def netcdf_value(value) -> bool:  # noqa: ANN001
    """A string, a number or a list of numbers (what netCDF attributes hold)."""
    if isinstance(value, list):
        return all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in value)
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def test_latlon_coordinates_and_precipitation(latlon_store) -> None:
    ds = open_store(latlon_store)
    assert ds["precipitation"].dims == ("member", "time", "lat", "lon")
    precipitation = {"long_name": "precipitation", "units": "mm day-1", "cell_methods": "time: mean"}
    assert ds["precipitation"].attrs == {**precipitation, "standard_name": "lwe_precipitation_rate"}
    latitude = {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"}
    assert ds["lat"].attrs == {**latitude, "bounds": "lat_bnds"}
    assert ds["lon"].attrs["units"] == "degrees_east" and ds["lon"].attrs["axis"] == "X"
    assert list(ds["lat"].values) == [67.5, 22.5, -22.5, -67.5]  # the source's order is kept
    np.testing.assert_array_equal(ds["lat_bnds"].values, [[90, 45], [45, 0], [0, -45], [-45, -90]])
    np.testing.assert_array_equal(ds["lon_bnds"].values[[0, -1]], [[0, 45], [315, 360]])
    assert json.loads(ds.attrs["sampler"]) == {"steps": 3} and ds.attrs["flag"] == "true"


def test_grid_descriptions() -> None:
    from climdiff.metadata import grid_coordinates

    coords, attrs = grid_coordinates({"dims": ["y", "x"], "shape": [4, 2], "length": 8.0})
    np.testing.assert_array_equal(coords["y"], [0, 2, 4, 6])
    assert attrs["x"] == {"long_name": "x position", "units": "1"}  # no axis: not a place on Earth
    with pytest.raises(ClimdiffError, match="needs 3 lat values, it has 2"):
        grid_coordinates({"dims": ["lat", "lon"], "shape": [3, 2], "lat": [1.0, 2.0], "lon": [0.0, 1.0]})


def test_headers_of_older_stores_are_read(forecast_like_store, tmp_path) -> None:
    """Stores before format 2 hold the header as a dict: climdiff still reads and exports them."""
    from climdiff.zarr_io import read_header

    assert isinstance(zarr.open_group(str(forecast_like_store), mode="r").attrs[STORE_ATTR], dict)
    assert read_header(forecast_like_store).complete is True
    (out,) = export_netcdf(forecast_like_store, tmp_path / "old.nc")
    assert json.loads(open_nc(out).attrs["climdiff_header"])["config"] == {"leads": 3}
    assert open_nc(out)["lead"].dtype == np.int32  # 64-bit integers are narrowed on export

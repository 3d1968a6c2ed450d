"""`climdiff data import`: real NetCDF and Zarr files in each layout, unit and calendar -> daily stores.

Every expected daily value is computed by hand here from the numbers written into the files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cftime
import netCDF4
import numpy as np
import pytest
import xarray as xr

from climdiff.data.importing import run as importing_run
from climdiff.data.importing.regrid import make_regridder
from climdiff.data.importing.run import ImportRun, import_store
from climdiff.data.latlon import LatLonGrid
from climdiff.data.windows import FrameSource
from climdiff.errors import ClimdiffError
from climdiff.zarr_io import store_meta

HOUR = 3600
N_LAT, N_LON = 6, 8
# cell-centred, north to south; longitudes 0..360
LAT = 90.0 - (np.arange(N_LAT) + 0.5) * (180.0 / N_LAT)
LON = np.arange(N_LON) * (360.0 / N_LON)
SPLIT = {"train": "2000", "validation": "2001", "test": "2002"}


@dataclass
class Layout:
    """How one synthetic source is written: everything a real file may vary in."""

    var: str = "tp"
    units: str = "m"
    calendar: str = "standard"
    step_hours: int = 6
    dims: tuple[str, str, str] = ("valid_time", "latitude", "longitude")
    south_to_north: bool = False
    lon_180: bool = False
    lat: np.ndarray = field(default_factory=lambda: LAT)
    lon: np.ndarray = field(default_factory=lambda: LON)
    attrs: dict[str, str] = field(default_factory=dict)


def _seconds(layout: Layout, start: tuple[int, ...], steps: int) -> np.ndarray:
    """Seconds since 2000-01-01 of ``steps`` regular stamps from ``start`` in the layout's calendar."""
    t0 = cftime.date2num(cftime.datetime(*start, calendar=layout.calendar), "seconds since 2000-01-01", layout.calendar)
    return int(t0) + np.arange(steps, dtype=np.int64) * layout.step_hours * HOUR


def _values(steps: int, layout: Layout, seed: int = 0) -> np.ndarray:
    """Positive float32 values (time, lat, lon) in climdiff's orientation (north to south, lon 0..360)."""
    rng = np.random.default_rng(seed)
    return rng.gamma(0.4, 1.0, (steps, layout.lat.size, layout.lon.size)).astype(np.float32)


def write_netcdf(path: Path, layout: Layout, seconds: np.ndarray, values: np.ndarray, fmt: str = "NETCDF4") -> Path:
    """A real NetCDF file; ``values`` are in climdiff's orientation and are reordered to the layout's."""
    lat, lon, data = layout.lat, layout.lon, values
    if layout.south_to_north:
        lat, data = lat[::-1], data[:, ::-1]
    if layout.lon_180:
        lon = np.where(lon >= 180, lon - 360, lon)
        order = np.argsort(lon)
        lon, data = lon[order], data[:, :, order]
    t, y, x = layout.dims
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.createDimension(t, None)
        nc.createDimension(y, lat.size)
        nc.createDimension(x, lon.size)
        time = nc.createVariable(t, "f8", (t,))
        time.units, time.calendar = "hours since 2000-01-01 00:00:00", layout.calendar
        time[:] = seconds / HOUR
        nc.createVariable(y, "f4", (y,)).setncatts({"units": "degrees_north"})
        nc[y][:] = lat
        nc.createVariable(x, "f4", (x,)).setncatts({"units": "degrees_east"})
        nc[x][:] = lon
        var = nc.createVariable(layout.var, "f4", (t, y, x), fill_value=np.float32(-9999.0))
        var.setncatts({"units": layout.units, **layout.attrs})
        var[:] = data
    return path


def stored(out: Path, name: str = "precipitation") -> xr.DataArray:
    """The imported field, times as cftime dates in the store's calendar."""
    return xr.open_zarr(out, consolidated=True, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))[name].load()


def header(out: Path) -> dict:
    return store_meta(xr.open_zarr(out, consolidated=True).attrs)


def run(sources: list[Path], var: str = "tp", **kwargs) -> ImportRun:
    return ImportRun(tuple(str(s) for s in sources), var, SPLIT["train"], SPLIT["validation"], SPLIT["test"], **kwargs)


# ---- accumulations (ERA5 layout) ------------------------------------------------------------


def test_hourly_accumulations_in_metres_from_two_overlapping_files(tmp_path: Path) -> None:
    """ERA5's hourly ``tp`` (m per hour, period ending), split over two files that overlap by 3 hours."""
    layout = Layout(step_hours=1)
    steps = 24 * 370 + 5  # starts 01:00 on 2000-12-30, so the first day is complete; ends in a partial day
    seconds = _seconds(layout, (2000, 12, 30, 1), steps)
    values = _values(steps, layout) * np.float32(1e-3)
    a = write_netcdf(tmp_path / "b_first.nc", layout, seconds[:4000], values[:4000])
    b = write_netcdf(tmp_path / "a_second.nc", layout, seconds[3997:], values[3997:], fmt="NETCDF3_64BIT_OFFSET")
    out = tmp_path / "tp.zarr"
    with pytest.warns(UserWarning) as caught:
        import_store(out, run([b, a], chunk=16), quiet=True)  # any order: sorted by time
    messages = " ".join(str(w.message) for w in caught)
    assert "overlaps the previous file" in messages and "incomplete day" in messages

    days = 370
    # by hand: the value stamped t covers (t - 1 h, t]; the day is the sum of its 24 hours, in mm
    expected = values[: days * 24].astype(np.float64).reshape(days, 24, N_LAT, N_LON).sum(axis=1) * 1000.0
    got = stored(out)
    assert got.shape == (days, N_LAT, N_LON)
    np.testing.assert_allclose(got.values, expected, rtol=2e-6)
    dates = got["time"].values
    assert dates[0] == cftime.DatetimeGregorian(2000, 12, 30) and dates[-1] == cftime.DatetimeGregorian(2002, 1, 3)

    meta = header(out)
    assert meta["complete"] and meta["variable"] == "precipitation" and meta["units"] == "mm day-1"
    assert meta["transform"] == {"name": "log_minmax", "offset": 0.1, "offset_units": "mm day-1"}
    assert meta["calendar"] == "standard"
    assert meta["grid"] == LatLonGrid(N_LAT, N_LON).meta()
    assert meta["split"] == {"train": [0, 2], "validation": [2, 367], "test": [367, 370]}
    stats = meta["stats"]["precipitation"]
    assert stats["max"] == pytest.approx(float(got.values[:2].max()))
    assert stats["mean"] == pytest.approx(float(got.values[:2].astype(np.float64).mean()))
    attrs = got.attrs
    assert attrs["standard_name"] == "lwe_precipitation_rate" and attrs["cell_methods"] == "time: mean"


def test_store_feeds_training_through_the_log_transform(tmp_path: Path, cli: Callable) -> None:
    layout = Layout(var="pr", units="kg m-2 s-1", step_hours=24, dims=("time", "lat", "lon"))
    seconds = _seconds(layout, (2000, 12, 25), 380)
    values = _values(380, layout) * np.float32(1e-4)
    values[:, 0, :3] = 0.0  # dry cells
    values[9, 1, 1] = -1e-12  # packing noise, as in reanalyses: set to 0 with a warning
    src = write_netcdf(tmp_path / "pr_day.nc", layout, seconds, values)
    out = tmp_path / "pr.zarr"
    result = cli(
        "data",
        "import",
        str(src),
        "--var",
        "pr",
        "--out",
        str(out),
        "--train",
        "2000",
        "--val",
        "2001",
        "--test",
        "2002",
        "--quiet",
    )
    assert result.exit_code == 0, result.stderr
    assert "380 days of precipitation (lat=6 x lon=8)" in result.stdout
    assert "set 1 negative daily precipitation value(s)" in result.stderr
    info = cli("data", "info", str(out), "--json")
    assert json.loads(info.stdout)["grid"] == {"lat": N_LAT, "lon": N_LON}

    np.testing.assert_allclose(stored(out).values, np.maximum(values, 0) * 86400.0, rtol=1e-6)  # the stamp's day
    assert stored(out).values[9, 1, 1] == 0.0
    frames = FrameSource(out, "validation")
    z = frames.frames(list(range(len(frames)))).numpy()
    assert z.min() >= -1.0 - 1e-6 and z.max() <= 1.5  # training range maps to [-1, 1]
    train = FrameSource(out, "train").frames(list(range(7))).numpy()
    assert train.min() == pytest.approx(-1.0, abs=1e-6) and train.max() == pytest.approx(1.0, abs=1e-6)
    back = frames.destandardise(frames[0]).numpy()[0]
    np.testing.assert_allclose(back, stored(out).values[7], rtol=1e-5, atol=1e-7)


# ---- rates, orientations and calendars --------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "units", "factor", "south_to_north", "lon_180"),
    [
        ("noleap", "kg m-2 s-1", 86400.0, True, True),
        ("360_day", "mm/h", 24.0, True, False),
        ("julian", "m s-1", 86400.0 * 1000, False, True),
        ("proleptic_gregorian", "mm day-1", 1.0, False, False),
        ("gregorian", "kg/m2/s", 86400.0, True, True),
    ],
)
def test_rates_are_averaged_in_every_calendar_and_orientation(
    tmp_path: Path, calendar: str, units: str, factor: float, south_to_north: bool, lon_180: bool
) -> None:
    layout = Layout(
        var="pr",
        units=units,
        calendar=calendar,
        step_hours=6,
        dims=("time", "lat", "lon"),
        south_to_north=south_to_north,
        lon_180=lon_180,
    )
    steps = 4 * 368
    seconds = _seconds(layout, (2000, 12, 30, 3), steps)  # instants 03, 09, 15, 21 h: each in its own day
    values = _values(steps, layout, seed=3) * np.float32(1e-3)
    src = write_netcdf(tmp_path / "pr.nc", layout, seconds, values)
    out = tmp_path / "pr.zarr"
    import_store(out, run([src], var="pr", chunk=64), quiet=True)
    expected = values.astype(np.float64).reshape(368, 4, N_LAT, N_LON).mean(axis=1) * factor
    got = stored(out)
    np.testing.assert_allclose(got.values, expected, rtol=2e-6)
    meta = header(out)
    kept = {"gregorian": "standard"}.get(calendar, calendar)
    assert meta["calendar"] == kept and got["time"].encoding["calendar"] == kept
    first = got["time"].values[0]
    assert (first.year, first.month, first.day) == (2000, 12, 30)
    assert LatLonGrid.from_coordinates(got["lat"].values, got["lon"].values) == LatLonGrid(N_LAT, N_LON)


def test_instantaneous_field_is_a_daily_mean_with_standardization(tmp_path: Path) -> None:
    layout = Layout(var="t2m", units="K", step_hours=12, attrs={"long_name": "2 metre temperature"})
    seconds = _seconds(layout, (2000, 12, 31), 2 * 368)
    values = 250.0 + _values(2 * 368, layout, seed=4) * 10
    src = write_netcdf(tmp_path / "t2m.nc", layout, seconds, values)
    out = tmp_path / "t2m.zarr"
    import_store(out, run([src], var="t2m"), quiet=True)
    got = stored(out, "t2m")
    np.testing.assert_allclose(got.values, values.astype(np.float64).reshape(368, 2, N_LAT, N_LON).mean(1), rtol=1e-6)
    meta = header(out)
    assert meta["transform"] == {"name": "standardize"} and meta["units"] == "K"
    assert got.attrs["cell_methods"] == "time: mean" and got.attrs["long_name"] == "2 metre temperature"


def test_zarr_input_and_sum_of_an_instantaneous_field_on_request(tmp_path: Path) -> None:
    layout = Layout(var="tp", units="mm", step_hours=6)
    seconds = _seconds(layout, (2000, 12, 31, 6), 4 * 368)
    values = _values(4 * 368, layout, seed=5)
    nc = write_netcdf(tmp_path / "tp.nc", layout, seconds, values)
    zarr_src = tmp_path / "tp_src.zarr"
    xr.open_dataset(nc).to_zarr(zarr_src, zarr_format=2)  # as most Zarr data in the wild
    out = tmp_path / "tp.zarr"
    import_store(out, run([zarr_src], how="sum"), quiet=True)
    expected = values.astype(np.float64).reshape(368, 4, N_LAT, N_LON).sum(axis=1)
    np.testing.assert_allclose(stored(out).values, expected, rtol=1e-6)


# ---- grids -------------------------------------------------------------------------------------


def _area_mean(values: np.ndarray, lat_edges: np.ndarray) -> np.ndarray:
    weights = np.abs(np.diff(np.sin(np.radians(lat_edges))))
    return (values * weights[:, None]).sum(axis=-2).mean(axis=-1) / weights.sum()


def test_rows_on_the_poles_are_remapped_and_coarsened_conserving_area_means(tmp_path: Path) -> None:
    """ERA5-like rows on the poles (13 rows at 15 degrees, 24 longitudes from 0): half cells at the poles."""
    lat = np.linspace(90, -90, 13)
    lon = np.arange(24) * 15.0
    layout = Layout(step_hours=24, lat=lat, lon=lon, dims=("time", "lat", "lon"), units="mm", south_to_north=True)
    seconds = _seconds(layout, (2000, 12, 31), 368)
    values = _values(368, layout, seed=6)
    src = write_netcdf(tmp_path / "poles.nc", layout, seconds, values)
    source_edges = np.concatenate([[90.0], lat[:-1] - 7.5, [-90.0]])
    source_mean = _area_mean(values.astype(np.float64), source_edges)
    for flags, shape in (({}, (12, 24)), ({"factor": 2}, (6, 12)), ({"resolution": 45.0}, (4, 8))):
        out = tmp_path / f"poles{shape[0]}.zarr"
        import_store(out, run([src], **flags), quiet=True)
        got = stored(out)
        assert got.shape[1:] == shape
        grid = LatLonGrid.from_coordinates(got["lat"].values, got["lon"].values)
        edges = np.append(grid.lat_bounds()[:, 0], -90.0)
        np.testing.assert_allclose(_area_mean(got.values.astype(np.float64), edges), source_mean, rtol=1e-5)
    # by hand for the first output row (90..75 N): the polar half cell and half of the 75 N row, by area
    regrid = make_regridder(lat, lon)
    w_pole = np.sin(np.radians(90)) - np.sin(np.radians(82.5))
    w_next = np.sin(np.radians(82.5)) - np.sin(np.radians(75))
    np.testing.assert_allclose(regrid.lat_weights[0, :2], [w_pole / (w_pole + w_next), w_next / (w_pole + w_next)])
    # a block of k x k cell-centred cells: area-weighted in latitude, plain mean in longitude
    block = make_regridder(LAT, LON, factor=2)
    field = _values(1, Layout(), seed=7).astype(np.float64)
    w = np.abs(np.diff(np.sin(np.radians(90.0 - np.arange(3) * 30.0))))
    expected = (field[0, :2, :2].mean(axis=1) * w).sum() / w.sum()
    assert block(field)[0, 0, 0] == pytest.approx(expected)
    assert block.grid.lon0 == pytest.approx(22.5)  # the block's centre: its west edge is the source's


def test_a_repeated_cyclic_longitude_is_left_out() -> None:
    field = _values(2, Layout(), seed=9).astype(np.float64)
    lon_180 = np.append(LON - 180.0, 180.0)  # -180 .. 180: the last column repeats the first
    cyclic = np.concatenate([field[:, :, N_LON // 2 :], field[:, :, : N_LON // 2 + 1]], axis=2)
    regrid = make_regridder(LAT, lon_180)
    assert regrid.grid == LatLonGrid(N_LAT, N_LON)
    np.testing.assert_array_equal(regrid(cyclic), field)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"factor": 4}, "cannot be coarsened"),
        ({"resolution": 7.0}, "whole multiples"),
        ({"resolution": 60.0}, "cannot be coarsened"),
    ],
)
def test_coarsening_that_does_not_divide_the_grid_is_refused(flags: dict, message: str) -> None:
    with pytest.raises(ClimdiffError, match=message):
        make_regridder(LAT, LON, **flags)


# ---- resume ------------------------------------------------------------------------------------


def test_interrupted_import_resumes_to_the_same_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = Layout(step_hours=6)
    seconds = _seconds(layout, (2000, 12, 31, 6), 4 * 368)
    src = write_netcdf(tmp_path / "tp.nc", layout, seconds, _values(4 * 368, layout, seed=8) * np.float32(1e-3))
    whole, parts = tmp_path / "whole.zarr", tmp_path / "parts.zarr"
    import_store(whole, run([src], chunk=32), quiet=True)

    def interrupt(days: int) -> None:
        if days == 96:
            raise KeyboardInterrupt

    monkeypatch.setattr(importing_run, "READ_BUDGET", 5 * 4 * 8 * N_LAT * N_LON)  # read 5 days at a time: same days
    with pytest.raises(KeyboardInterrupt):
        import_store(parts, run([src], chunk=32), quiet=True, after_commit=interrupt)
    assert not header(parts)["complete"]
    assert stored(parts).shape[0] == 96
    import_store(parts, run([src], chunk=32), quiet=True)
    np.testing.assert_array_equal(stored(parts).values, stored(whole).values)
    assert header(parts)["stats"] == header(whole)["stats"]
    with pytest.raises(ClimdiffError, match="complete"):
        import_store(parts, run([src], chunk=32), quiet=True)


# ---- bad inputs: one line, nothing written ------------------------------------------------------


def _bad_inputs(tmp_path: Path, case: str) -> tuple[list[Path], dict]:
    layout = Layout(step_hours=6)
    seconds = _seconds(layout, (2000, 12, 31, 6), 4 * 368)
    values = _values(4 * 368, layout) * np.float32(1e-3)
    path = tmp_path / "in.nc"
    if case == "missing values":
        values[500, 2, 3] = np.nan
        return [write_netcdf(path, layout, seconds, values)], {}
    if case == "duplicated time":
        seconds[10] = seconds[9]
    if case == "not increasing":
        seconds[10], seconds[11] = seconds[11], seconds[10]
    if case == "gap":
        return [write_netcdf(path, layout, np.delete(seconds, 40), np.delete(values, 40, axis=0))], {}
    if case == "mixed calendars":
        other = Layout(step_hours=6, calendar="noleap")
        return [
            write_netcdf(path, layout, seconds[:800], values[:800]),
            write_netcdf(tmp_path / "b.nc", other, seconds[800:], values[800:]),
        ], {}
    if case == "mixed units":
        other = Layout(step_hours=6, units="mm")
        return [
            write_netcdf(path, layout, seconds[:800], values[:800]),
            write_netcdf(tmp_path / "b.nc", other, seconds[800:], values[800:]),
        ], {}
    if case == "ambiguous units":
        layout.units = "K"
    if case == "no variable":
        return [write_netcdf(path, layout, seconds, values)], {"var": "precip"}
    if case == "wrong how":
        return [write_netcdf(path, layout, seconds, values)], {"how": "mean"}
    if case == "years":
        return [write_netcdf(path, layout, seconds, values)], {"test": "2005-2010"}
    return [write_netcdf(path, layout, seconds, values)], {}


BAD = {
    "missing values": "missing values",
    "duplicated time": "time is duplicated",
    "not increasing": "time is not increasing",
    "gap": "gap in the inputs",
    "mixed calendars": "mixed calendars",
    "mixed units": "mixed units",
    "ambiguous units": "neither a precipitation amount",
    "no variable": "has no variable 'precip'",
    "wrong how": "not --how mean",
    "years": "hold no imported day",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inputs_are_refused_in_one_line_with_nothing_written(tmp_path: Path, cli: Callable, case: str) -> None:
    sources, flags = _bad_inputs(tmp_path, case)
    years = {"train": "2000", "val": "2001", "test": flags.get("test", "2002")}
    args = [
        "data",
        "import",
        *map(str, sources),
        "--var",
        flags.get("var", "tp"),
        "--out",
        str(tmp_path / "o.zarr"),
        "--quiet",
        "--chunk",
        "64",
        *(["--how", flags["how"]] if "how" in flags else []),
    ]
    for name, value in years.items():
        args += [f"--{name}", value]
    result = cli(*args)
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if not line.startswith("climdiff: warning")]
    assert len(lines) == 1 and BAD[case] in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o.zarr").exists()


def test_real_ncar_file_is_refused_in_one_line_when_installed(tmp_path: Path) -> None:
    """meccatemp.cdf (Debian's libncarg-data), a real netCDF file whose time axis has no reference date."""
    path = Path("/usr/share/ncarg/data/cdf/meccatemp.cdf")
    if not path.exists():
        pytest.skip("libncarg-data is not installed")
    with pytest.raises(ClimdiffError, match="cannot date the steps"):
        import_store(tmp_path / "t.zarr", run([path], var="t"), quiet=True)
    assert not (tmp_path / "t.zarr").exists()

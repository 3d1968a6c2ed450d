"""The shared lat-lon grid description: convention, bounds, round trips through a real store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from climdiff.data.latlon import LatLonGrid
from climdiff.data.store import AppendableStore, TimeVariable
from climdiff.errors import ClimdiffError
from climdiff.metadata import grid_coordinates


def test_regular_grid_is_cell_centred_north_to_south() -> None:
    grid = LatLonGrid(32, 64)
    assert grid.lat[0] == pytest.approx(87.1875) and grid.lat[-1] == pytest.approx(-87.1875)
    assert np.all(np.diff(grid.lat) < 0)
    assert grid.lon[0] == 0.0 and grid.lon[-1] == pytest.approx(354.375)
    bounds = grid.lat_bounds()
    assert bounds[0, 0] == 90.0 and bounds[-1, 1] == -90.0
    np.testing.assert_allclose(bounds[1:, 0], bounds[:-1, 1])  # contiguous cells
    lon_bounds = grid.lon_bounds()
    assert lon_bounds[-1, 1] - lon_bounds[0, 0] == pytest.approx(360.0)
    # the cells tile the sphere: sum of exact cell areas is 4 pi
    area = (np.sin(np.deg2rad(bounds[:, 0])) - np.sin(np.deg2rad(bounds[:, 1])))[:, None] * np.deg2rad(grid.dlon)
    assert area.sum() * grid.n_lon == pytest.approx(4 * np.pi)


def test_stores_and_rollout_stores_get_the_same_coordinates_from_the_grid_description() -> None:
    grid = LatLonGrid(16, 32, lon0=2.8125)
    values, attrs = grid_coordinates(grid.meta())
    np.testing.assert_array_equal(values["lat"], grid.lat)
    np.testing.assert_array_equal(values["lon"], grid.lon)
    assert attrs["lat"]["units"] == "degrees_north" and attrs["lon"]["bounds"] == "lon_bnds"
    np.testing.assert_allclose(grid.lon_bounds()[:, 0], grid.lon - grid.dlon / 2)


def test_meta_and_coordinates_round_trip() -> None:
    grid = LatLonGrid(18, 36, lon0=5.0)
    assert LatLonGrid.from_meta(grid.meta()) == grid
    assert LatLonGrid.from_coordinates(grid.lat.astype(np.float32), grid.lon.astype(np.float32)) == grid


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (LatLonGrid(8, 16).lat[::-1], LatLonGrid(8, 16).lon),  # south to north: importers normalise first
        (LatLonGrid(8, 16).lat, LatLonGrid(8, 16).lon - 180.0),  # -180..180
        (np.linspace(90, -90, 9), LatLonGrid(8, 16).lon),  # rows on the poles
        (LatLonGrid(8, 16).lat, np.arange(15) * 24.0),  # odd number of longitudes
    ],
)
def test_from_coordinates_refuses_other_conventions(lat: np.ndarray, lon: np.ndarray) -> None:
    with pytest.raises(ClimdiffError):
        LatLonGrid.from_coordinates(lat, lon)


def test_coordinates_written_to_a_store_decode_as_cf(tmp_path: Path) -> None:
    grid = LatLonGrid(8, 16)
    out = tmp_path / "g.zarr"
    AppendableStore.create(
        out,
        kind="test",
        config={},
        attrs={},
        coords=grid.coordinates(),
        variables=[TimeVariable("precipitation", dims=("lat", "lon"), shape=grid.shape)],
        time_chunk=4,
    )
    ds = xr.open_zarr(out)
    assert ds["lat_bnds"].dims == ("lat", "bnds") and ds["lon_bnds"].dims == ("lon", "bnds")
    assert ds["lat"].attrs["units"] == "degrees_north" and ds["lat"].attrs["bounds"] == "lat_bnds"
    np.testing.assert_array_equal(ds["lat"].values, grid.lat)
    assert ds["precipitation"].dims == ("time", "lat", "lon")

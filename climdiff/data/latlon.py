"""Regular latitude-longitude grids: the one description that importers, the lat-lon generator,
the stores, the models and evaluation share.

climdiff's convention for every lat-lon store it writes (importers normalise to it):

* cell-centred latitudes, equally spaced, **north to south** (row 0 is the northernmost row, as
  in ERA5 and as an image is drawn); no row sits on a pole, which is what the networks' pole
  padding (:mod:`climdiff.models.padding`) assumes;
* equally spaced longitudes covering the full circle, ascending, in [0, 360), an even number of
  them (the pole padding shifts rows by half the circle);
* CF coordinates ``lat``/``lon`` with ``bounds`` variables ``lat_bnds``/``lon_bnds`` (dims
  ``(lat, bnds)`` / ``(lon, bnds)``), made by :func:`climdiff.metadata.grid_coordinates` as for
  every store climdiff writes.

The store header's ``grid`` entry (:meth:`LatLonGrid.meta`) records the grid, so that bundles can
check that a model meets the data it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from climdiff.data.store import Coordinate
from climdiff.errors import ClimdiffError
from climdiff.metadata import BOUNDS_DIM, cell_bounds, grid_coordinates, regular_latlon_centres

GRID_KIND = "latlon"
LAT_ORDER = "north_to_south"
_TOLERANCE = 1e-6  # degrees: coordinates read from files are often float32


@dataclass(frozen=True)
class LatLonGrid:
    """A regular, cell-centred global grid in climdiff's convention (see the module docstring)."""

    n_lat: int
    n_lon: int
    lon0: float = 0.0  # the first longitude centre, degrees east, in [0, 360 / n_lon)

    def __post_init__(self) -> None:
        if self.n_lat < 2 or self.n_lon < 4 or self.n_lon % 2:
            raise ClimdiffError(
                f"a lat-lon grid needs at least 2 latitudes and an even number (>= 4) of longitudes, "
                f"got {self.n_lat} x {self.n_lon}"
            )
        if not 0.0 <= self.lon0 < self.dlon:
            raise ClimdiffError(f"the first longitude must lie in [0, {self.dlon}), got {self.lon0}")

    @property
    def dlat(self) -> float:
        return 180.0 / self.n_lat

    @property
    def dlon(self) -> float:
        return 360.0 / self.n_lon

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_lat, self.n_lon)

    @property
    def lat(self) -> np.ndarray:
        """Cell-centre latitudes, degrees north, north to south."""
        return regular_latlon_centres(self.n_lat, self.n_lon, self.lon0)[0]

    @property
    def lon(self) -> np.ndarray:
        """Cell-centre longitudes, degrees east, ascending from ``lon0``."""
        return regular_latlon_centres(self.n_lat, self.n_lon, self.lon0)[1]

    def lat_bounds(self) -> np.ndarray:
        """(n_lat, 2) cell edges, northern edge first (so each row follows the coordinate's order)."""
        return cell_bounds(self.lat, "lat")

    def lon_bounds(self) -> np.ndarray:
        """(n_lon, 2) cell edges, western edge first."""
        return cell_bounds(self.lon, "lon")

    def coordinates(self) -> list[Coordinate]:
        """The CF coordinates and their bounds, ready for a store (the attributes every climdiff
        store gives a lat-lon grid)."""
        values, attrs = grid_coordinates(self.meta())
        coords = [Coordinate(dim, values[dim], attrs[dim]) for dim in ("lat", "lon")]
        coords += [
            Coordinate(
                attrs[dim]["bounds"],
                cell_bounds(values[dim], dim),
                {"units": attrs[dim]["units"]},
                dims=(dim, BOUNDS_DIM),
            )
            for dim in ("lat", "lon")
        ]
        return coords

    def meta(self) -> dict[str, Any]:
        """The ``grid`` entry of a store header or bundle (JSON-ready)."""
        return {
            "kind": GRID_KIND,
            "dims": ["lat", "lon"],
            "shape": [self.n_lat, self.n_lon],
            "lat_order": LAT_ORDER,
            "lon0": self.lon0,
            "resolution_deg": [self.dlat, self.dlon],
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> LatLonGrid:
        """Inverse of :meth:`meta`."""
        if meta.get("kind") != GRID_KIND:
            raise ClimdiffError(f"not a lat-lon grid description: {meta.get('kind')!r}")
        n_lat, n_lon = (int(n) for n in meta["shape"])
        return cls(n_lat, n_lon, float(meta.get("lon0", 0.0)))

    @classmethod
    def from_coordinates(cls, lat: np.ndarray, lon: np.ndarray) -> LatLonGrid:
        """The grid whose centres are ``lat`` (north to south) and ``lon`` (ascending, [0, 360)).

        Refuses coordinates that are not in climdiff's convention; importers normalise first.
        """
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        if lat.ndim != 1 or lon.ndim != 1 or lat.size < 2 or lon.size < 4:
            raise ClimdiffError("lat and lon must be 1-D coordinates with at least 2 and 4 points")
        grid = cls(lat.size, lon.size, float(lon[0]) % (360.0 / lon.size))
        if not np.allclose(lat, grid.lat, atol=_TOLERANCE * 180):
            raise ClimdiffError(
                "latitudes are not regular cell centres from north to south "
                f"(expected {grid.lat[0]:g}, {grid.lat[1]:g}, ..., got {lat[0]:g}, {lat[1]:g}, ...)"
            )
        if not np.allclose(lon, grid.lon, atol=_TOLERANCE * 360):
            raise ClimdiffError(
                f"longitudes are not {lon.size} equally spaced values ascending over the full circle from "
                f"{grid.lon0:g} (got {lon[0]:g}, {lon[1]:g}, ..., {lon[-1]:g})"
            )
        return grid

"""From a source's lat-lon grid to climdiff's convention, optionally coarser, conserving area means.

Sources may run south to north or north to south, with longitudes in -180..180 or 0..360, and
their latitude rows may be cell centres (``n * d = 180``) or sit on the poles (``(n - 1) * d =
180``, as ERA5's 721 rows at 0.25 degrees or 181 at 1 degree). Either way each source value is
taken as the mean over its cell (for rows on the poles the two polar cells are half cells, from
the pole to half a spacing away) and the output cell's value is the area-weighted mean of the
source cells it overlaps, with exact spherical areas (proportional to the difference of sin(lat)
across a cell times its longitude width). That one rule covers:

* reordering only (identity weights, values unchanged bit for bit);
* rows on the poles -> cell centres: each output row is the area-weighted mean of the two half
  rows it overlaps;
* ``--factor k``: k x k blocks of source cells (area-weighted in latitude);
* ``--grid D``: the same with ``k`` such that the output has 180/D x 360/D cells, refused unless it
  divides the source.

The output's first cell begins at the source's first cell's western edge, so blocks line up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from climdiff.data.latlon import LatLonGrid
from climdiff.errors import ClimdiffError

_TOLERANCE = 1e-4  # degrees: coordinates in files are often float32


@dataclass(frozen=True)
class Regridder:
    """Maps (time, lat, lon) fields in the source's order to a :class:`LatLonGrid`."""

    grid: LatLonGrid
    flip_lat: bool  # the source runs south to north
    lon_order: np.ndarray  # source columns in ascending [0, 360) order
    lat_weights: np.ndarray | None  # (n_lat, n_src_lat); None: rows unchanged
    lon_weights: np.ndarray | None  # (n_src_lon, n_lon); None: columns unchanged
    pole_rows: bool

    def __call__(self, fields: np.ndarray) -> np.ndarray:
        values = fields[:, ::-1] if self.flip_lat else fields
        values = values[:, :, self.lon_order]
        if self.lat_weights is not None:
            values = self.lat_weights @ values  # broadcast over time
        if self.lon_weights is not None:
            values = values @ self.lon_weights
        return values

    def describe(self) -> dict[str, object]:
        """What was done, for the store header."""
        return {
            "lat_flipped": self.flip_lat,
            "lon_rolled": bool(np.any(self.lon_order != np.arange(self.lon_order.size))),
            "source_rows_on_poles": self.pole_rows,
            "method": "identity" if self.lat_weights is None and self.lon_weights is None else "conservative",
        }


def overlap_weights(source_edges: np.ndarray, target_edges: np.ndarray) -> np.ndarray:
    """(n_target, n_source) share of each target cell covered by each source cell.

    Edges are in a measure in which length is area (sin(lat) for latitude, degrees for longitude)
    and may run either way; each row sums to 1.
    """
    s_lo, s_hi = np.minimum(source_edges[:-1], source_edges[1:]), np.maximum(source_edges[:-1], source_edges[1:])
    t_lo, t_hi = np.minimum(target_edges[:-1], target_edges[1:]), np.maximum(target_edges[:-1], target_edges[1:])
    overlap = np.clip(np.minimum(t_hi[:, None], s_hi[None]) - np.maximum(t_lo[:, None], s_lo[None]), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def _source_lat_edges(lat: np.ndarray) -> tuple[np.ndarray, bool]:
    """North-to-south cell edges of north-to-south latitudes, and whether rows sit on the poles."""
    n = lat.size
    for pole_rows, cells in ((False, n), (True, n - 1)):
        d = 180.0 / cells
        expected = (90.0 - np.arange(n) * d) if pole_rows else (90.0 - (np.arange(n) + 0.5) * d)
        if np.allclose(lat, expected, atol=_TOLERANCE):
            if pole_rows:
                return np.concatenate([[90.0], expected[:-1] - d / 2, [-90.0]]), True
            return 90.0 - np.arange(n + 1) * d, False
    raise ClimdiffError(
        f"the {n} latitudes ({lat[0]:g}, {lat[1]:g}, ..., {lat[-1]:g}) are not a regular global grid "
        "(cell centres, or rows on both poles); regional and Gaussian grids are not supported"
    )


def _lon_order(lon: np.ndarray) -> tuple[np.ndarray, float]:
    """The column order that makes longitudes ascend in [0, 360), and the first cell's western edge.

    A last column that repeats the first one a full turn later (-180 and 180, 0 and 360: the
    "cyclic point" of plotting packages) is left out.
    """
    columns = lon.size - 1 if lon.size > 2 and abs(lon[-1] - lon[0] - 360.0) < _TOLERANCE else lon.size
    wrapped = np.mod(lon[:columns], 360.0)
    order = np.argsort(wrapped, kind="stable")
    ordered = wrapped[order]
    d = 360.0 / columns
    if not np.allclose(np.diff(ordered), d, atol=_TOLERANCE):
        raise ClimdiffError(
            f"the {lon.size} longitudes ({lon[0]:g}, {lon[1]:g}, ..., {lon[-1]:g}) are not equally spaced over the "
            "full circle; regional grids are not supported"
        )
    return order, float(ordered[0]) - d / 2


def _target_shape(cells: int, n_lon: int, factor: int | None, resolution: float | None) -> tuple[int, int]:
    if factor is not None and resolution is not None:
        raise ClimdiffError("give --factor or --grid, not both")
    if resolution is not None:
        n_lat_f, n_lon_f = 180.0 / resolution, 360.0 / resolution
        if resolution <= 0 or abs(n_lat_f - round(n_lat_f)) > 1e-6 or abs(n_lon_f - round(n_lon_f)) > 1e-6:
            raise ClimdiffError(f"--grid {resolution:g}: 180 and 360 must be whole multiples of it")
        target = (round(n_lat_f), round(n_lon_f))
    elif factor is not None:
        if factor < 1:
            raise ClimdiffError(f"--factor must be a positive integer, got {factor}")
        target = (cells // factor, n_lon // factor) if cells % factor == 0 and n_lon % factor == 0 else (0, 0)
    else:
        return cells, n_lon
    if target[0] < 1 or target[1] < 1 or cells % target[0] or n_lon % target[1]:
        wanted = f"--factor {factor}" if factor is not None else f"--grid {resolution:g}"
        raise ClimdiffError(
            f"the source grid ({cells} x {n_lon} cells) cannot be coarsened with {wanted}: "
            "each output cell must cover a whole block of source cells"
        )
    return target


def make_regridder(
    lat: np.ndarray, lon: np.ndarray, *, factor: int | None = None, resolution: float | None = None
) -> Regridder:
    """The map from a source's coordinates to climdiff's grid (``--factor k`` or ``--grid D`` to coarsen)."""
    lat = np.asarray(lat, dtype=np.float64)
    flip = lat.size > 1 and lat[0] < lat[-1]
    lat_edges, pole_rows = _source_lat_edges(lat[::-1] if flip else lat)
    order, west = _lon_order(np.asarray(lon, dtype=np.float64))  # source columns, cyclic repeat left out
    cells = lat.size - 1 if pole_rows else lat.size  # rows on the poles span 180 degrees in n - 1 spacings
    n_lat, n_lon = _target_shape(cells, order.size, factor, resolution)
    target_lat_edges = 90.0 - np.arange(n_lat + 1) * (180.0 / n_lat)
    lat_weights = None
    if pole_rows or n_lat != lat.size:
        lat_weights = overlap_weights(np.sin(np.radians(lat_edges)), np.sin(np.radians(target_lat_edges)))
    lon_weights = None
    dlon = 360.0 / n_lon
    centres = np.mod(west + (np.arange(n_lon) + 0.5) * dlon, 360.0)
    roll = np.argsort(centres, kind="stable")
    if n_lon != order.size:
        source_edges = west + np.arange(order.size + 1) * (360.0 / order.size)
        lon_weights = overlap_weights(source_edges, west + np.arange(n_lon + 1) * dlon).T[:, roll]
    grid = LatLonGrid(n_lat, n_lon, float(np.round(centres[roll[0]], 9)) % dlon)
    return Regridder(grid, bool(flip), order, lat_weights, lon_weights, pole_rows)

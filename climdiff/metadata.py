"""The metadata every climdiff store writes, chosen so that netCDF and CF tools read it.

One rule for training, emulation and forecast stores (``docs/metadata.md``):

* every attribute is a string or a number (a numeric list stays an array): dicts, lists of
  strings, booleans and None are stored as JSON text, so ``xr.open_zarr(store).to_netcdf(...)``
  works and ``climdiff export`` passes the CF checker; :func:`structured` reads such an attribute
  back, and also accepts the dicts that stores written before format 2 hold;
* integer counters and coordinates are int32 (CF 1.8 has no 64-bit integers);
* every variable that has units states them (counts and indices: ``1``);
* the grid's coordinates come from one function for any grid: an idealised periodic square
  (nondimensional ``y``, ``x``) or latitude-longitude (``lat``, ``lon`` in degrees, with cell
  bounds ``lat_bnds``, ``lon_bnds``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from numbers import Number
from typing import Any

import numpy as np

from climdiff.errors import ClimdiffError

COUNTER_DTYPE = "int32"
BOUNDS_DIM = "bnds"
MEMBER_ATTRS = {"standard_name": "realization", "long_name": "ensemble member", "units": "1"}
# CF attributes of latitude-longitude coordinates (by dimension name); each also gets a bounds variable.
LATLON_ATTRS = {
    "lat": {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"},
    "lon": {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"},
}
# CF attributes of the fields climdiff models, by variable name; a bundle's own description wins.
# Daily precipitation in mm day-1 is a rate (a length per time), so its standard name is
# lwe_precipitation_rate (canonical m s-1) and the day's total is its daily mean:
# precipitation_amount is a mass per area (kg m-2), which mm day-1 cannot be converted to.
FIELD_ATTRS: dict[str, dict[str, str]] = {
    "vorticity": {"long_name": "relative vorticity"},
    "precipitation": {
        "standard_name": "lwe_precipitation_rate",
        "long_name": "precipitation",
        "cell_methods": "time: mean",
    },
}
# What a model's variable description may set for its field's attributes.
FIELD_KEYS = ("long_name", "standard_name", "units", "cell_methods")


def json_text(value: Any) -> str:
    """JSON text of ``value``; numpy scalars and arrays become plain numbers and lists."""

    def plain(item: Any) -> Any:
        if isinstance(item, (np.generic, np.ndarray)):
            return item.tolist()
        return str(item)

    return json.dumps(value, default=plain)


def netcdf_attribute(value: Any) -> Any:
    """An attribute value netCDF can hold: strings and numbers as they are, a list of numbers as
    an array, anything else (dicts, lists of strings or dicts, booleans, None) as JSON text."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        return json.dumps(bool(value) if value is not None else None)
    if isinstance(value, (str, bytes, np.number, Number)):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.size and value.dtype.kind in "iuf":
        return value
    if isinstance(value, (list, tuple)) and value and all(_plain_number(v) for v in value):
        return np.asarray(value)
    return json_text(value)


def _plain_number(value: Any) -> bool:
    return isinstance(value, (Number, np.number)) and not isinstance(value, (bool, np.bool_))


def netcdf_attrs(attrs: Mapping[Any, Any]) -> dict[str, Any]:
    """Every attribute of ``attrs`` as :func:`netcdf_attribute` stores it."""
    return {str(key): netcdf_attribute(value) for key, value in attrs.items()}


def structured(value: Any) -> Any:
    """A structured attribute as Python values: JSON text is parsed; a dict or list (what stores
    before format 2 hold) is returned as it is."""
    return json.loads(value) if isinstance(value, str) else value


def counter_attrs(long_name: str) -> dict[str, str]:
    """Attributes of a count or an index: dimensionless."""
    return {"long_name": long_name, "units": "1"}


def field_attrs(variable: Mapping[str, Any]) -> dict[str, Any]:
    """CF attributes of a model's field from its description (``name``, ``units``, optionally
    ``long_name``, ``standard_name``, ``cell_methods``), completed from :data:`FIELD_ATTRS`."""
    name = variable["name"]
    return {
        "long_name": name,
        **FIELD_ATTRS.get(name, {}),
        **{key: variable[key] for key in FIELD_KEYS if key in variable},
    }


def regular_latlon_centres(n_lat: int, n_lon: int, lon0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of climdiff's regular lat-lon grid (:class:`climdiff.data.latlon.LatLonGrid`):
    latitudes north to south, no row on a pole; longitudes ascending from ``lon0``."""
    lat = 90.0 - (np.arange(n_lat) + 0.5) * (180.0 / n_lat)
    lon = lon0 + np.arange(n_lon) * (360.0 / n_lon)
    return lat, lon


def grid_coordinates(grid: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """The coordinate values and attributes of a grid description (``dims``, ``shape``, and
    ``length`` for a periodic square; for latitude-longitude the ``lat`` and ``lon`` centres in
    degrees, or ``kind: latlon`` with ``lon0`` for climdiff's regular grid).

    The periodic square is idealised and nondimensional: its ``y`` and ``x`` carry no ``axis``,
    which in CF names latitude/longitude (or a map projection's) axes that the square does not
    have. Latitude keeps the order the description gives.
    """
    coords: dict[str, np.ndarray] = {}
    attrs: dict[str, dict[str, Any]] = {}
    dims = grid.get("dims", ["y", "x"])
    regular = {}
    if grid.get("kind") == "latlon":
        regular = dict(zip(("lat", "lon"), regular_latlon_centres(*grid["shape"], grid.get("lon0", 0.0)), strict=True))
    for dim, n in zip(dims, grid["shape"], strict=True):
        if dim in LATLON_ATTRS:
            values = np.asarray(grid.get(dim, regular.get(dim, ())), dtype=np.float64)
            if values.shape != (n,):
                raise ClimdiffError(f"the grid description needs {n} {dim} values, it has {values.size}")
            coords[dim], attrs[dim] = values, {**LATLON_ATTRS[dim], "bounds": f"{dim}_bnds"}
        else:
            coords[dim] = np.arange(n, dtype=np.float64) * (grid.get("length", 2 * math.pi) / n)
            attrs[dim] = {"long_name": f"{dim} position", "units": "1"}
    return coords, attrs


def cell_bounds(centres: np.ndarray, dim: str) -> np.ndarray:
    """``(n, 2)`` cell edges halfway between neighbouring centres (the outer edges half a cell
    out); latitude edges are clipped to the poles."""
    centres = np.asarray(centres, dtype=np.float64)
    if centres.size == 1:
        raise ClimdiffError(f"cannot derive cell bounds of {dim} from a single value")
    inner = (centres[1:] + centres[:-1]) / 2
    edges = np.concatenate([[2 * centres[0] - inner[0]], inner, [2 * centres[-1] - inner[-1]]])
    if dim == "lat":
        edges = np.clip(edges, -90.0, 90.0)
    return np.stack([edges[:-1], edges[1:]], axis=1)

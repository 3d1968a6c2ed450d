"""A moist barotropic model on the sphere: the dynamics behind `climdiff data latlon`.

Two coupled parts (docs/latlon_generator.md derives and motivates every term):

* **Flow.** Barotropic vorticity on the rotating sphere, stepped spectrally (:mod:`climdiff.data.sphere`,
  SSP-RK3 plus an exact hyperdiffusion factor)::

      dzeta/dt = -div(u (zeta + f)) - (zeta - zeta_eq(season)) / tau_r - nu del^8 zeta + xi

  ``zeta_eq`` is the vorticity of two mid-latitude jets whose latitude and strength follow the
  season; ``xi`` is white-in-time stirring in a band of total wavenumbers that injects kinetic
  energy at the mean rate ``stirring``. The moisture also feels a divergent wind: a prescribed,
  seasonally migrating Hadley convergence towards an ITCZ, plus a random (Ornstein-Uhlenbeck)
  velocity potential ``chi`` -- the convergence that makes rain where it is wet.

* **Moisture.** Column water vapour ``q`` (mm = kg m-2), finite volumes on the same cell-centred
  grid: flux form, so ``sum(A q)`` changes only by the sources; upwind (meridional) and
  flux-form semi-Lagrangian (zonal, any Courant number, as in Lin & Rood 1996) so ``q >= 0`` (to round-off)
  with no filter. The rotational part of each face flux is a difference of streamfunction
  values at the face's corners, so it is exactly non-divergent. Sources per step, each an exact
  relaxation over ``dt`` (so neither can overshoot)::

      E = max(q_e - q, 0) (1 - exp(-dt / tau_e)) / dt     evaporation towards q_e = RH * q_sat
      P = max(q - q_sat, 0) (1 - exp(-dt / tau_c)) / dt   condensation above saturation

  ``q_sat(lat, season)`` peaks at a "thermal equator" that migrates with the season. Budget, per
  step and to round-off: ``d<q>/dt = <E> - <P>`` (area means).

Units are SI internally (m, s); water in mm. Everything is float64 on the CPU: the model is small
and a seed must give the same numbers everywhere.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from climdiff.data.sphere import SphericalHarmonics, alias_free_truncation
from climdiff.errors import ClimdiffError

EARTH_RADIUS = 6.371e6  # m
OMEGA = 7.292e-5  # s-1
DAY = 86_400.0  # s
YEAR_DAYS = 365  # noleap
EQUINOX_DAY = 79  # day of year (0-based) of the March equinox: the seasonal phase origin
REFINEMENT = 2  # internal cells per output cell along each axis


def default_steps_per_day(n_lat: int) -> int:
    """12 steps a day (dt = 2 h) at 32 output latitudes, more in proportion on finer grids.

    The spectral advective limit of SSP-RK3 scales as ``a / (u_max T)``: about 2.4 h for 60 m/s at T21.
    """
    return 12 * max(1, math.ceil(n_lat / 32))


@dataclass(frozen=True)
class MoistBarotropicConfig:
    """Physical and numerical parameters (defaults: the documented setting of docs/latlon_generator.md).

    ``n_lat x n_lon`` is the **output** grid; the model runs on a grid twice as fine in each
    direction with the alias-free triangular truncation of that grid (T21 for the default).
    """

    n_lat: int = 32
    n_lon: int = 64
    steps_per_day: int = 12
    # flow
    jet_speed: float = 30.0  # m s-1, annual mean of each jet's peak
    jet_latitude: float = 40.0  # degrees, annual mean
    jet_migration: float = 6.0  # degrees poleward in the hemisphere's summer
    jet_seasonality: float = 0.35  # fractional weakening in summer, strengthening in winter
    jet_width: float = 10.0  # degrees
    relaxation_days: float = 10.0
    stirring: float = 1.5e-4  # m2 s-3, mean kinetic energy injection
    stirring_wavenumber: int = 10
    stirring_width: int = 3
    hyperdiffusion_days: float = 0.2  # e-folding time at the truncation wavenumber
    # moisture
    q_sat_max: float = 55.0  # mm, saturation at the thermal equator
    q_sat_pole: float = 3.0  # mm, saturation far from it
    q_sat_width: float = 38.0  # degrees, Gaussian half-width of the saturation profile
    thermal_equator_migration: float = 12.0  # degrees
    season_lag_days: float = 30.0  # the thermal equator lags the sun
    relative_humidity: float = 0.85  # evaporation target q_e / q_sat
    evaporation_days: float = 1.5
    condensation_hours: float = 3.0
    hadley_speed: float = 3.0  # m s-1, peak convergent meridional wind of the Hadley cells
    hadley_width: float = 30.0  # degrees from the ITCZ to the edge of each cell
    itcz_migration: float = 8.0  # degrees
    divergent_speed: float = 1.5  # m s-1, rms of the random divergent wind
    divergent_days: float = 2.0  # its correlation time
    divergent_wavenumbers: tuple[int, int] = (3, 15)

    def __post_init__(self) -> None:
        def fail(message: str) -> None:
            raise ClimdiffError(message)

        if self.n_lat < 8 or self.n_lon < 16 or self.n_lon % 2:
            fail(f"the lat-lon generator needs at least 8 x 16 cells (even n_lon), got {self.n_lat} x {self.n_lon}")
        if self.steps_per_day < 1:
            fail(f"--steps-per-day must be positive, got {self.steps_per_day}")
        positive = (
            "relaxation_days",
            "hyperdiffusion_days",
            "q_sat_max",
            "q_sat_pole",
            "q_sat_width",
            "evaporation_days",
            "condensation_hours",
            "hadley_width",
            "divergent_days",
            "jet_width",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                fail(f"lat-lon generator {name} must be positive, got {getattr(self, name)!r}")
        for name in ("stirring", "hadley_speed", "divergent_speed", "jet_speed", "relative_humidity"):
            if not getattr(self, name) >= 0:
                fail(f"lat-lon generator {name} must be non-negative, got {getattr(self, name)!r}")
        t = self.truncation
        low, high = self.divergent_wavenumbers
        stirred = (self.stirring_wavenumber - self.stirring_width, self.stirring_wavenumber + self.stirring_width)
        if not 1 <= stirred[0] <= stirred[1] <= t:
            fail(f"the stirring band must lie in 1..T{t}")
        if not 1 <= low <= high <= t:
            fail(f"the divergent wavenumbers must lie in 1..T{t}, got {low}..{high}")

    @property
    def model_shape(self) -> tuple[int, int]:
        return (REFINEMENT * self.n_lat, REFINEMENT * self.n_lon)

    @property
    def truncation(self) -> int:
        return alias_free_truncation(*self.model_shape)

    @property
    def dt(self) -> float:
        return DAY / self.steps_per_day

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["divergent_wavenumbers"] = list(self.divergent_wavenumbers)
        return out


def seasonal_phase(day_of_year: int | float, lag_days: float = 0.0) -> float:
    """``sin(2 pi (doy - equinox - lag) / 365)``: +1 at northern midsummer (plus the lag), -1 in winter."""
    return math.sin(2 * math.pi * (day_of_year - EQUINOX_DAY - lag_days) / YEAR_DAYS)


@dataclass
class StepTotals:
    """Water moved by the sources in one step, per cell, in mm: evaporated and condensed."""

    evaporation: torch.Tensor
    precipitation: torch.Tensor


@dataclass
class SeasonalForcing:
    """The fields that depend only on the day of the year (recomputed once per simulated day)."""

    zeta_eq: torch.Tensor  # spectral
    q_sat: torch.Tensor  # (J, K) mm
    q_target: torch.Tensor  # (J, K) mm
    hadley_flux: torch.Tensor  # (J + 1, 1) m2 s-1 northward through each latitude edge, per cell


class MoistBarotropicModel:
    """State: vorticity and divergent-potential coefficients (complex) and the water vapour field ``q``."""

    def __init__(self, config: MoistBarotropicConfig) -> None:
        self.config = config
        c = config
        n_lat, n_lon = c.model_shape
        self.dlat = math.pi / n_lat
        self.dlon = 2 * math.pi / n_lon
        self.sht = SphericalHarmonics(n_lat, n_lon, c.truncation, radius=EARTH_RADIUS, lon0=math.degrees(self.dlon) / 2)
        sht, t = self.sht, c.truncation
        lat_edges = 90.0 - np.arange(n_lat + 1) * math.degrees(self.dlat)
        lon_edges = np.arange(n_lon) * math.degrees(self.dlon)
        self.lat = sht.lat  # cell centres, degrees, north to south
        self.lon = lon_edges + math.degrees(self.dlon) / 2
        self.lat_edges = lat_edges
        sin_edges = np.sin(np.radians(lat_edges))
        sin_edges[0], sin_edges[-1] = 1.0, -1.0
        area = EARTH_RADIUS**2 * self.dlon * (sin_edges[:-1] - sin_edges[1:])
        self.area = torch.as_tensor(area)[:, None]  # (J, 1) m2, every cell of a row alike
        self.area_weights = self.area / (self.area.sum() * n_lon)  # (J, 1): sum over the grid = 1
        # streamfunction at cell corners, and the divergent potential's derivatives at face midpoints
        self._corners = sht.point_tables(lat_edges, lon_edges)
        self._chi_zonal = sht.point_tables(self.lat, lon_edges)  # d(chi)/d(lambda) at west faces
        self._chi_meridional = sht.point_tables(lat_edges, self.lon, derivative=True)  # H chi at north faces
        self._zonal_face = torch.as_tensor(self.dlat / np.cos(np.radians(self.lat)))[:, None]
        self._coriolis = torch.as_tensor(2 * OMEGA * sht.mu)[:, None]
        self._cos_lat = torch.as_tensor(np.cos(np.radians(self.lat)))[:, None]
        self._cos_edges = torch.as_tensor(np.clip(np.cos(np.radians(lat_edges)), 0.0, None))[:, None]

        l_index = torch.arange(t + 1, dtype=torch.float64)
        degree = (l_index * (l_index + 1))[None, :].expand(t + 1, t + 1)
        damping = (degree / (t * (t + 1))) ** 4 * (c.dt / (c.hyperdiffusion_days * DAY))
        self._hyperdiffusion = torch.exp(-damping).to(torch.complex128) * sht.mask
        band = _band(t, c.stirring_wavenumber - c.stirring_width, c.stirring_wavenumber + c.stirring_width)
        # E|xi_lm|^2 = Q per unit time on every band mode injects eps = (Q/4) sum_band (2l+1) a^2 / (l(l+1))
        modes = [(2 * l + 1) / (l * (l + 1)) for l in range(1, t + 1) if band[0, l]]
        q_stir = 4 * c.stirring / (EARTH_RADIUS**2 * sum(modes)) if modes else 0.0
        self._stirring_amplitude = math.sqrt(q_stir * c.dt) * band.to(torch.float64) * sht.mask
        low, high = c.divergent_wavenumbers
        chi_band = _band(t, low, high)
        # stationary E|chi_lm|^2 = s^2 on the band gives <|u_chi|^2> = (1/2) sum (2l+1) l(l+1)/a^2 s^2
        energy_per_s2 = 0.5 * sum((2 * l + 1) * l * (l + 1) for l in range(low, high + 1)) / EARTH_RADIUS**2
        s = c.divergent_speed / math.sqrt(energy_per_s2)
        self._chi_decay = math.exp(-c.dt / (c.divergent_days * DAY))
        self._chi_amplitude = s * math.sqrt(1 - self._chi_decay**2) * chi_band.to(torch.float64) * sht.mask
        self._evaporation_factor = 1 - math.exp(-c.dt / (c.evaporation_days * DAY))
        self._condensation_factor = 1 - math.exp(-c.dt / (c.condensation_hours * 3600.0))
        self._relaxation_rate = 1 / (c.relaxation_days * DAY)

    # --- state ------------------------------------------------------------------------------

    def initial_state(self, generator: torch.Generator, day_of_year: int) -> dict[str, torch.Tensor]:
        """The seasonal equilibrium of the day plus one stirring kick (the spin-up builds the eddies)."""
        forcing = self.seasonal_forcing(day_of_year)
        zeta = forcing.zeta_eq + self._noise(generator)[0] * self._stirring_amplitude
        return {"zeta": zeta, "chi": torch.zeros_like(zeta), "q": forcing.q_target.clone()}

    def _noise(self, generator: torch.Generator) -> torch.Tensor:
        """Two unit complex white noises on the coefficient triangle (m = 0 real, E|.|^2 = 1 per mode)."""
        t = self.config.truncation + 1
        draw = torch.randn((2, t, t, 2), generator=generator, dtype=torch.float64)
        scale = torch.full((t, 1, 2), math.sqrt(0.5), dtype=torch.float64)  # [m, l, re/im]
        scale[0, 0] = torch.tensor([1.0, 0.0], dtype=torch.float64)
        return torch.view_as_complex((draw * scale).contiguous())

    # --- seasonal forcing -------------------------------------------------------------------

    def seasonal_forcing(self, day_of_year: int) -> SeasonalForcing:
        """Jets, saturation, evaporation target and Hadley flux of a calendar day (0 = 1 January)."""
        c = self.config
        sun = seasonal_phase(day_of_year + 0.5)
        lagged = seasonal_phase(day_of_year + 0.5, c.season_lag_days)
        lat = torch.as_tensor(self.lat)[:, None]
        u_eq = torch.zeros_like(lat)
        for hemisphere in (1.0, -1.0):
            summer = hemisphere * sun  # +1 in this hemisphere's midsummer
            centre = hemisphere * (c.jet_latitude + c.jet_migration * summer)
            speed = c.jet_speed * (1 - c.jet_seasonality * summer)
            u_eq = u_eq + speed * torch.exp(-(((lat - centre) / c.jet_width) ** 2))
        u_eq = u_eq.expand(-1, self.sht.n_lon)
        zeta_eq = self.sht.curl(u_eq * self._cos_lat, torch.zeros_like(u_eq))

        thermal_equator = c.thermal_equator_migration * lagged
        profile = torch.exp(-(((lat - thermal_equator) / c.q_sat_width) ** 2))
        q_sat = c.q_sat_pole + (c.q_sat_max - c.q_sat_pole) * profile
        q_sat = q_sat.expand(-1, self.sht.n_lon).contiguous()

        itcz = c.itcz_migration * lagged
        edges = torch.as_tensor(self.lat_edges)[:, None]
        offset = (edges - itcz) / c.hadley_width
        v_hadley = -c.hadley_speed * torch.sin(math.pi * offset) * (offset.abs() < 1)
        hadley_flux = v_hadley * EARTH_RADIUS * self._cos_edges * self.dlon
        return SeasonalForcing(zeta_eq, q_sat, c.relative_humidity * q_sat, hadley_flux)

    # --- dynamics ---------------------------------------------------------------------------

    def vorticity_tendency(self, zeta: torch.Tensor, zeta_eq: torch.Tensor) -> torch.Tensor:
        """``-div(u (zeta + f)) - (zeta - zeta_eq) / tau_r`` (spectral)."""
        sht = self.sht
        psi = zeta * sht.inverse_eigenvalues
        u, v, relative = sht.winds(psi, zeta)
        absolute = relative + self._coriolis
        return -sht.divergence(u * absolute, v * absolute) - (zeta - zeta_eq) * self._relaxation_rate

    def step(self, state: dict[str, torch.Tensor], forcing: SeasonalForcing, generator: torch.Generator) -> StepTotals:
        """Advance ``state`` in place by one ``dt``; return the step's evaporation and precipitation."""
        dt = self.config.dt
        zeta0 = state["zeta"]
        # SSP-RK3 (Shu & Osher) for advection and relaxation, then exact hyperdiffusion and the kick
        z1 = zeta0 + dt * self.vorticity_tendency(zeta0, forcing.zeta_eq)
        z2 = 0.75 * zeta0 + 0.25 * (z1 + dt * self.vorticity_tendency(z1, forcing.zeta_eq))
        z3 = zeta0 / 3 + (2 / 3) * (z2 + dt * self.vorticity_tendency(z2, forcing.zeta_eq))
        noise = self._noise(generator)
        zeta1 = (z3 + noise[0] * self._stirring_amplitude) * self._hyperdiffusion
        chi0 = state["chi"]
        chi1 = self._chi_decay * chi0 + noise[1] * self._chi_amplitude
        # moisture moves with the time-centred flow of the step
        zonal, meridional = self.face_fluxes(0.5 * (zeta0 + zeta1), 0.5 * (chi0 + chi1), forcing)
        q = self.advect(state["q"], zonal, meridional)
        condensed = (q - forcing.q_sat).clamp(min=0.0) * self._condensation_factor
        evaporated = (forcing.q_target - q).clamp(min=0.0) * self._evaporation_factor
        state["q"] = q - condensed + evaporated
        state["zeta"], state["chi"] = zeta1, chi1
        return StepTotals(evaporated, condensed)

    def face_fluxes(
        self, zeta: torch.Tensor, chi: torch.Tensor, forcing: SeasonalForcing
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Area fluxes (m2 s-1) eastward through west faces ``(J, K)`` and northward through north faces ``(J+1, K)``.

        Rotational part: differences of the streamfunction at the face's corners (exactly
        non-divergent cell by cell; zero through the poles). Divergent part: the random potential's
        gradient at face midpoints plus the Hadley flux.
        """
        sht = self.sht
        psi = sht.at_points(zeta * sht.inverse_eigenvalues, *self._corners)  # (J+1, K) at NW corners
        zonal = psi[1:] - psi[:-1]  # psi(S) - psi(N)
        meridional = torch.roll(psi, -1, dims=-1) - psi  # psi(E) - psi(W)
        zonal = zonal + sht.at_points(chi * sht.d_dlon, *self._chi_zonal) * self._zonal_face
        meridional = meridional + sht.at_points(chi, *self._chi_meridional) * self.dlon + forcing.hadley_flux
        meridional[0] = 0.0
        meridional[-1] = 0.0
        return zonal, meridional

    def advect(self, q: torch.Tensor, zonal: torch.Tensor, meridional: torch.Tensor) -> torch.Tensor:
        """Strang-split flux-form transport over ``dt``: zonal half step, meridional step, zonal half step."""
        dt = self.config.dt
        courant = zonal * (0.5 * dt) / self.area  # area swept through each west face / cell area
        q = _zonal_remap(q, courant)
        q = self._meridional_upwind(q, meridional * dt)
        return _zonal_remap(q, courant)

    def _meridional_upwind(self, q: torch.Tensor, swept: torch.Tensor) -> torch.Tensor:
        """Donor-cell transport through latitude edges, sub-stepped so no cell loses more than it holds."""
        north_out = swept[:-1].clamp(min=0.0)  # through each cell's north edge
        south_out = (-swept[1:]).clamp(min=0.0)
        substeps = max(1, math.ceil(float(((north_out + south_out) / self.area).max())))
        swept = swept[1:-1] / substeps  # interior edges: between rows j-1 (north) and j (south)
        mass = q * self.area
        for _ in range(substeps):
            q_now = mass / self.area
            transfer = swept.clamp(min=0.0) * q_now[1:] + swept.clamp(max=0.0) * q_now[:-1]  # northward
            mass = mass.clone()
            mass[:-1] += transfer
            mass[1:] -= transfer
        return mass / self.area

    # --- diagnostics ------------------------------------------------------------------------

    def area_mean(self, field: torch.Tensor) -> torch.Tensor:
        """Exact area-weighted mean of a grid field (cell areas, not quadrature weights)."""
        return (field * self.area_weights).sum(dim=(-2, -1))

    def kinetic_energy(self, zeta: torch.Tensor) -> torch.Tensor:
        """Global mean kinetic energy per unit mass of the rotational flow, ``-<psi zeta>/2`` (m2 s-2)."""
        return -0.5 * self.sht.mean_product(zeta * self.sht.inverse_eigenvalues, zeta)

    def coarsen(self, field: torch.Tensor) -> torch.Tensor:
        """Exact area-weighted means over the 2 x 2 blocks that make up each output cell.

        Internal cells are centred half a cell east of the output grid's edges, so output cell
        ``k`` holds internal columns ``2k - 1`` and ``2k``.
        """
        weighted = torch.roll(field * self.area, shifts=1, dims=-1)
        n_lat, n_lon = weighted.shape[-2] // REFINEMENT, weighted.shape[-1] // REFINEMENT
        block_mass = weighted.reshape(*weighted.shape[:-2], n_lat, REFINEMENT, n_lon, REFINEMENT).sum(dim=(-3, -1))
        block_area = self.area.reshape(n_lat, REFINEMENT).sum(dim=-1, keepdim=True) * REFINEMENT
        return block_mass / block_area


def _band(truncation: int, low: int, high: int) -> torch.Tensor:
    """``(T+1, T+1)`` mask of the coefficients with ``low <= l <= high`` (indexed ``[m, l]``)."""
    l_index = torch.arange(truncation + 1)
    return ((l_index >= low) & (l_index <= high))[None, :].expand(truncation + 1, truncation + 1)


def _zonal_remap(q: torch.Tensor, courant: torch.Tensor) -> torch.Tensor:
    """Flux-form semi-Lagrangian zonal transport of piecewise-constant ``q`` along each periodic row.

    ``courant[j, k]`` is the eastward displacement, in cells, of row ``j``'s west face ``k``. The
    new cell ``k`` holds exactly the water between the departure points ``d_k = k - c_k`` and
    ``d_{k+1}``: ``q_k' = C(d_{k+1}) - C(d_k)`` with ``C`` the cumulative water along the row. Any
    Courant number works; positivity needs ordered departure points, which sub-stepping ensures.
    """
    n = q.shape[-1]
    squeeze = float((torch.roll(courant, -1, dims=-1) - courant).max())
    substeps = max(1, math.ceil(squeeze / 0.99))  # neighbouring departure points may not cross
    courant = courant / substeps
    index = torch.arange(n + 1, dtype=q.dtype)
    departure = index - torch.cat([courant, courant[..., :1]], dim=-1)  # face n is face 0, one lap east
    floor = torch.floor(departure)
    fraction = departure - floor
    cell = torch.remainder(floor, n).to(torch.int64)
    laps = (floor - cell) / n
    for _ in range(substeps):
        total = q.sum(dim=-1, keepdim=True)
        before = torch.cumsum(q, dim=-1) - q  # water west of each cell's west face
        cumulative = torch.gather(before, -1, cell) + laps * total + fraction * torch.gather(q, -1, cell)
        q = cumulative[..., 1:] - cumulative[..., :-1]
    return q

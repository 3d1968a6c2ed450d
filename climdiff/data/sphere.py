"""Spherical-harmonic transforms in torch on a regular cell-centred latitude-longitude grid.

Why our own: torch-harmonics, the well-kept library, needs a newer torch than climdiff's. The
transform is the textbook one (e.g. Durran, *Numerical Methods for Fluid Dynamics*, ch. 6):
an FFT in longitude and a Legendre transform in latitude with precomputed functions.

Conventions:

* Grid: ``n_lat`` cell-centred latitudes from north to south (colatitude
  ``theta_j = (j + 1/2) pi / n_lat``, ``mu_j = cos theta_j = sin(lat_j)``) and ``n_lon``
  longitudes ``lambda_k = lon0 + k * 2 pi / n_lon`` -- climdiff's :class:`LatLonGrid` layout.
* Quadrature: Fejer's first rule on those latitudes, ``sum_j w_j g(mu_j) = integral_{-1}^{1} g dmu``
  exactly for polynomials ``g`` of degree ``<= n_lat - 1``.
* Expansion: ``f = sum_{m=-T}^{T} sum_{l=|m|}^{T} f_lm Pbar_l^m(mu) exp(i m lambda)``, triangular
  truncation ``T``, ``Pbar`` normalised so that ``integral_{-1}^{1} Pbar_l^m(mu)^2 dmu = 1`` (no
  Condon-Shortley phase). Only ``m >= 0`` is stored (``f_l,-m = conj(f_lm)`` for real ``f``):
  coefficients are complex tensors of shape ``(..., T + 1, T + 1)`` indexed ``[m, l]`` and zero
  for ``l < m``. Then the area mean is ``<f g> = (1/2) sum over all m of f_lm conj(g_lm)``.
* The analysis of a field band-limited to ``T`` is exact when ``2 T <= n_lat - 1``; products of
  two such fields are projected without aliasing when ``3 T <= n_lat - 1`` (and
  ``n_lon >= 3 T + 1``): :func:`alias_free_truncation`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from climdiff.errors import ClimdiffError


def alias_free_truncation(n_lat: int, n_lon: int) -> int:
    """The largest triangular truncation whose quadratic products the grid projects exactly."""
    return min((n_lat - 1) // 3, (n_lon - 1) // 3)


def fejer_weights(n: int) -> np.ndarray:
    """Fejer's first-rule weights on ``mu_j = cos((j + 1/2) pi / n)``, for integrals over ``[-1, 1]``."""
    theta = (np.arange(n) + 0.5) * math.pi / n
    k = np.arange(1, n // 2 + 1)
    series = (np.cos(2 * np.outer(theta, k)) / (4 * k**2 - 1)).sum(axis=1)
    return 2.0 / n * (1.0 - 2.0 * series)


def legendre(mu: np.ndarray, degree: int) -> np.ndarray:
    """Normalised associated Legendre functions ``Pbar_l^m(mu)``, shape ``(degree+1, len(mu), degree+1)``
    indexed ``[m, j, l]`` (zero for ``l < m``), by the stable three-term recurrence in ``l``:
    ``mu Pbar_l^m = eps_{l+1}^m Pbar_{l+1}^m + eps_l^m Pbar_{l-1}^m``, ``eps_l^m = sqrt((l^2 - m^2) / (4 l^2 - 1))``."""
    mu = np.asarray(mu, dtype=np.float64)
    sin = np.sqrt(np.clip(1.0 - mu**2, 0.0, None))
    out = np.zeros((degree + 1, mu.size, degree + 1))
    diagonal = np.full(mu.size, math.sqrt(0.5))
    for m in range(degree + 1):
        if m > 0:
            diagonal = diagonal * math.sqrt((2 * m + 1) / (2 * m)) * sin
        out[m, :, m] = diagonal
        if m + 1 <= degree:
            out[m, :, m + 1] = math.sqrt(2 * m + 3) * mu * diagonal
        for l in range(m + 2, degree + 1):
            out[m, :, l] = (mu * out[m, :, l - 1] - _eps(l - 1, m) * out[m, :, l - 2]) / _eps(l, m)
    return out


def _eps(l: int, m: int) -> float:
    return math.sqrt((l * l - m * m) / (4 * l * l - 1))


def legendre_derivative(mu: np.ndarray, degree: int) -> np.ndarray:
    """``H_l^m = (1 - mu^2) dPbar_l^m / dmu`` in :func:`legendre`'s layout, from
    ``H_l^m = -l eps_{l+1}^m Pbar_{l+1}^m + (l + 1) eps_l^m Pbar_{l-1}^m``."""
    p = legendre(mu, degree + 1)
    out = np.zeros((degree + 1, np.size(mu), degree + 1))
    for m in range(degree + 1):
        for l in range(m, degree + 1):
            out[m, :, l] = -l * _eps(l + 1, m) * p[m, :, l + 1]
            if l > m:
                out[m, :, l] += (l + 1) * _eps(l, m) * p[m, :, l - 1]
    return out


class SphericalHarmonics:
    """Transforms, derivatives and the Laplacian on one grid, for fields on a sphere of radius ``radius``.

    Every table is built once in float64 and cast to the working dtype; the hot path is FFTs and
    small batched matrix products.
    """

    def __init__(
        self,
        n_lat: int,
        n_lon: int,
        truncation: int | None = None,
        *,
        radius: float = 1.0,
        lon0: float = 0.0,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        limit = alias_free_truncation(n_lat, n_lon)
        self.truncation = limit if truncation is None else truncation
        if not 1 <= self.truncation <= (n_lat - 1) // 2 or n_lon < 2 * self.truncation + 1:
            raise ClimdiffError(
                f"truncation T{self.truncation} does not fit a {n_lat} x {n_lon} grid "
                f"(needs 2T <= n_lat - 1 and n_lon >= 2T + 1)"
            )
        self.n_lat, self.n_lon, self.radius, self.dtype = n_lat, n_lon, float(radius), dtype
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        t = self.truncation
        theta = (np.arange(n_lat) + 0.5) * math.pi / n_lat
        self.mu = np.cos(theta)
        self.weights = fejer_weights(n_lat)
        m = np.arange(t + 1)
        l_index = np.arange(t + 1)
        degree = l_index * (l_index + 1.0)

        def real(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, dtype=dtype)

        p = legendre(self.mu, t)
        h = legendre_derivative(self.mu, t)
        one_minus = 1.0 - self.mu**2
        self._p = real(p)
        self._h = real(h)
        # Analysis tables carry the quadrature weights (and 1/(1 - mu^2) for the vector forms).
        self._p_analysis = real(p * self.weights[None, :, None])
        self._vector_tables = real(np.stack([p, h]) * (self.weights / one_minus)[None, None, :, None])
        self._phase = torch.as_tensor(np.exp(1j * m * math.radians(lon0)), dtype=cdtype)[:, None]
        self.d_dlon = torch.as_tensor(1j * m, dtype=cdtype)[:, None]
        """``i m``: multiplying coefficients by it takes the longitude derivative ``d/dlambda``."""
        self.mask = real((l_index[None, :] >= m[:, None]).astype(np.float64))
        """1 where ``l >= m`` (the stored triangle), 0 elsewhere; shape ``(T + 1, T + 1)``."""
        self.eigenvalues = real(np.broadcast_to(-degree / self.radius**2, (t + 1, t + 1)).copy())
        """Laplacian eigenvalues ``-l (l + 1) / a^2`` in the coefficient layout ``[m, l]``."""
        inverse = np.zeros_like(degree)
        inverse[1:] = -(self.radius**2) / degree[1:]
        self.inverse_eigenvalues = real(np.broadcast_to(inverse, (t + 1, t + 1)).copy())
        """``1 / eigenvalue``, 0 for ``l = 0`` (the inverse Laplacian of the mean-free part)."""
        mode_weight = np.where(m[:, None] == 0, 0.5, 1.0) * (l_index[None, :] >= m[:, None])
        self._mean_weights = real(mode_weight)

    @property
    def lat(self) -> np.ndarray:
        """Cell-centre latitudes in degrees, north to south."""
        return np.degrees(np.arcsin(self.mu))

    # --- transforms ------------------------------------------------------------------------

    def _fourier(self, field: torch.Tensor) -> torch.Tensor:
        """``(..., n_lat, n_lon)`` real -> ``(..., T + 1, n_lat)`` complex Fourier coefficients in ``m``."""
        f = torch.fft.rfft(field, dim=-1, norm="forward")[..., : self.truncation + 1]
        return f.transpose(-1, -2) * self._phase.conj()

    def _legendre_analysis(self, fourier: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """``sum_j table[m, j, l] * fourier[..., m, j]`` as a batched real matrix product."""
        re = torch.view_as_real(fourier)  # (..., M, J, 2)
        out = torch.matmul(table.transpose(-1, -2), re)  # (M, L, J) @ (..., M, J, 2)
        return torch.view_as_complex(out.contiguous())

    def _synthesis(self, coeffs: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """``sum_l table[m, j, l] coeffs[..., m, l]``, then the inverse FFT in longitude."""
        re = torch.view_as_real(coeffs * self._phase)  # (..., M, L, 2)
        fourier = torch.view_as_complex(torch.matmul(table, re).contiguous())  # (..., M, J)
        return torch.fft.irfft(fourier.transpose(-1, -2), n=self.n_lon, dim=-1, norm="forward")

    def analysis(self, field: torch.Tensor) -> torch.Tensor:
        """Grid ``(..., n_lat, n_lon)`` -> coefficients ``(..., T + 1, T + 1)``."""
        return self._legendre_analysis(self._fourier(field), self._p_analysis)

    def synthesis(self, coeffs: torch.Tensor) -> torch.Tensor:
        """Coefficients -> grid values."""
        return self._synthesis(coeffs, self._p)

    def winds(self, psi: torch.Tensor, *fields: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(U, V) = (u cos(lat), v cos(lat))`` of the non-divergent flow of streamfunction ``psi``:
        ``u = -(1/a) dpsi/dlat``, ``v = (1/(a cos lat)) dpsi/dlambda``; then the grid values of any
        further ``fields`` (coefficients), synthesised in the same batched transform as ``V``."""
        u = -self._synthesis(psi, self._h) / self.radius
        grids = self._synthesis(torch.stack([psi * self.d_dlon, *fields], dim=-3), self._p).unbind(dim=-3)
        return (u, grids[0] / self.radius, *grids[1:])

    def divergence(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Coefficients of ``div F`` from ``a = F_lambda cos(lat)``, ``b = F_lat cos(lat)`` on the grid.

        Integration by parts against each harmonic (the pole terms vanish as ``b`` does):
        ``(div F)_lm = (1/a) sum_j w_j / (1 - mu_j^2) (i m A_m Pbar_l^m - B_m H_l^m)``. The
        ``l = 0`` coefficient is exactly zero (``m = 0``, ``H_0^0 = 0``): a flux divergence
        neither makes nor destroys anything.
        """
        projected = self._legendre_analysis(self._fourier(torch.stack([a, b], dim=-3)), self._vector_tables)
        return (self.d_dlon * projected[..., 0, :, :] - projected[..., 1, :, :]) / self.radius

    def curl(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Coefficients of ``k . curl F`` (same inputs as :meth:`divergence`): ``curl(F) = div(k x F)``."""
        return self.divergence(b, -a)

    def mean(self, coeffs: torch.Tensor) -> torch.Tensor:
        """Area mean of the field: ``f_00 Pbar_0^0 / 2 * 2 = f_00 / sqrt(2)``."""
        return coeffs[..., 0, 0].real / math.sqrt(2.0)

    def mean_product(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Area mean ``<f g>`` of two real fields from their coefficients (Parseval)."""
        return (f * g.conj()).real.mul(self._mean_weights).sum(dim=(-2, -1))

    def point_tables(
        self, lat: np.ndarray, lon: np.ndarray, *, derivative: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Legendre table and Fourier basis for :meth:`at_points` at the points ``lat x lon`` (degrees).

        ``derivative=True`` tabulates ``H_l^m = (1 - mu^2) dPbar_l^m/dmu`` instead of ``Pbar_l^m``.
        """
        mu = np.sin(np.radians(lat))
        values = legendre_derivative(mu, self.truncation) if derivative else legendre(mu, self.truncation)
        table = torch.as_tensor(values, dtype=self.dtype)
        m = np.arange(self.truncation + 1)
        factor = np.where(m == 0, 1.0, 2.0)[:, None]
        angles = np.outer(m, np.radians(lon))
        basis = np.stack([factor * np.cos(angles), -factor * np.sin(angles)])  # Re/Im parts of 2 e^{i m lambda}
        return table, torch.as_tensor(basis, dtype=self.dtype)

    def at_points(self, coeffs: torch.Tensor, table: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
        """``sum_m sum_l f_lm Pbar_l^m(mu) e^{i m lambda}`` (real) on the points of :meth:`point_tables`."""
        fourier = torch.matmul(table, torch.view_as_real(coeffs))  # (..., M, J, 2)
        # real part of sum_m F_m e^{i m lambda} with the m > 0 terms doubled
        return torch.einsum("...mjc,cmk->...jk", fourier, basis)

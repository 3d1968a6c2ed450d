"""Stochastically forced 2-D incompressible Navier-Stokes on a doubly periodic square.

Vorticity form, on the square of side ``L = 2 pi``::

    d(zeta)/dt + J(psi, zeta) = -nu (-Laplacian)^p zeta - mu zeta + xi,    zeta = Laplacian(psi),

with velocity ``u = -d(psi)/dy``, ``v = d(psi)/dx``, hyperviscosity of order ``p``, linear drag
``mu`` and a forcing ``xi`` that is white in time with a Gaussian ring spectrum normalised to
inject energy at the mean rate ``eps`` (see :class:`ForcedTurbulence`). This is the setting of
GeophysicalFlows.jl's stochastically forced ``TwoDNavierStokes`` example, the data of Hess et al.
(2025). Spectral conventions (FFT normalisation, Parseval weights, shells) are those of
:mod:`climdiff.data.spectral`; docs/solver.md collects the derivations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from climdiff.data.spectral import SpectralGrid
from climdiff.errors import ClimdiffError

#: Hyperviscous damping rate ``nu * k_max**(2p)`` of the paper's setting (nu = 2e-7, p = 2 at
#: 256^2, k_max = 128). When no nu is given it is kept fixed across grids and orders, so the
#: grid-scale damping rate is the same at every resolution.
REFERENCE_GRID_DAMPING_RATE = 2e-7 * 128.0**4

#: Points on the half contour of the Kassam-Trefethen evaluation of the ETDRK4 coefficients.
CONTOUR_POINTS = 32


@dataclass(frozen=True)
class TurbulenceConfig:
    """Physical and numerical parameters; the defaults are the paper's 256^2 setting.

    Units are nondimensional: domain side ``2 pi`` (fundamental wavenumber 1) and the solver's time
    unit, in which ``dt`` is measured. ``kf`` and ``dkf`` are in units of the fundamental
    wavenumber. ``nu=None`` means the paper's hyperviscosity rescaled to this grid
    (:meth:`resolved_nu`).
    """

    size: int = 256
    nu: float | None = None
    hyper_order: int = 2
    mu: float = 0.1
    dt: float = 0.005
    eps: float = 0.1
    kf: float = 6.0
    dkf: float = 1.5

    def __post_init__(self) -> None:
        def fail(message: str) -> None:
            raise ClimdiffError(message)

        if not _is_int(self.size) or self.size < 8 or self.size % 2:
            fail(f"turbulence size must be an even integer >= 8, got {self.size!r}")
        if not _is_int(self.hyper_order) or self.hyper_order < 1:
            fail(f"turbulence hyper_order (hyperviscosity order p) must be an integer >= 1, got {self.hyper_order!r}")
        for name, value, strict in (
            ("dt", self.dt, True),
            ("eps", self.eps, True),
            ("kf", self.kf, True),
            ("dkf", self.dkf, True),
            ("mu", self.mu, False),
            ("nu", self.nu, False),
        ):
            if value is None and name == "nu":
                continue
            if not _is_real(value) or not math.isfinite(value) or value < 0 or (strict and value == 0):
                bound = "positive" if strict else "non-negative"
                fail(f"turbulence {name} must be a {bound} finite number, got {value!r}")
        if self.kf >= self.size / 3:
            fail(
                f"forcing wavenumber kf={self.kf:g} must lie inside the dealiased range "
                f"k < size/3 = {self.size / 3:.4g}; use a larger size or a smaller kf"
            )

    def resolved_nu(self) -> float:
        """The hyperviscosity used: ``nu`` if given, else the paper's value rescaled to this grid.

        The rescaling keeps ``nu * k_max**(2p)`` (``k_max = size/2``) equal to the paper's
        ``2e-7 * 128**4``; for ``p = 2`` this is ``nu = 2e-7 * (256 / size)**4``.
        """
        if self.nu is not None:
            return float(self.nu)
        return REFERENCE_GRID_DAMPING_RATE / (self.size / 2) ** (2 * self.hyper_order)

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain JSON-able fields; ``TurbulenceConfig(**c.to_dict()) == c``."""
        return asdict(self)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class StepBudget:
    """Energy budget of one step, per unit area, as 0-d tensors (batch-shaped for batched states).

    ``(energy_after - energy_before) / dt`` equals ``injection - drag - dissipation`` up to the
    time-stepping error (see :meth:`ForcedTurbulence.step`).
    """

    energy_before: torch.Tensor
    energy_after: torch.Tensor
    injection: torch.Tensor
    drag: torch.Tensor
    dissipation: torch.Tensor


class ForcedTurbulence:
    """Pseudo-spectral ETDRK4 solver of the forced vorticity equation.

    The state is ``zeta_hat = rfft2(zeta)`` (shape ``(..., n, n//2 + 1)``, complex, on the
    solver's device). Leading batch dimensions are allowed everywhere; they are independent
    flows.

    Forcing: ``Q_k = c * exp(-(|k| - kf)**2 / (2 dkf**2))`` with ``Q_0 = 0`` and ``c`` chosen so
    that ``eps = 1/2 (1/N**2) sum_k Q_k / |k|**2`` (full spectrum, ``N = n**2``). A step's
    forcing is ``xi_hat = sqrt(Q_k / N) / sqrt(dt) * rfft2(w)`` with ``w`` real unit white noise on
    the grid, so ``E|xi_hat_k|**2 = Q_k / dt`` and the mean injection is ``eps`` whatever ``dt``
    and ``n``. The noise is drawn in float64 on the CPU, so a seed gives the same forcing on
    every device and dtype.
    """

    def __init__(
        self,
        config: TurbulenceConfig,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.config = config
        self.nu = config.resolved_nu()
        self.grid = SpectralGrid(config.size, device=device, dtype=dtype)
        grid = self.grid

        # Everything below is built in float64 on the CPU, then cast once.
        cpu = SpectralGrid(config.size)
        k = cpu.ksq.sqrt()
        ring = torch.exp(-((k - config.kf * cpu.k0) ** 2) / (2 * (config.dkf * cpu.k0) ** 2))
        ring[0, 0] = 0.0
        injection_per_unit = 0.5 * cpu.parseval_sum(ring * cpu.inv_ksq)
        if not injection_per_unit > 0:
            raise ClimdiffError(f"the forcing ring (kf={config.kf:g}, dkf={config.dkf:g}) holds no resolved mode")
        spectrum = ring * (config.eps / injection_per_unit)
        # E|rfft2(w)_k|^2 = N for real unit white noise w, so this gives E|xi_hat_k|^2 = Q_k / dt.
        self._forcing_filter = (spectrum / (cpu.points * config.dt)).sqrt()  # CPU float64

        viscous_rate = self.nu * cpu.ksq**config.hyper_order  # nu |k|^{2p}
        linear = -viscous_rate - config.mu
        e, e_half, q, f1, f2, f3 = _etdrk4_coefficients(linear, config.dt)

        def to_grid(t: torch.Tensor, dtype: torch.dtype = grid.dtype) -> torch.Tensor:
            return t.to(device=grid.device, dtype=dtype)

        def to_multiplier(t: torch.Tensor) -> torch.Tensor:
            # Complex copies of real factors: complex * real would promote (copy) on every use.
            return to_grid(t, grid.cdtype)

        self.forcing_spectrum: torch.Tensor = to_grid(spectrum)
        """``Q_k`` on the half plane: forcing variance spectrum per unit time (see class doc)."""
        self.linear: torch.Tensor = to_grid(linear)
        """Diagonal linear operator ``L_k = -nu |k|^{2p} - mu``."""
        self._e, self._e_half, self._q = to_multiplier(e), to_multiplier(e_half), to_multiplier(q)
        self._f1, self._2f2, self._f3 = to_multiplier(f1), to_multiplier(2 * f2), to_multiplier(f3)
        # Energy-weighted rates: hyperviscous energy loss nu |k|^{2p} / |k|^2 per |zeta_hat|^2.
        self._dissipation_weight = to_grid(viscous_rate * cpu.inv_ksq)
        # (u, v, zeta)_hat of the dealiased field from zeta_hat in one product:
        # u_hat = -i ky psi_hat, v_hat = i kx psi_hat, psi_hat = -zeta_hat / |k|^2.
        self._fields_op = torch.stack(
            [1j * grid.ky * grid.inv_ksq * grid.dealias, -1j * grid.kx * grid.inv_ksq * grid.dealias, grid.dealias]
        ).to(grid.cdtype)
        self._divergence_op = torch.stack([1j * grid.kx * grid.dealias, 1j * grid.ky * grid.dealias]).to(grid.cdtype)

    # ----------------------------------------------------------------------------------------
    # state and forcing

    def initial_state(self, generator: torch.Generator) -> torch.Tensor:
        """Rest plus one forcing kick: ``dt * xi_hat`` for one forcing draw (energy ``eps * dt`` on average).

        Statistically this is the state one step after starting from rest, the start of
        GeophysicalFlows.jl's example; the kick only makes the start depend on the seed. A start
        near the statistically steady energy would shorten the spin-up, but no formula gives that
        level for every parameter set (``eps / (2 mu)`` is far too high when hyperviscosity
        matters or ``mu`` is small, and a too energetic start breaks the advective CFL limit), so
        the (discarded) spin-up builds it.
        """
        return self.config.dt * self.draw_forcing(generator)

    def draw_forcing(self, generator: torch.Generator) -> torch.Tensor:
        """One step's forcing ``xi_hat`` (held fixed over the step), from a CPU generator."""
        n = self.grid.n
        noise = torch.randn((n, n), generator=generator, dtype=torch.float64)
        xi_hat = torch.fft.rfft2(noise) * self._forcing_filter
        return xi_hat.to(device=self.grid.device, dtype=self.grid.cdtype)

    # ----------------------------------------------------------------------------------------
    # dynamics

    def advection(self, zeta_hat: torch.Tensor) -> torch.Tensor:
        """Dealiased Jacobian ``J(psi, zeta) = d(u zeta)/dx + d(v zeta)/dy``, spectral.

        The 2/3 mask is applied to the input (before the products) and to the output, so the
        result is the exact projection of the continuous Jacobian of the dealiased field: it
        conserves energy and enstrophy to round-off, ``<psi J> = <zeta J> = 0``. One batched
        inverse transform of (u, v, zeta) and one batched forward transform of (u zeta, v zeta):
        3 inverse + 2 forward FFTs.
        """
        fields = self.grid.ifft(self._fields_op * zeta_hat.unsqueeze(-3))
        fluxes_hat = self.grid.fft(fields[..., :2, :, :] * fields[..., 2:, :, :])
        return (self._divergence_op * fluxes_hat).sum(dim=-3)

    def step(self, zeta_hat: torch.Tensor, forcing_hat: torch.Tensor | None = None) -> tuple[torch.Tensor, StepBudget]:
        """Advance one ``dt`` with ETDRK4 (Cox & Matthews 2002); return the new state and its budget.

        ``forcing_hat`` is from :meth:`draw_forcing`, or ``None`` for the unforced equation. It is
        a constant over the step: the same realisation is added to the nonlinear term at all four
        stages, so within a step the scheme integrates an ordinary differential equation with a
        constant forcing ``xi`` (a piecewise-constant approximation of white noise).

        Why the budget is consistent. Write ``zeta_mid = (zeta^n + zeta^{n+1}) / 2`` and
        ``psi_mid`` its streamfunction. For any two states, exactly (``a**2 - b**2 =
        (a - b)(a + b)``)::

            (E^{n+1} - E^n) / dt = -< psi_mid, (zeta^{n+1} - zeta^n) / dt >.

        Inserting the equation, ``(zeta^{n+1} - zeta^n)/dt = -J + L zeta + xi`` evaluated at the
        midpoint up to the stepper's error; ``<psi_mid J(psi_mid, zeta_mid)> = 0`` exactly (the
        dealiased Jacobian conserves energy), so

            dE/dt = injection - drag - dissipation,  injection = -<psi_mid xi>,
            drag = 2 mu E(zeta_mid),  dissipation = nu (1/N^2) sum |k|^{2p-2} |zeta_hat_mid|^2,

        with a residual that is the time-discretisation error only (it vanishes as dt -> 0).
        Measuring the work at the midpoint is the Stratonovich product that a forcing held fixed
        over the step implies: ``zeta_mid`` contains half of this step's own kick, ``~ dt xi / 2``,
        so ``E[injection] = (dt/2) (1/N^2) sum E|xi_hat|^2/|k|^2 = eps`` (the part from ``zeta^n``
        has zero mean as ``xi`` is independent of the past; the exponential integrator damps the
        kick by ``phi1(L dt) ~ 1 + L dt / 2``, a relative -2.5e-4 to -4e-4 at the forcing ring
        with the defaults). Measuring with ``psi^n`` alone (Ito) would give mean zero; with
        ``psi^{n+1}``, ``2 eps``.

        The budget terms are 0-d tensors (no ``.item()``, so no device sync here).
        """
        rhs = self._rhs_with(forcing_hat)
        n_0 = rhs(zeta_hat)
        e_half_zeta = self._e_half * zeta_hat
        a = e_half_zeta + self._q * n_0
        n_a = rhs(a)
        b = e_half_zeta + self._q * n_a
        n_b = rhs(b)
        c = self._e_half * a + self._q * (2 * n_b - n_0)
        n_c = rhs(c)
        new = self._e * zeta_hat + self._f1 * n_0 + self._2f2 * (n_a + n_b) + self._f3 * n_c

        grid = self.grid
        mid = 0.5 * (zeta_hat + new)
        mid_sq = mid.real**2 + mid.imag**2
        if forcing_hat is None:
            injection = torch.zeros(mid.shape[:-2], device=grid.device, dtype=grid.dtype)
        else:
            injection = grid.mean_product(mid * grid.inv_ksq, forcing_hat)  # -<psi_mid xi>
        budget = StepBudget(
            energy_before=self.energy(zeta_hat),
            energy_after=self.energy(new),
            injection=injection,
            drag=self.config.mu * grid.parseval_sum(mid_sq * grid.inv_ksq),
            dissipation=grid.parseval_sum(mid_sq * self._dissipation_weight),
        )
        return new, budget

    def _rhs_with(self, forcing_hat: torch.Tensor | None) -> Callable[[torch.Tensor], torch.Tensor]:
        """The nonlinear part of ETDRK4, ``N(zeta) = -J(psi, zeta) + xi`` (xi fixed for the step)."""
        if forcing_hat is None:
            return lambda z: -self.advection(z)
        return lambda z: forcing_hat - self.advection(z)

    # ----------------------------------------------------------------------------------------
    # diagnostics

    def energy(self, zeta_hat: torch.Tensor) -> torch.Tensor:
        """Kinetic energy per unit area ``E = <|u|^2>/2 = (1/2)(1/N^2) sum |zeta_hat|^2/|k|^2``."""
        return 0.5 * self.grid.parseval_sum((zeta_hat.real**2 + zeta_hat.imag**2) * self.grid.inv_ksq)

    def enstrophy(self, zeta_hat: torch.Tensor) -> torch.Tensor:
        """Enstrophy per unit area ``Z = <zeta^2>/2``."""
        return 0.5 * self.grid.parseval_sum(zeta_hat.real**2 + zeta_hat.imag**2)

    def vorticity(self, zeta_hat: torch.Tensor) -> torch.Tensor:
        """Physical vorticity, shape ``(..., n, n)`` indexed ``[iy, ix]``."""
        return self.grid.ifft(zeta_hat)

    def energy_spectrum(self, zeta_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Isotropic energy spectrum ``(k, E_k)``: integer shells, summed, so ``E_k.sum() == energy``."""
        density = 0.5 * (zeta_hat.real**2 + zeta_hat.imag**2) * self.grid.inv_ksq
        return self.grid.isotropic_spectrum(density)


def _etdrk4_coefficients(
    linear: torch.Tensor, dt: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """ETDRK4 coefficients for a real diagonal ``L`` (float64), after Kassam & Trefethen (2005).

    Returns ``exp(L dt)``, ``exp(L dt/2)`` and ``Q, f1, f2, f3`` of Cox & Matthews (2002)::

        Q  = dt (e^{z/2} - 1)/z
        f1 = dt (-4 - z + e^z (4 - 3z + z^2)) / z^3
        f2 = dt ( 2 + z + e^z (z - 2)) / z^3
        f3 = dt (-4 - 3z - z^2 + e^z (4 - z)) / z^3,     z = L dt.

    Written directly these cancel catastrophically for small ``|z|`` (and are 0/0 at ``z = 0``).
    Each is analytic, so its value equals its mean over a circle of radius 1 around ``z``;
    the mean over ``CONTOUR_POINTS`` points of the upper half circle, real part taken (``L`` is
    real, so the lower half mirrors it), is accurate to round-off for every ``z``.
    """
    z = linear * dt
    q = torch.zeros_like(z)
    f1 = torch.zeros_like(z)
    f2 = torch.zeros_like(z)
    f3 = torch.zeros_like(z)
    for j in range(CONTOUR_POINTS):
        r = complex(math.cos(math.pi * (j + 0.5) / CONTOUR_POINTS), math.sin(math.pi * (j + 0.5) / CONTOUR_POINTS))
        lr = z + r
        exp_lr = torch.exp(lr)
        lr3 = lr**3
        q += ((torch.exp(lr / 2) - 1) / lr).real
        f1 += ((-4 - lr + exp_lr * (4 - 3 * lr + lr**2)) / lr3).real
        f2 += ((2 + lr + exp_lr * (lr - 2)) / lr3).real
        f3 += ((-4 - 3 * lr - lr**2 + exp_lr * (4 - lr)) / lr3).real
    scale = dt / CONTOUR_POINTS
    return torch.exp(z), torch.exp(z / 2), q * scale, f1 * scale, f2 * scale, f3 * scale

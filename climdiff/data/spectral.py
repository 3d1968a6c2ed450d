"""Doubly periodic Fourier grid for the pseudo-spectral solver.

Conventions (shared by everything that reads solver output):

* A physical field is a real tensor ``f[..., iy, ix]`` on the points ``x = ix * L / n``,
  ``y = iy * L / n`` of the square ``[0, L)^2``; leading dimensions are batch dimensions.
* Its spectral form is ``torch.fft.rfft2(f)``: **unnormalised** forward transform (numpy's
  ``norm="backward"``), shape ``(..., n, n // 2 + 1)``. The last axis holds ``kx >= 0`` only
  (the real-to-complex half plane); ``ky`` runs over ``fftfreq`` order in the second-to-last axis.
* Parseval with that normalisation: the domain average of ``a * b`` is
  ``(1 / N**2) * sum_{full k} a_hat_k conj(b_hat_k)`` with ``N = n**2``. On the half plane every
  column ``0 < kx < n/2`` stands for itself and its mirror ``-kx``, so it is counted twice; the
  ``kx = 0`` and Nyquist (``kx = n/2``) columns are their own mirrors and are counted once. These
  multiplicities are :attr:`SpectralGrid.parseval_weights`.
* Wavenumbers carry units: ``k = (2 pi / L) * integer``; with the default ``L = 2 pi`` the
  fundamental wavenumber is 1 and integer shells are unit wide.
"""

from __future__ import annotations

import math

import torch

_COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128}


class SpectralGrid:
    """Wavenumbers, dealiasing mask and Parseval sums for an ``n x n`` periodic square.

    Every tensor is built once, on the grid's device and dtype, so the solver's hot path only
    multiplies by them.
    """

    def __init__(
        self,
        n: int,
        length: float = 2 * math.pi,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if n < 4 or n % 2:
            raise ValueError(f"grid size must be an even integer >= 4, got {n}")
        if dtype not in _COMPLEX_OF:
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.n = n
        self.length = float(length)
        self.device = torch.device(device)
        self.dtype = dtype
        self.cdtype = _COMPLEX_OF[dtype]
        self.k0 = 2 * math.pi / self.length  # fundamental wavenumber

        # Integer wavenumbers first (exact), then scaled: masks and shells use the integers.
        my = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)  # 0, 1, ..., -n/2, ..., -1
        mx = torch.fft.rfftfreq(n, d=1.0 / n, dtype=torch.float64)  # 0, 1, ..., n/2
        my, mx = torch.meshgrid(my, mx, indexing="ij")
        kx = self.k0 * mx
        ky = self.k0 * my
        ksq = kx**2 + ky**2
        inv_ksq = torch.where(ksq > 0, 1.0 / torch.where(ksq > 0, ksq, 1.0), 0.0)
        # 2/3 rule (Orszag 1971): keep |mx|, |my| < n/3. A product of two fields limited to those
        # modes reaches at most 2n/3, whose aliases land at |m| > n/3, i.e. outside the kept set.
        dealias = (mx.abs() < n / 3) & (my.abs() < n / 3)
        weights = torch.full_like(mx, 2.0)
        weights[:, 0] = 1.0
        weights[:, -1] = 1.0  # Nyquist column (n even)

        to = {"device": self.device, "dtype": dtype}
        self.kx: torch.Tensor = kx.to(**to)
        """x wavenumber on the half plane, shape ``(n, n//2 + 1)``."""
        self.ky: torch.Tensor = ky.to(**to)
        """y wavenumber on the half plane, shape ``(n, n//2 + 1)``."""
        self.ksq: torch.Tensor = ksq.to(**to)
        """``|k|^2``."""
        self.inv_ksq: torch.Tensor = inv_ksq.to(**to)
        """``1 / |k|^2``, set to 0 at ``k = 0`` (the mean mode carries no streamfunction)."""
        self.dealias: torch.Tensor = dealias.to(**to)
        """1 on the modes the 2/3 rule keeps, 0 elsewhere (Nyquist modes included in 0)."""
        self.parseval_weights: torch.Tensor = weights.to(**to)
        """Multiplicity of each half-plane mode in the full spectrum (1 or 2)."""
        self.shell_index: torch.Tensor = torch.round(ksq.sqrt() / self.k0).to(device=self.device, dtype=torch.int64)
        """Integer shell ``round(|k| / k0)`` of each half-plane mode."""
        self.n_shells = int(self.shell_index.max()) + 1

    @property
    def points(self) -> int:
        """``N = n**2``, the number of grid points (the Parseval normaliser is ``N**2``)."""
        return self.n * self.n

    def coordinates(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Physical coordinates ``(x, y)`` of the grid points, each of shape ``(n, n)``, indexed ``[iy, ix]``."""
        s = torch.arange(self.n, device=self.device, dtype=self.dtype) * (self.length / self.n)
        y, x = torch.meshgrid(s, s, indexing="ij")
        return x, y

    def fft(self, field: torch.Tensor) -> torch.Tensor:
        """Unnormalised real-to-complex transform over the last two axes."""
        return torch.fft.rfft2(field)

    def ifft(self, field_hat: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`fft` (``irfft2`` with the output size pinned to ``(n, n)``)."""
        return torch.fft.irfft2(field_hat, s=(self.n, self.n))

    def large_scales(self, field: torch.Tensor, cutoff: int) -> torch.Tensor:
        """The part of ``field`` on modes with integer wavenumbers ``|mx|, |my| <= cutoff``."""
        keep = (torch.round(self.kx / self.k0).abs() <= cutoff) & (torch.round(self.ky / self.k0).abs() <= cutoff)
        return self.ifft(self.fft(field) * keep).to(field.dtype)

    def parseval_sum(self, density: torch.Tensor) -> torch.Tensor:
        """``(1 / N**2) * sum over the full spectrum`` of a real per-mode quantity given on the half plane.

        ``density`` must be mirror-symmetric (its value at ``-k`` equals the one at ``k``), as
        ``|f_hat|^2 * g(|k|)`` is for a real field ``f``.
        """
        return (density * self.parseval_weights).sum(dim=(-2, -1)) / self.points**2

    def mean_product(self, a_hat: torch.Tensor, b_hat: torch.Tensor) -> torch.Tensor:
        """Domain average ``<a b>`` of two real fields, from their :meth:`fft` coefficients."""
        return self.parseval_sum((a_hat * b_hat.conj()).real)

    def isotropic_spectrum(self, density: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bin a per-mode quantity into integer wavenumber shells, **summing** within a shell.

        ``density`` is given on the half plane with the same convention as :meth:`parseval_sum`
        (for the energy spectrum: ``0.5 * |zeta_hat|^2 / |k|^2``). Shell ``j`` collects the modes
        with ``j - 1/2 <= |k| / k0 < j + 1/2``; shell 0 is the mean mode alone. Because shells
        are summed with the Parseval normalisation, ``spectrum.sum(-1) == parseval_sum(density)``
        (e.g. the energy per unit area). With ``L = 2 pi`` shells are unit wide, so the sums are
        also the spectral density ``E(k)`` with ``integral E dk = E``.

        Returns ``(k, spectrum)``: ``k = k0 * [0, 1, ..., n_shells - 1]`` and the shell sums with
        ``density``'s leading (batch) dimensions.
        """
        weighted = (density * self.parseval_weights / self.points**2).flatten(-2)
        index = self.shell_index.flatten().expand(weighted.shape)
        spectrum = torch.zeros((*weighted.shape[:-1], self.n_shells), device=density.device, dtype=density.dtype)
        spectrum.scatter_add_(-1, index, weighted)
        k = self.k0 * torch.arange(self.n_shells, device=density.device, dtype=density.dtype)
        return k, spectrum

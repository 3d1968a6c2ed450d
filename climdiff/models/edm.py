"""EDM preconditioning and training loss (Karras et al. 2022, sections 5 and B.6).

The denoiser wraps any backbone F(x, c_noise):

    D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma))

    c_skip = sd^2 / (sigma^2 + sd^2)      c_out = sigma sd / sqrt(sigma^2 + sd^2)
    c_in   = 1 / sqrt(sigma^2 + sd^2)     c_noise = ln(sigma) / 4

with sd = sigma_data, the standard deviation of the (transformed) training data. They make the
network's input and training target unit-variance at every noise level. The same wrapper is the
IDM (``cond_channels=0``) and the VDM baseline (``cond_channels > 0``): there the clean
conditioning frames are concatenated to c_in x as extra input channels and are *not* scaled,
since they carry no noise.

The loss draws ln(sigma) ~ N(P_mean, P_std^2) and weights the squared error by
w(sigma) = (sigma^2 + sd^2) / (sigma sd)^2 = 1 / c_out^2, which makes the effective target of F
unit-variance at every sigma. On a lat-lon grid it may also weight every cell by its area
(``cell_weights``, cos(lat) normalised to mean 1): a cell near a pole covers a small part of the
sphere, and without the weights the polar caps would count as much as the tropics do.
"""

from __future__ import annotations

import torch
from torch import nn


def per_sample_sigma(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """Sigma as a (B, 1, 1, 1) tensor in ``x``'s dtype and device, from a scalar, (B,) or (B,1,1,1)."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
    if sigma.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"sigma has {sigma.shape[0]} values for a batch of {x.shape[0]}")
    return sigma.expand(x.shape[0], 1, 1, 1)


def edm_coefficients(
    sigma: torch.Tensor, sigma_data: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(c_skip, c_out, c_in, c_noise) of EDM's preconditioning, elementwise in ``sigma``."""
    var = sigma**2 + sigma_data**2
    c_skip = sigma_data**2 / var
    c_out = sigma * sigma_data / var.sqrt()
    c_in = 1.0 / var.sqrt()
    c_noise = sigma.log() / 4.0
    return c_skip, c_out, c_in, c_noise


def training_sigma(z: torch.Tensor, P_mean: float, P_std: float) -> torch.Tensor:
    """EDM's training law of noise levels, ln sigma ~ N(P_mean, P_std^2), from standard normal
    draws ``z`` (the caller draws them: the loss from one generator per batch, training tasks from
    one per example)."""
    return (z * P_std + P_mean).exp()


def edm_loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """w(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2, elementwise."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


class EDMPrecond(nn.Module):
    """D(x; sigma[, cond]) around a backbone F(x, c_noise); the IDM, or the VDM when conditional.

    The backbone must take ``channels + cond_channels`` input channels and return ``channels``.
    ``doy`` (the target day's year fraction) is passed on to the backbone, which requires it if it
    is conditioned on the day of the year and refuses it otherwise.
    """

    def __init__(self, backbone: nn.Module, sigma_data: float, cond_channels: int = 0) -> None:
        super().__init__()
        if sigma_data <= 0:
            raise ValueError(f"sigma_data must be positive, got {sigma_data}")
        self.backbone = backbone
        self.sigma_data = float(sigma_data)
        self.cond_channels = int(cond_channels)

    @property
    def day_of_year(self) -> bool:
        """Whether the denoiser needs the target day's date (``doy``)."""
        return bool(getattr(self.backbone.config, "day_of_year", False))

    def forward(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor | float,
        cond: torch.Tensor | None = None,
        doy: torch.Tensor | None = None,
    ) -> torch.Tensor:
        sigma = per_sample_sigma(sigma, x)
        c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, self.sigma_data)
        inputs = c_in * x
        if self.cond_channels:
            if cond is None or cond.shape[1] != self.cond_channels:
                got = None if cond is None else cond.shape[1]
                raise ValueError(f"this model needs {self.cond_channels} conditioning channels, got {got}")
            inputs = torch.cat([inputs, cond.to(x.dtype)], dim=1)
        elif cond is not None:
            raise ValueError("this model is unconditional but was given conditioning frames")
        c_noise = c_noise.flatten()
        features = self.backbone(inputs, c_noise) if doy is None else self.backbone(inputs, c_noise, doy)
        return c_skip * x + c_out * features


class EDMLoss:
    """EDM's denoising score-matching loss; ``__call__`` returns one loss per sample, shape (B,).

    ln sigma ~ N(P_mean, P_std^2); loss = mean over elements of w(sigma) a (D(y + sigma n; sigma) - y)^2,
    with per-cell weights a (``cell_weights``, mean 1; 1 when not given). Pass ``generator`` to make
    sigma and noise reproducible independently of the global RNG.
    """

    def __init__(
        self, sigma_data: float, P_mean: float = -1.2, P_std: float = 1.2, cell_weights: torch.Tensor | None = None
    ) -> None:
        self.sigma_data = float(sigma_data)
        self.P_mean = float(P_mean)
        self.P_std = float(P_std)
        self.cell_weights = cell_weights  # broadcastable to a batch, e.g. (H, 1) for weights by latitude

    def sample_sigma(self, batch: int, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw (batch, 1, 1, 1) noise levels from the training distribution."""
        z = torch.randn(batch, 1, 1, 1, generator=generator, device=like.device, dtype=like.dtype)
        return training_sigma(z, self.P_mean, self.P_std)

    def __call__(
        self,
        net: nn.Module,
        y: torch.Tensor,
        cond: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        doy: torch.Tensor | None = None,
    ) -> torch.Tensor:
        sigma = self.sample_sigma(y.shape[0], y, generator)
        noise = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        return self.at(net, y, sigma, noise, cond, doy)

    def at(
        self,
        net: nn.Module,
        y: torch.Tensor,
        sigma: torch.Tensor,
        noise: torch.Tensor,
        cond: torch.Tensor | None = None,
        doy: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss for given noise levels (B, 1, 1, 1) and noise: for callers that draw them
        themselves (the training loop seeds every example on its own). ``doy`` is passed to a
        net conditioned on the day of the year."""
        denoised = net(y + sigma * noise, sigma, cond, doy)
        weight = edm_loss_weight(sigma, self.sigma_data)
        error = (denoised.to(y.dtype) - y) ** 2  # bf16 under autocast
        if self.cell_weights is not None:
            error = error * self.cell_weights.to(error)
        return (weight * error).flatten(1).mean(dim=1)

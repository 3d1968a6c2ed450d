"""DDPM++-family U-Net backbone (Song et al. 2021, as re-implemented in Karras et al. 2022).

The network F(x, c_noise) of the EDM denoiser. Built from a few blocks that the discriminator's
encoder reuses:

* :class:`NoiseEmbedding` - positional (DDPM++) or random-Fourier (NCSN++) features of the scalar
  noise label c_noise, then a 2-layer SiLU MLP to ``emb_channels``.
* :class:`ResBlock` - GroupNorm, SiLU, (down/up-sample), padded 3x3 conv, noise-embedding
  scale/shift of the second GroupNorm, SiLU, dropout, padded 3x3 conv; a 1x1 conv on the skip
  path where channels change or the block resamples; the sum is scaled by 1/sqrt(2) as in DDPM++
  so that activations keep unit scale however deep the net.
* :class:`AttentionBlock` - multi-head self-attention over all grid cells, residual, 1/sqrt(2).
  It has no positional encoding, so it commutes with any permutation of cells, shifts included.
* :class:`Encoder` - input conv, then per level ``num_blocks`` residual blocks and (except at the
  coarsest level) a downsampling residual block; every output is kept as a skip.

Levels are numbered from 0 (finest, full resolution) to ``len(channel_mult) - 1`` (coarsest).
``attention_levels`` lists the levels whose blocks get self-attention. Attention costs
O((H W)^2) per level, so the presets put it at the coarsest level(s) only, as DDPM++ does (it
attends at 16x16 for 32x32 images); the bottleneck gets attention too (``mid_attention``).

Initialisation follows DDPM++: Xavier-uniform weights, zero biases, and the last layer of every
residual branch (second conv, attention projection) and the output conv start at zero, so every
block starts as the identity (up to 1/sqrt(2)) and the untrained net outputs F = 0.

All convolutions pad by grid kind (:mod:`climdiff.models.padding`); with ``padding="periodic"``
the whole net commutes with periodic shifts by multiples of 2**(levels - 1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from climdiff.models.padding import (
    PaddedConv2d,
    check_grid_shape,
    check_padding_kind,
    downsample,
    upsample,
)

SKIP_SCALE = 1.0 / math.sqrt(2.0)
_Config = TypeVar("_Config", bound="BackboneConfig")
EMBEDDING_KINDS = ("positional", "fourier")


@dataclass(kw_only=True)
class BackboneConfig:
    """Settings shared by the U-Net and the discriminator's encoder.

    ``noise_channels`` (size of the c_noise features) defaults to ``base_channels`` and
    ``emb_channels`` (width of the embedding MLP) to ``4 * base_channels``, as in DDPM++; both are
    filled in on construction so that a stored configuration is explicit. ``day_of_year`` makes
    the net take the target day's date as a second condition (:class:`NoiseEmbedding`); it is
    off by default, and a configuration stored without it (older checkpoints) builds without it.
    """

    base_channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_blocks: int = 2
    attention_levels: tuple[int, ...] = (2,)
    attention_heads: int = 1
    dropout: float = 0.0
    noise_channels: int | None = None
    emb_channels: int | None = None
    embedding: Literal["positional", "fourier"] = "positional"
    padding: str = "periodic"
    norm_groups: int = 32
    day_of_year: bool = False

    def __post_init__(self) -> None:
        # JSON gives lists; the dataclass promises tuples (hashable, comparable with presets).
        self.channel_mult = tuple(int(m) for m in self.channel_mult)
        self.attention_levels = tuple(sorted(int(a) for a in self.attention_levels))
        if self.noise_channels is None:
            self.noise_channels = self.base_channels
        if self.emb_channels is None:
            self.emb_channels = 4 * self.base_channels
        check_padding_kind(self.padding)
        if self.embedding not in EMBEDDING_KINDS:
            raise ValueError(f"unknown embedding {self.embedding!r}; expected one of {EMBEDDING_KINDS}")
        if not self.channel_mult or min(self.channel_mult) < 1:
            raise ValueError(f"channel_mult must be a non-empty tuple of positive ints, got {self.channel_mult}")
        bad = [a for a in self.attention_levels if not 0 <= a < self.levels]
        if bad:
            raise ValueError(f"attention_levels {bad} outside 0..{self.levels - 1}")
        if self.noise_channels % 2:
            raise ValueError(f"noise_channels must be even (cos and sin halves), got {self.noise_channels}")

    @property
    def levels(self) -> int:
        """Number of resolutions; the grid is downsampled ``levels - 1`` times."""
        return len(self.channel_mult)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists) that ``from_dict`` turns back into the config."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[_Config], data: dict[str, Any]) -> _Config:
        """Rebuild from ``to_dict`` output; unknown keys raise ``TypeError`` (a newer writer)."""
        return cls(**data)


@dataclass(kw_only=True)
class UNetConfig(BackboneConfig):
    """The denoiser backbone: ``in_channels`` includes any conditioning channels (VDM)."""

    in_channels: int = 1
    out_channels: int = 1
    mid_attention: bool = True


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with at most ``groups`` groups of at least 4 channels, the count dividing ``channels``.

    Narrow nets (tests, CPU presets) cannot have 32 groups; like DDPM++ we shrink the count rather
    than fail, and additionally keep it a divisor of the channel count.
    """
    g = max(1, min(groups, channels // 4))
    while channels % g:
        g -= 1
    return nn.GroupNorm(g, channels, eps=1e-6)


class NoiseEmbedding(nn.Module):
    """Features of the noise label c_noise = ln(sigma)/4, mapped by an MLP to ``emb_channels``.

    "positional": cos/sin at frequencies 10000**(-i/(n/2-1)), i = 0..n/2-1 (DDPM++, as in EDM).
    "fourier": cos/sin at fixed random frequencies of scale 16 (NCSN++); the frequencies are a
    buffer drawn from a fixed seed, so they are stored with the weights and rebuilt identically.

    With ``day_of_year``, the date of the target day enters the same way EDM's networks take a
    class label: a linear map of its features (:func:`season_features`) is added to the noise
    features before the MLP, so every residual block's scale and shift can depend on the season.
    The layer exists only then, so the weights of an unconditioned net keep their names and an
    old checkpoint loads and computes exactly as before.
    """

    def __init__(
        self, noise_channels: int, emb_channels: int, kind: str = "positional", day_of_year: bool = False
    ) -> None:
        super().__init__()
        half = noise_channels // 2
        if kind == "positional":
            freqs = (1.0 / 10000.0) ** (torch.arange(half, dtype=torch.float32) / max(half - 1, 1))
        else:
            generator = torch.Generator().manual_seed(0)
            freqs = 2.0 * math.pi * 16.0 * torch.randn(half, generator=generator)
        self.register_buffer("freqs", freqs)
        self.mlp = nn.Sequential(
            nn.Linear(noise_channels, emb_channels),
            nn.SiLU(),
            nn.Linear(emb_channels, emb_channels),
            nn.SiLU(),
        )
        self.doy = nn.Linear(2, noise_channels) if day_of_year else None

    def forward(self, c_noise: torch.Tensor, doy: torch.Tensor | None = None) -> torch.Tensor:
        angles = c_noise.reshape(-1, 1).to(self.freqs.dtype) * self.freqs
        features = torch.cat([angles.cos(), angles.sin()], dim=1)
        if self.doy is not None:
            if doy is None:
                raise ValueError("this model is conditioned on the day of the year: pass doy (the year fraction)")
            features = features + self.doy(season_features(doy, len(features)).to(features.dtype))
        elif doy is not None:
            raise ValueError("this model has no day-of-year conditioning, but was given doy")
        return self.mlp(features)


def season_features(doy: torch.Tensor | float, batch: int) -> torch.Tensor:
    """(sin, cos)(2 pi doy), shape (batch, 2), from ``doy`` = the fraction of the year before
    the target day ((day of year - 1) / days in that year, :func:`climdiff.data.seasons.year_fraction`):
    one value for the batch or one per item. The two features make 31 December and 1 January
    neighbours, whatever the calendar's year length."""
    doy = torch.as_tensor(doy).reshape(-1, 1)
    if doy.shape[0] not in (1, batch):
        raise ValueError(f"doy has {doy.shape[0]} values for a batch of {batch}")
    angle = 2.0 * math.pi * doy.to(torch.float64)
    return torch.cat([angle.sin(), angle.cos()], dim=1).expand(batch, 2)


class _Resample(nn.Module):
    """Wraps a parameter-free resampling function so it can sit in the module tree."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class ResBlock(nn.Module):
    """DDPM++ residual block, optionally resampling ("down"/"up") inside the residual branch."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        emb_channels: int,
        *,
        padding: str,
        groups: int,
        dropout: float = 0.0,
        resample: Literal["down", "up"] | None = None,
    ) -> None:
        super().__init__()
        self.resample = nn.Identity() if resample is None else _Resample(downsample if resample == "down" else upsample)
        self.dropout = dropout
        self.norm0 = group_norm(in_channels, groups)
        self.conv0 = PaddedConv2d(in_channels, out_channels, 3, padding)
        self.affine = nn.Linear(emb_channels, 2 * out_channels)
        self.norm1 = group_norm(out_channels, groups)
        self.conv1 = PaddedConv2d(out_channels, out_channels, 3, padding)
        needs_skip = in_channels != out_channels or resample is not None
        self.skip = PaddedConv2d(in_channels, out_channels, 1, padding) if needs_skip else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv0(self.resample(F.silu(self.norm0(x))))
        scale, shift = self.affine(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(torch.addcmul(shift, self.norm1(h), scale + 1.0))
        h = self.conv1(F.dropout(h, p=self.dropout, training=self.training))
        x = self.resample(x)
        if self.skip is not None:
            x = self.skip(x)
        return (h + x) * SKIP_SCALE


class AttentionBlock(nn.Module):
    """Multi-head self-attention over all grid cells, residual, scaled by 1/sqrt(2)."""

    def __init__(self, channels: int, heads: int, *, padding: str, groups: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention over {channels} channels cannot be split into {heads} heads")
        self.heads = heads
        self.norm = group_norm(channels, groups)
        self.qkv = PaddedConv2d(channels, 3 * channels, 1, padding)
        self.proj = PaddedConv2d(channels, channels, 1, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each (b, heads, cells, c/heads)
        a = F.scaled_dot_product_attention(q, k, v)
        return (x + self.proj(a.transpose(-1, -2).reshape(b, c, h, w))) * SKIP_SCALE


class Step(nn.Module):
    """One U-Net step: a residual block, then self-attention if asked.

    ``takes_skip`` marks decoder steps that first concatenate the matching encoder output.
    """

    def __init__(
        self,
        cfg: BackboneConfig,
        in_channels: int,
        out_channels: int,
        *,
        attention: bool = False,
        resample: Literal["down", "up"] | None = None,
        takes_skip: bool = False,
    ) -> None:
        super().__init__()
        assert cfg.emb_channels is not None  # filled in by BackboneConfig.__post_init__
        self.out_channels = out_channels
        self.takes_skip = takes_skip
        self.block = ResBlock(
            in_channels,
            out_channels,
            cfg.emb_channels,
            padding=cfg.padding,
            groups=cfg.norm_groups,
            dropout=cfg.dropout,
            resample=resample,
        )
        self.attn = (
            AttentionBlock(out_channels, cfg.attention_heads, padding=cfg.padding, groups=cfg.norm_groups)
            if attention
            else None
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        x = self.block(x, emb)
        return x if self.attn is None else self.attn(x)


class Encoder(nn.Module):
    """The U-Net's down path; returns the coarsest features and every intermediate output (skips)."""

    def __init__(self, cfg: BackboneConfig, in_channels: int) -> None:
        super().__init__()
        self.levels = cfg.levels
        self.padding = cfg.padding
        channels = cfg.base_channels
        self.conv_in = PaddedConv2d(in_channels, channels, 3, cfg.padding)
        self.skip_channels = [channels]
        self.steps = nn.ModuleList()
        for level, mult in enumerate(cfg.channel_mult):
            if level > 0:
                self.steps.append(Step(cfg, channels, channels, resample="down"))
                self.skip_channels.append(channels)
            for _ in range(cfg.num_blocks):
                step = Step(cfg, channels, cfg.base_channels * mult, attention=level in cfg.attention_levels)
                channels = step.out_channels
                self.steps.append(step)
                self.skip_channels.append(channels)
        self.out_channels = channels

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        check_grid_shape(tuple(x.shape[-2:]), self.levels, self.padding)
        x = self.conv_in(x)
        skips = [x]
        for step in self.steps:
            x = step(x, emb)
            skips.append(x)
        return x, skips


class UNet(nn.Module):
    """DDPM++ U-Net: ``forward(x, c_noise[, doy])`` maps (B, in, H, W) and (B,) to (B, out, H, W);
    ``doy`` (the target day's year fraction, (B,)) is required by, and only accepted by, a net
    configured with ``day_of_year``."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        assert cfg.noise_channels is not None and cfg.emb_channels is not None
        self.embedding = NoiseEmbedding(cfg.noise_channels, cfg.emb_channels, cfg.embedding, cfg.day_of_year)
        self.encoder = Encoder(cfg, cfg.in_channels)
        channels = self.encoder.out_channels
        self.mid = nn.ModuleList(
            [Step(cfg, channels, channels, attention=cfg.mid_attention), Step(cfg, channels, channels)]
        )
        skips = list(self.encoder.skip_channels)
        self.decoder = nn.ModuleList()
        for level in reversed(range(cfg.levels)):
            if level < cfg.levels - 1:
                self.decoder.append(Step(cfg, channels, channels, resample="up"))
            for idx in range(cfg.num_blocks + 1):
                attention = idx == cfg.num_blocks and level in cfg.attention_levels
                out = cfg.base_channels * cfg.channel_mult[level]
                self.decoder.append(Step(cfg, channels + skips.pop(), out, attention=attention, takes_skip=True))
                channels = out
        self.norm_out = group_norm(channels, cfg.norm_groups)
        self.conv_out = PaddedConv2d(channels, cfg.out_channels, 3, cfg.padding)
        init_ddpmpp(self)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, doy: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embedding(c_noise, doy)
        x, skips = self.encoder(x, emb)
        for step in self.mid:
            x = step(x, emb)
        for step in self.decoder:
            if step.takes_skip:
                x = torch.cat([x, skips.pop()], dim=1)
            x = step(x, emb)
        return self.conv_out(F.silu(self.norm_out(x)))


def init_ddpmpp(model: nn.Module) -> None:
    """Xavier-uniform weights and zero biases; zero the last layer of each residual branch and the
    net's output conv (attribute names ``conv1``, ``proj``, ``conv_out``), so blocks start as identity."""
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            if name.rsplit(".", 1)[-1] in ("conv1", "proj", "conv_out"):
                nn.init.zeros_(module.weight)
            else:
                nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; works on the meta device, so presets count in milliseconds."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

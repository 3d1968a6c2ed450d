"""Named model sizes, and rebuilding a model from its stored configuration.

Presets (parameter counts for one variable per frame; see docs/models.md for the table):

``tiny``
    For tests: a two-level net of a few ten thousand parameters; a training step on 16 x 16 takes
    milliseconds.
``small``
    The CPU default: three levels, base 32 channels, one residual block per level, attention at
    the coarsest level (16 x 16 on a 64 x 64 grid). IDM 1.37 M parameters; a training step of
    batch 8 takes about 0.55 s at 64 x 64 on 2 CPU threads (0.15 s at 32 x 32), i.e. a few
    thousand steps in half an hour. Its discriminator (0.1 M, no attention) costs a tenth of an IDM step.
``paper``
    Matches the paper's parameter counts (Hess et al. 2025, Table 1, turbulence at 256 x 256);
    the printed configurations cannot all be built, so:

    * IDM, printed "base 128, mult (1,2,2), 3 res blocks, attention at 8, 4, 33.8 M": we keep base,
      mult and blocks. A 3-level net on 256 x 256 has no 8 x 8 or 4 x 4 level, so attention is in
      the bottleneck only (64 x 64), which is also what EDM's DDPM++ code builds when no
      ``attn_resolutions`` entry matches a level. Our residual blocks modulate by scale *and* shift,
      which costs more parameters than DDPM++'s shift-only embedding, so the embedding MLP is
      256 wide instead of 512: 34.48 M parameters (+2.0 %). The precipitation net of the paper
      (25.7 M, 2 res blocks) is ``idm_config("paper", num_blocks=2)``: 26.89 M (+4.6 %).
    * Discriminator, printed "base 128, mult (1,2,2), 2 res blocks, 1.7 M": base 128 alone gives
      ~28 M. We keep mult (1,2,2), 2 blocks and the 1024-wide head (fed by mean and standard
      deviation pooling, so 2 x 108 inputs), and shrink the base to 54 (embedding 192, no
      attention, so its cost stays a few percent of the IDM's): 1.72 M (+1.3 %). The
      precipitation discriminator (7.5 M, "base 64, mult (4,2,1)") is ``disc_config("paper",
      base_channels=64, channel_mult=(4, 2, 1), num_blocks=3, emb_channels=384)``: 7.65 M (+2.0 %).

Every function returns a plain JSON-ready dict, the form stored in checkpoints; ``build_model``
turns it back into a module and ``model_config`` extracts it from one. ``**overrides`` replace
single fields of a preset (e.g. ``attention_levels=()``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from climdiff.models.discriminator import DiscriminatorConfig, TimeDiscriminator
from climdiff.models.edm import EDMPrecond
from climdiff.models.unet import UNet, UNetConfig

MODEL_KINDS: tuple[str, ...] = ("idm", "disc", "vdm")

_BACKBONES: dict[str, dict[str, Any]] = {
    "tiny": dict(base_channels=8, channel_mult=(1, 2), num_blocks=1, attention_levels=(1,), emb_channels=32),
    "small": dict(base_channels=32, channel_mult=(1, 2, 2), num_blocks=1, attention_levels=(2,), emb_channels=128),
    "paper": dict(base_channels=128, channel_mult=(1, 2, 2), num_blocks=3, attention_levels=(), emb_channels=256),
}

_DISCRIMINATORS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        base_channels=8, channel_mult=(1, 2), num_blocks=1, attention_levels=(), emb_channels=32, head_width=32
    ),
    "small": dict(
        base_channels=16, channel_mult=(1, 2, 2), num_blocks=1, attention_levels=(), emb_channels=64, head_width=256
    ),
    "paper": dict(
        base_channels=54, channel_mult=(1, 2, 2), num_blocks=2, attention_levels=(), emb_channels=192, head_width=1024
    ),
}

PRESETS: tuple[str, ...] = tuple(_BACKBONES)


def _preset(table: dict[str, dict[str, Any]], preset: str) -> dict[str, Any]:
    if preset not in table:
        raise ValueError(f"unknown model preset {preset!r}; expected one of {', '.join(table)}")
    return dict(table[preset])


def idm_config(
    preset: str = "small", channels: int = 1, padding: str = "periodic", sigma_data: float = 1.0, **overrides: Any
) -> dict[str, Any]:
    """Configuration of an unconditional image diffusion model (EDM denoiser of one frame)."""
    return vdm_config(preset, channels, padding, sigma_data, cond_frames=0, **overrides)


def vdm_config(
    preset: str = "small",
    channels: int = 1,
    padding: str = "periodic",
    sigma_data: float = 1.0,
    cond_frames: int = 2,
    **overrides: Any,
) -> dict[str, Any]:
    """Configuration of the video diffusion baseline: the IDM's backbone with ``cond_frames``
    clean frames as extra input channels (``cond_frames=0`` is the IDM)."""
    cond_channels = channels * cond_frames
    backbone = UNetConfig(
        in_channels=channels + cond_channels,
        out_channels=channels,
        padding=padding,
        **{**_preset(_BACKBONES, preset), **overrides},
    )
    return {"backbone": backbone.to_dict(), "sigma_data": float(sigma_data), "cond_channels": cond_channels}


def disc_config(
    preset: str = "small",
    channels: int = 1,
    padding: str = "periodic",
    tendency_scale: float = 1.0,
    cond_frames: int = 2,
    **overrides: Any,
) -> dict[str, Any]:
    """Configuration of the time-consistency discriminator (``tendency_scale``: the std of the
    data's one-day change, see :mod:`climdiff.models.discriminator`)."""
    cfg = DiscriminatorConfig(
        channels=channels,
        cond_frames=cond_frames,
        padding=padding,
        tendency_scale=float(tendency_scale),
        **{**_preset(_DISCRIMINATORS, preset), **overrides},
    )
    return cfg.to_dict()


def config_for(kind: str, preset: str = "small", **kwargs: Any) -> dict[str, Any]:
    """``idm_config``/``disc_config``/``vdm_config`` chosen by ``kind``."""
    builders = {"idm": idm_config, "disc": disc_config, "vdm": vdm_config}
    if kind not in builders:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    return builders[kind](preset, **kwargs)


def build_model(kind: str, config: dict[str, Any]) -> nn.Module:
    """Rebuild a model from ``kind`` and its configuration dict (as the preset functions return and
    checkpoints store). Raises ``ValueError``/``TypeError`` for configurations that cannot be built."""
    if kind == "disc":
        return TimeDiscriminator(DiscriminatorConfig.from_dict(config))
    if kind not in ("idm", "vdm"):
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    if set(config) != {"backbone", "sigma_data", "cond_channels"}:
        raise ValueError(
            f"{kind} configuration needs exactly backbone, sigma_data, cond_channels; got {sorted(config)}"
        )
    backbone = UNetConfig.from_dict(config["backbone"])
    cond_channels = int(config["cond_channels"])
    if (kind == "vdm") != (cond_channels > 0):
        raise ValueError(f"a {kind} has {'some' if kind == 'vdm' else 'no'} conditioning channels, got {cond_channels}")
    if backbone.in_channels != backbone.out_channels + cond_channels:
        raise ValueError(
            f"backbone takes {backbone.in_channels} channels, but {backbone.out_channels} noisy + "
            f"{cond_channels} conditioning were configured"
        )
    return EDMPrecond(UNet(backbone), sigma_data=float(config["sigma_data"]), cond_channels=cond_channels)


def backbone_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The backbone part of a model configuration: ``config["backbone"]`` of an IDM or VDM, the
    whole configuration of a discriminator (its encoder settings sit at the top level)."""
    return config["backbone"] if "backbone" in config else config


def conditions_on_day_of_year(config: dict[str, Any]) -> bool:
    """Whether a model configuration (any kind) takes the target day's date; False for
    configurations written before the option existed."""
    return bool(backbone_settings(config).get("day_of_year", False))


def model_config(model: nn.Module) -> tuple[str, dict[str, Any]]:
    """(kind, configuration dict) of a model built by ``build_model``; the inverse of it."""
    if isinstance(model, TimeDiscriminator):
        return "disc", model.config.to_dict()
    if isinstance(model, EDMPrecond) and isinstance(model.backbone, UNet):
        kind = "vdm" if model.cond_channels else "idm"
        return kind, {
            "backbone": model.backbone.config.to_dict(),
            "sigma_data": model.sigma_data,
            "cond_channels": model.cond_channels,
        }
    raise TypeError(f"cannot describe a {type(model).__name__}: only climdiff's IDM, VDM and discriminator")

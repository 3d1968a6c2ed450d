"""Neural networks of climdiff: the DDPM++ U-Net, EDM preconditioning and loss, the
time-consistency discriminator, padding by grid kind, and named presets (docs/models.md)."""

from climdiff.models.discriminator import DiscriminatorConfig, TimeDiscriminator
from climdiff.models.edm import (
    EDMLoss,
    EDMPrecond,
    edm_coefficients,
    edm_loss_weight,
    per_sample_sigma,
)
from climdiff.models.padding import PADDING_KINDS, PaddedConv2d, check_grid_shape, pad2d
from climdiff.models.presets import (
    MODEL_KINDS,
    PRESETS,
    backbone_settings,
    build_model,
    conditions_on_day_of_year,
    config_for,
    disc_config,
    idm_config,
    model_config,
    vdm_config,
)
from climdiff.models.unet import UNet, UNetConfig, count_parameters, season_features

__all__ = [
    "MODEL_KINDS",
    "PADDING_KINDS",
    "PRESETS",
    "DiscriminatorConfig",
    "EDMLoss",
    "EDMPrecond",
    "PaddedConv2d",
    "TimeDiscriminator",
    "UNet",
    "UNetConfig",
    "backbone_settings",
    "build_model",
    "check_grid_shape",
    "conditions_on_day_of_year",
    "config_for",
    "count_parameters",
    "disc_config",
    "edm_coefficients",
    "edm_loss_weight",
    "idm_config",
    "model_config",
    "pad2d",
    "per_sample_sigma",
    "season_features",
    "vdm_config",
]

"""Typed training configuration: preset defaults < config file (TOML/YAML) < command-line flags."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from climdiff.data.windows import require_negatives, require_synthetic_negatives
from climdiff.errors import ClimdiffError
from climdiff.finite import require_finite_settings
from climdiff.models.presets import MODEL_KINDS, PRESETS
from climdiff.resume import without_added_defaults

# Optimisation defaults per model preset. `paper` follows Hess et al. (2025), Table 2: AdamW,
# lr 1e-4, EMA 0.9999, batch 2 (IDM) / 8 (discriminator), trained by epochs.
_TRAINING: dict[str, dict[str, Any]] = {
    "tiny": dict(
        steps=40,
        batch_size=8,
        lr=1e-3,
        warmup_steps=5,
        ema_decay=0.99,
        log_every=10,
        val_every=20,
        checkpoint_every=20,
        val_batches=2,
    ),
    "small": dict(
        steps=3000,
        batch_size=16,
        lr=5e-4,
        warmup_steps=200,
        ema_decay=0.999,
        log_every=50,
        val_every=500,
        checkpoint_every=250,
        val_batches=8,
    ),
    "paper": dict(
        steps=None,
        epochs=350,
        batch_size=2,
        lr=1e-4,
        warmup_steps=1000,
        ema_decay=0.9999,
        log_every=100,
        val_every=5000,
        checkpoint_every=2000,
        val_batches=32,
    ),
}
_PAPER_DISC = dict(epochs=500, batch_size=8)


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; the whole of it identifies the run for resume.

    ``area_weighted``: weight the EDM loss (IDM, VDM) by cell area, cos(lat), on lat-lon grids (no
    effect on the periodic square). ``day_of_year``: condition the model on the target day's date.
    """

    kind: str
    preset: str = "small"
    model: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None
    epochs: int | None = None
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup_steps: int = 200
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    log_every: int = 50
    val_every: int = 500
    val_batches: int = 8
    checkpoint_every: int = 250
    seed: int = 0
    amp: bool = False
    P_mean: float = -1.2
    P_std: float = 1.2
    offset_std: float = 2.0
    negatives: str = "all"
    foreign_changes: float = 0.0
    large_scale_negatives: float = 0.0
    large_scale_cutoff: int = 4
    crop: int | None = None
    disc_sigma_max: float | None = None
    area_weighted: bool = True
    day_of_year: bool = False

    def __post_init__(self) -> None:
        for setting in dataclasses.fields(self):
            _check_type(setting.name, getattr(self, setting.name), str(setting.type))
        require_finite_settings(self)
        if self.kind not in MODEL_KINDS:
            raise ClimdiffError(f"unknown model kind {self.kind!r} (use {', '.join(MODEL_KINDS)})")
        if self.preset not in PRESETS:
            raise ClimdiffError(f"unknown preset {self.preset!r} (use {', '.join(PRESETS)})")
        if (self.steps is None) == (self.epochs is None):
            raise ClimdiffError("give exactly one of steps and epochs")
        positive = ("steps", "epochs", "batch_size", "log_every", "val_every", "val_batches", "checkpoint_every")
        for name in positive:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ClimdiffError(f"{name} must be a positive integer, got {value}")
        if not self.lr > 0 or self.warmup_steps < 0 or not self.grad_clip > 0 or not 0 <= self.ema_decay < 1:
            raise ClimdiffError("need lr > 0, warmup_steps >= 0, grad_clip > 0 and 0 <= ema_decay < 1")
        if self.crop is not None and self.crop < 4:
            raise ClimdiffError(f"crop must be at least 4 grid points, got {self.crop}")
        require_negatives(self.negatives)
        require_synthetic_negatives(self.foreign_changes, self.large_scale_negatives, self.large_scale_cutoff)
        if self.disc_sigma_max is not None and not self.disc_sigma_max > 0:
            raise ClimdiffError(f"disc_sigma_max must be positive, got {self.disc_sigma_max}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The settings a run directory is identified by: every field, except those added after
        runs were first written (:data:`ADDED_SETTINGS`) while they hold their default, so a run
        started by an earlier version still resumes."""
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.name in ADDED_SETTINGS}
        return without_added_defaults(self.to_dict(), defaults)


# Training settings added after the first runs were written (the made-up negatives, 2026-12-04).
ADDED_SETTINGS = ("foreign_changes", "large_scale_negatives", "large_scale_cutoff")


# The Python types a setting's annotation allows (an int where a float is expected is fine; a bool,
# although Python counts it as an int, is not a number of steps).
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "dict[str, Any]": (dict,),
}


def _check_type(name: str, value: Any, annotation: str) -> None:
    """Refuse a setting of the wrong type (e.g. ``lr = "fast"`` in a config file), naming it."""
    allowed = annotation.split(" | ")
    if value is None and "None" in allowed:
        return
    types = tuple(t for a in allowed for t in _TYPES.get(a, ()))
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        wanted = " or ".join(a for a in allowed if a != "None")
        raise ClimdiffError(f"setting {name} must be {wanted}, got {value!r}")


def preset_defaults(kind: str, preset: str) -> dict[str, Any]:
    """Optimisation settings of a model preset."""
    if preset not in _TRAINING:
        raise ClimdiffError(f"unknown preset {preset!r} (use {', '.join(_TRAINING)})")
    values = dict(_TRAINING[preset])
    if preset == "paper" and kind == "disc":
        values.update(_PAPER_DISC)
    return values


def read_config_file(path: Path) -> dict[str, Any]:
    """Settings from a TOML file (or YAML when PyYAML is installed)."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ClimdiffError(f"cannot read config file {path}: {err.strerror}") from None
    try:
        if Path(path).suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ClimdiffError("YAML config files need PyYAML (pip install pyyaml); TOML needs nothing") from None
            values = yaml.safe_load(text) or {}
        else:
            values = tomllib.loads(text)
    except ClimdiffError:
        raise
    except Exception as err:
        raise ClimdiffError(f"cannot parse config file {path}: {err}") from None
    if not isinstance(values, dict):
        raise ClimdiffError(f"config file {path} must hold a table of settings")
    return values


def resolve_config(kind: str, file_values: dict[str, Any], flags: dict[str, Any]) -> TrainConfig:
    """Merge preset defaults, the config file and the flags that were given (not None)."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(file_values) - known)
    if unknown:
        raise ClimdiffError(f"unknown setting(s) in config file: {', '.join(unknown)}")
    given = {k: v for k, v in flags.items() if v is not None}
    preset = given.get("preset", file_values.get("preset", "small"))
    merged: dict[str, Any] = {**preset_defaults(kind, preset), **file_values, **given, "kind": kind, "preset": preset}
    if ("steps" in file_values or "steps" in given) and "epochs" not in given and "epochs" not in file_values:
        merged["epochs"] = None
    if ("epochs" in file_values or "epochs" in given) and "steps" not in given and "steps" not in file_values:
        merged["steps"] = None
    try:
        return TrainConfig(**merged)
    except TypeError as err:
        raise ClimdiffError(f"bad training setting: {err}") from None

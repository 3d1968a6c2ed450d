"""The protocol of `climdiff experiment compare`: every setting that decides its results.

A protocol is a preset (``tiny`` for tests, ``small`` for a 2-core CPU) with single settings
replaced. Its whole content identifies an experiment folder (stored in ``experiment.json``), so a
re-run with another protocol is refused instead of mixing two studies in one report.

Lengths of the long runs are given in calendar years (turned into days from the bundle's first
generated day and calendar) or in days; a century length of 0 members skips the century runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from climdiff.errors import ClimdiffError
from climdiff.evaluate.families import FAMILIES, FORECAST_FAMILIES
from climdiff.models.presets import MODEL_KINDS
from climdiff.resume import without_added_defaults
from climdiff.sampling.config import SamplerConfig

METHODS = ("guided", "unguided", "vdm")
CENTURY_METHODS = ("guided", "vdm")  # the paper's century runs: the guided IDM and its baseline


@dataclass(frozen=True)
class CompareProtocol:
    """Training, sampling, rollout and evaluation settings of one comparison.

    ``churn``: the sampler's S_churn for all three methods (the EDM paper's 55 unless given);
    ``solver``: their ODE solver (``heun`` or ``dpmpp_2m``, which needs churn 0).
    ``climate_metrics``: the metric families of the long runs' evaluation (None: every one that
    applies). ``runs``: trained runs given instead of training (kind -> resolved run directory).
    """

    preset: str
    train_steps: dict[str, int]
    seed: int = 0
    device: str = "cpu"
    sampler_steps: int = 20
    guidance: float = 14.0
    guidance_sigma_max: float | None = None
    churn: float = SamplerConfig.S_churn
    solver: str = SamplerConfig.solver
    long_years: int | None = None
    long_days: int | None = None
    long_members: int = 4
    century_years: int | None = None
    century_days: int | None = None
    century_members: int = 2
    starts: int = 20
    members: int = 10
    leads: int = 10
    block_days: int = 30
    resamples: int = 200
    time_chunk: int = 365
    climate_metrics: list[str] | None = None
    runs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if sorted(self.train_steps) != sorted(MODEL_KINDS) or min(self.train_steps.values()) < 1:
            raise ClimdiffError(f"train_steps needs a positive step count for each of {', '.join(MODEL_KINDS)}")
        for name in ("sampler_steps", "long_members", "starts", "leads", "block_days", "time_chunk"):
            if getattr(self, name) < 1:
                raise ClimdiffError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.members < 2:
            raise ClimdiffError(f"--members must be at least 2 (calibration needs an ensemble), got {self.members}")
        if self.century_members < 0 or self.resamples < 10 or self.guidance < 0 or self.churn < 0:
            raise ClimdiffError("need --century-members >= 0, --resamples >= 10, --guidance >= 0 and --churn >= 0")
        self.sampler()  # the sampler's own checks (solver name, churn against the solver, window)
        _check_length("long", self.long_years, self.long_days)
        if self.century_members:
            _check_length("century", self.century_years, self.century_days)
        climate = [f for f in FAMILIES if f not in FORECAST_FAMILIES]
        wrong = sorted(set(self.climate_metrics or []) - set(climate))
        if wrong:
            raise ClimdiffError(
                f"unknown long-run metric famil(ies) {', '.join(wrong)} (choose from {', '.join(climate)})"
            )
        unknown = sorted(set(self.runs) - set(MODEL_KINDS))
        if unknown:
            raise ClimdiffError(f"unknown trained run kind(s): {', '.join(unknown)}")

    @property
    def century(self) -> tuple[str, ...]:
        """The methods that get century runs (none when ``century_members`` is 0)."""
        return CENTURY_METHODS if self.century_members else ()

    def sampler(self) -> SamplerConfig:
        """The sampler settings of the methods' bundles (a bundle without a discriminator samples unguided)."""
        return SamplerConfig(
            steps=self.sampler_steps,
            guidance=self.guidance,
            guidance_sigma_max=self.guidance_sigma_max,
            S_churn=self.churn,
            solver=self.solver,
        )

    def to_dict(self) -> dict[str, Any]:
        """The protocol as a dict (an experiment folder's identity); the default Heun solver is left
        out, so that folders started before the solver could be chosen still resume."""
        return without_added_defaults(dataclasses.asdict(self), {"solver": SamplerConfig.solver})


def _check_length(name: str, years: int | None, days: int | None) -> None:
    if (years is None) == (days is None):
        raise ClimdiffError(f"give exactly one of --{name}-years and --{name}-days")
    value = years if years is not None else days
    if value < 1:
        raise ClimdiffError(f"the {name} runs must be at least one {'year' if years is not None else 'day'} long")


# `tiny`: under a minute on 2 cores (tests; the models learn little, the pipeline is what is tested). `small`: issue 12's CPU protocol (20 starts x 10
# members x 10 leads; 10-year runs x 4 members per method; 100-year runs x 2 members for the guided
# IDM and the VDM), models of the `small` training preset.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        train_steps={"idm": 10, "disc": 20, "vdm": 10},
        sampler_steps=8,
        guidance=3.0,
        long_days=16,  # three bootstrap blocks, two of which hold lag 10
        long_members=2,
        century_days=12,
        century_members=1,
        starts=2,
        members=2,
        leads=2,
        block_days=5,
        resamples=10,
        time_chunk=6,
        climate_metrics=["bias", "spectra", "temporal", "extremes", "stability"],  # the EOFs' resampling is slow
    ),
    "small": dict(
        train_steps={"idm": 3000, "disc": 3000, "vdm": 3000},
        sampler_steps=20,
        guidance=14.0,
        long_years=10,
        long_members=4,
        century_years=100,
        century_members=2,
        starts=20,
        members=10,
        leads=10,
        block_days=30,
        resamples=200,
        time_chunk=365,
    ),
}


def resolve_protocol(
    preset: str, overrides: dict[str, Any], runs: dict[str, Path | None] | None = None
) -> CompareProtocol:
    """The preset with the given (not None) settings replaced and the given trained runs.

    ``train_steps`` may be one number for all three models. Years replace the preset's days and
    days its years, so ``--long-years 2`` works on the tiny preset too.
    """
    if preset not in PRESETS:
        raise ClimdiffError(f"unknown experiment preset {preset!r} (use {', '.join(PRESETS)})")
    values = {**PRESETS[preset], "preset": preset}
    given = {k: v for k, v in overrides.items() if v is not None}
    for run in ("long", "century"):
        if f"{run}_years" in given:
            values[f"{run}_days"] = None
        if f"{run}_days" in given:
            values[f"{run}_years"] = None
    if isinstance(given.get("train_steps"), int):
        given["train_steps"] = dict.fromkeys(MODEL_KINDS, given["train_steps"])
    values.update(given)
    values["runs"] = {kind: str(Path(path).resolve()) for kind, path in (runs or {}).items() if path is not None}
    try:
        return CompareProtocol(**values)
    except TypeError as err:
        raise ClimdiffError(f"bad experiment setting: {err}") from None

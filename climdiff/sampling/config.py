"""Sampler settings: the EDM stochastic sampler and discriminator guidance (docs/architecture.md, "Where each formula lives").

Defaults are the paper's turbulence settings (Hess et al. 2025, Table 2): 50 steps, sigma in
[0.002, 80], rho 7, S_churn 55, S_noise 1.005, S_tmin 0, S_tmax 1000, guidance strength 14,
guidance over the whole schedule, the discriminator's logit clipped to +-11.5 (d clipped to
[1e-5, 1 - 1e-5]), and the Heun solver. ``solver="dpmpp_2m"`` takes DPM-Solver++(2M) instead:
one network call per step instead of two, deterministic (no churn).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from climdiff.errors import ClimdiffError
from climdiff.finite import require_finite_settings
from climdiff.resume import without_added_defaults

SOLVERS = ("heun", "dpmpp_2m")


@dataclass(frozen=True)
class SamplerConfig:
    """Everything that decides how one day is drawn, stored in bundles and outputs."""

    steps: int = 50
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    S_churn: float = 55.0
    S_tmin: float = 0.0
    S_tmax: float = 1000.0
    S_noise: float = 1.005
    guidance: float = 14.0
    guidance_sigma_min: float = 0.0
    guidance_sigma_max: float | None = None
    logit_clip: float = 11.5
    solver: str = "heun"

    def __post_init__(self) -> None:
        require_finite_settings(self)
        if self.steps < 1:
            raise ClimdiffError(f"sampler steps must be positive, got {self.steps}")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ClimdiffError(f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")
        if self.rho <= 0 or self.S_churn < 0 or self.S_noise <= 0:
            raise ClimdiffError("need rho > 0, S_churn >= 0 and S_noise > 0")
        if self.guidance < 0:
            raise ClimdiffError(f"guidance strength must be non-negative, got {self.guidance}")
        upper = self.guidance_sigma_max
        if self.guidance_sigma_min < 0 or (upper is not None and upper < self.guidance_sigma_min):
            raise ClimdiffError("the guidance window needs 0 <= guidance_sigma_min <= guidance_sigma_max")
        if self.logit_clip <= 0:
            raise ClimdiffError(f"logit_clip must be positive, got {self.logit_clip}")
        if self.solver not in SOLVERS:
            raise ClimdiffError(f"unknown sampler solver {self.solver!r} (choose from {', '.join(SOLVERS)})")
        if self.solver == "dpmpp_2m" and self.S_churn > 0:
            raise ClimdiffError("the dpmpp_2m solver is deterministic: it needs S_churn = 0 (--churn 0)")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a dict; the default Heun solver is left out, so that the bundles and
        stores written before the solver could be chosen keep their identity (resume compares it)."""
        return without_added_defaults(dataclasses.asdict(self), {"solver": "heun"})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SamplerConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ClimdiffError(f"unknown sampler setting(s): {', '.join(unknown)}")
        return cls(**values)

    def replace(self, **changes: Any) -> SamplerConfig:
        """A copy with the given settings changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

"""Where each output of a comparison lives in its folder, and what each evaluation compares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from climdiff.experiment.protocol import METHODS, CompareProtocol

FOLDERS = ("runs", "bundles", "forecasts", "rollouts", "evaluation")


@dataclass(frozen=True)
class Layout:
    """The paths of one experiment folder (``root``) under its protocol."""

    root: Path
    protocol: CompareProtocol

    def run(self, kind: str) -> Path:
        """A training run: the one given (--idm/--disc/--vdm) or the one trained here."""
        given = self.protocol.runs.get(kind)
        return Path(given) if given else self.root / "runs" / kind

    def bundle(self, method: str) -> Path:
        return self.root / "bundles" / f"{method}.bundle"

    def long(self, method: str) -> Path:
        return self.root / "rollouts" / f"{method}.zarr"

    def century(self, method: str) -> Path:
        return self.root / "rollouts" / f"{method}-century.zarr"

    def forecast(self, method: str) -> Path:
        return self.root / "forecasts" / f"{method}.zarr"

    def evaluation(self, name: str) -> Path:
        return self.root / "evaluation" / name

    def evaluations(self) -> dict[str, tuple[dict[str, Path], list[str] | None]]:
        """Each evaluation's runs (label -> store) and metric families (None: every one that applies)."""
        plan = {
            "forecasts": ({m: self.forecast(m) for m in METHODS}, ["calibration"]),
            "climate": ({m: self.long(m) for m in METHODS}, self.protocol.climate_metrics),
            "century": ({m: self.century(m) for m in self.protocol.century}, ["stability"]),
        }
        return {name: entry for name, entry in plan.items() if entry[0]}

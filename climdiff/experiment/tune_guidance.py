"""`climdiff tune-guidance`: choose the guidance strength lambda (and the guidance window) on validation data.

Each candidate (lambda, guidance_sigma_max) runs one short forecast ensemble through the rollout
engine (:func:`climdiff.rollout.forecast.forecast`): ``starts`` starts spread over the reference's
validation split, ``members`` members each, ``days`` leads. The ensemble is scored against the
validation split by :mod:`climdiff.experiment.guidance_score` (autocorrelation at lags 1..10, std,
spread-skill at leads 1..10).

Common random numbers: every candidate uses the same starts and the same keyed generators (seed,
start, member), so two candidates' scores differ by what lambda does, not by sampling noise.

The search reuses work: a coarse grid of lambdas at the first window; the other windows at the best
lambda (lambda = 0 is one candidate whatever the window); then ``refine`` steps on lambda at the best
window, each evaluating the vertex of the parabola through the best point and its neighbours, or a
golden-section point of the larger side where the parabola does not bracket a minimum.

Resume (DESIGN.md section 3): each finished candidate's statistics and score are a JSON file in the
work directory, so an interrupted tuning re-runs only unfinished candidates (and a candidate's
forecast store resumes itself). The work directory's configuration is checked like every output's.
The choice is written as a new bundle (:func:`climdiff.bundle.derive_bundle`) whose ``tuning``
record lists the candidates, their scores, the data and the seed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from climdiff import __version__
from climdiff.atomic import atomic_write_bytes
from climdiff.bundle import Bundle, derive_bundle
from climdiff.errors import ClimdiffError, StoreError
from climdiff.evaluate.sources import open_source
from climdiff.evaluate.temporal import LAGS
from climdiff.experiment.guidance_score import (
    TOLERANCES,
    forecast_statistics,
    mismatch,
    temporal_statistics,
)
from climdiff.resume import claim_output, read_json_header, write_json_header
from climdiff.rollout.engine import EmulateConfig
from climdiff.rollout.forecast import forecast, open_reference, plan_forecast, spread_starts
from climdiff.sampling.config import SamplerConfig
from climdiff.zarr_io import FORECAST_KIND, TRAINING_KIND, store_meta

TUNING_KIND = "guidance-tuning"
HEADER_FILE = "tuning.json"
SPLIT = "validation"
# The default lambda grid, as multiples of the bundle's lambda (the paper's 14 for an unguided setting).
GRID_FACTORS = (0.0, 0.25, 0.5, 1.0, 2.0)
# Windows (guidance_sigma_max) tried after the bundle's own: the whole schedule, and low noise only.
OTHER_WINDOWS: tuple[float | None, ...] = (None, 1.0)
GOLDEN = (3.0 - math.sqrt(5.0)) / 2.0  # golden-section fraction of an interval, 0.382


def _significant(value: float, digits: int = 3) -> float:
    """``value`` to ``digits`` significant digits: candidates read well and key their cache files stably."""
    return 0.0 if value == 0 else float(f"{value:.{digits}g}")


@dataclass(frozen=True)
class Candidate:
    """One setting tried: lambda and the window's upper noise level (None: the whole schedule)."""

    guidance: float
    window: float | None

    @classmethod
    def of(cls, guidance: float, window: float | None) -> Candidate:
        """Rounded, and without a window at lambda = 0 (nothing is guided there, whatever the window)."""
        guidance = _significant(guidance)
        return cls(guidance, None if guidance == 0 else window)

    @property
    def key(self) -> str:
        window = "all" if self.window is None else f"{self.window:g}"
        return f"lambda={self.guidance:g},sigma_max={window}"

    def sampler(self, base: SamplerConfig) -> SamplerConfig:
        return dataclasses.replace(base, guidance=self.guidance, guidance_sigma_max=self.window)


@dataclass(frozen=True)
class TuneConfig:
    """Everything that identifies a tuning (compared on resume), but where the data and bundle are."""

    lambdas: tuple[float, ...]
    windows: tuple[float | None, ...]
    refine: int = 2
    starts: int = 4
    members: int = 4
    days: int = 20
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.lambdas or any(not math.isfinite(v) or v < 0 for v in self.lambdas):
            raise ClimdiffError(f"--lambdas needs one or more finite values >= 0, got {list(self.lambdas)}")
        if not self.windows or any(w is not None and not (math.isfinite(w) and w > 0) for w in self.windows):
            raise ClimdiffError(f"--windows needs positive noise levels or 'all', got {list(self.windows)}")
        if self.days <= max(LAGS):
            raise ClimdiffError(
                f"--days must be more than {max(LAGS)}: the autocorrelation is matched at lags 1..{max(LAGS)}, "
                f"got {self.days}"
            )
        if self.members < 2:
            raise ClimdiffError(
                f"--members must be at least 2: the spread-skill ratio needs an ensemble, got {self.members}"
            )
        if self.starts < 1 or self.refine < 0:
            raise ClimdiffError(f"need --starts >= 1 and --refine >= 0, got {self.starts} and {self.refine}")

    @property
    def planned(self) -> int:
        """Candidates the search evaluates at most (the progress lines' total)."""
        return len(set(self.lambdas)) + len(self.windows) - 1 + self.refine


def default_candidates(sampler: SamplerConfig) -> tuple[tuple[float, ...], tuple[float | None, ...]]:
    """The lambda grid around the bundle's lambda, and the bundle's window followed by the others."""
    centre = sampler.guidance or SamplerConfig().guidance
    windows = tuple(dict.fromkeys((sampler.guidance_sigma_max, *OTHER_WINDOWS)))
    return tuple(_significant(f * centre) for f in GRID_FACTORS), windows


@dataclass
class TuningResult:
    bundle: Path
    chosen: Candidate
    results: dict[str, dict[str, Any]]  # candidate key -> its record (score, terms, statistics)
    computed: list[str]  # the keys evaluated by this call (not read back from the work directory)


def next_lambda(points: list[tuple[float, float]]) -> float | None:
    """The next lambda to try from (lambda, score) points at one window, or None when the search
    has nothing new to try.

    Best point inside: the vertex of the parabola through it and its neighbours if that is a
    minimum inside their bracket, else the golden-section point of the larger side. Best point at
    the smallest lambda: the golden-section point towards its neighbour; at the largest: twice it.
    """
    points = sorted(points)
    lams = [p[0] for p in points]
    i = min(range(len(points)), key=lambda k: points[k][1])
    if len(points) < 2:
        return None
    if i == len(points) - 1:
        proposal = 2.0 * lams[i]
    elif i == 0:
        proposal = lams[0] + GOLDEN * (lams[1] - lams[0])
    else:
        (a, fa), (b, fb), (c, fc) = points[i - 1 : i + 2]
        denominator = (b - a) * (fb - fc) - (b - c) * (fb - fa)
        vertex = b - 0.5 * ((b - a) ** 2 * (fb - fc) - (b - c) ** 2 * (fb - fa)) / denominator if denominator else b
        wide = (a, b) if b - a > c - b else (b, c)
        golden = b + GOLDEN * (wide[0] - b if wide[0] < b else wide[1] - b)
        proposal = vertex if a < vertex < c and abs(vertex - b) > 0.01 * (c - a) else golden
    proposal = _significant(proposal)
    return None if proposal in lams or proposal == 0.0 else proposal


def search(evaluate: Callable[[Candidate], float], config: TuneConfig) -> Candidate:
    """Coarse lambda grid at the first window, the other windows at the best lambda, then refinement."""
    scores: dict[Candidate, float] = {}

    def run(candidate: Candidate) -> None:
        if candidate not in scores:
            scores[candidate] = evaluate(candidate)

    for lam in config.lambdas:
        run(Candidate.of(lam, config.windows[0]))
    best = min(scores, key=scores.get)
    for window in config.windows[1:]:
        if best.guidance > 0:
            run(Candidate.of(best.guidance, window))
    window = config.windows[0]  # where lambda = 0 is best, refine towards it at the grid's window
    for _ in range(config.refine):
        best = min(scores, key=scores.get)
        window = best.window if best.guidance > 0 else window
        points = [(c.guidance, s) for c, s in scores.items() if c.guidance == 0 or c.window == window]
        proposal = next_lambda(points)
        if proposal is None:
            break
        run(Candidate.of(proposal, window))
    return min(scores, key=scores.get)


def _validation_range(data: Path, ds: xr.Dataset) -> tuple[int, int]:
    lo, hi = store_meta(ds.attrs)["split"].get(SPLIT, (0, 0))
    if hi - lo <= 0:
        raise ClimdiffError(
            f"{data} has no {SPLIT} split to tune on (make the store with a validation fraction, e.g. --split 0.8,0.1,0.1)"
        )
    return lo, hi


def tune_guidance(
    bundle: Bundle,
    data: Path,
    out: Path,
    config: TuneConfig,
    *,
    work: Path | None = None,
    batch: int | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    command: str = "",
    concurrent_guide: bool = False,
    on_candidate: Callable[[Candidate, bool], None] | None = None,
    report: Callable[[str], None] | None = None,
) -> TuningResult:
    """Tune ``bundle``'s guidance on ``data``'s validation split and write the new bundle ``out``.

    ``work`` (default: ``out`` with ``.tuning`` appended) keeps the finished candidates;
    ``on_candidate`` is called with each candidate and whether it was computed (True) or read back
    (tests interrupt a tuning with it); ``report`` gets one progress line per candidate.
    """
    out, data = Path(out), Path(data)
    if "disc" not in bundle.models:
        raise ClimdiffError(f"bundle {bundle.path} has no discriminator ({bundle.kind}): there is no guidance to tune")
    if out.exists() and not overwrite:
        raise StoreError(f"{out} exists; use --overwrite to replace it or choose another output path")
    reference = open_reference(data, bundle)
    lo, hi = _validation_range(data, reference)
    indices = spread_starts(reference, config.starts, config.days, split=SPLIT)
    dates = [reference["time"].values[i].isoformat()[:10] for i in indices]
    target = temporal_statistics(open_source(data, "reference", allowed=(TRAINING_KIND,), split=SPLIT).field)
    work = Path(work) if work is not None else out.with_name(out.name + ".tuning")
    identity = {
        "bundle_sha256": bundle.meta["bundle_sha256"],
        "data": str(data.resolve()),
        "split": [lo, hi],
        **dataclasses.asdict(config),
        "start_dates": dates,
        "tolerances": TOLERANCES,
    }
    header = read_json_header(work / HEADER_FILE)
    if not claim_output(work, kind=TUNING_KIND, config=identity, overwrite=overwrite, header=header, noun="tuning"):
        (work / "candidates").mkdir(parents=True, exist_ok=True)
        write_json_header(work / HEADER_FILE, TUNING_KIND, identity, complete=False)

    results: dict[str, dict[str, Any]] = {}
    computed: list[str] = []
    observed = _observed(reference[bundle.meta["variable"]["name"]], indices, config.days)

    def evaluate(candidate: Candidate) -> float:
        file = work / "candidates" / f"{candidate.key}.json"
        fresh = not file.exists()
        if report is not None:
            done = "computing" if fresh else "done before"
            report(f"tune-guidance: candidate {len(results) + 1} of at most {config.planned}: {candidate.key} ({done})")
        if fresh:
            rollout = EmulateConfig(
                days=config.days,
                members=config.members,
                seed=config.seed,
                sampler=candidate.sampler(bundle.sampler),
                device=config.device,
            )
            plan = plan_forecast(bundle, data, rollout, starts=None, start_dates=dates)
            store = work / "forecasts" / f"{candidate.key}.zarr"
            store.parent.mkdir(exist_ok=True)
            forecast(
                bundle, data, store, plan, batch=batch, quiet=quiet, command=command, concurrent_guide=concurrent_guide
            )
            run = open_source(store, candidate.key, allowed=(FORECAST_KIND,)).field
            statistics = forecast_statistics(run, observed.assign_coords({d: run[d] for d in observed.dims}))
            record = {"guidance": candidate.guidance, "guidance_sigma_max": candidate.window}
            atomic_write_bytes(file, json.dumps({**record, **mismatch(target, statistics)}, indent=2).encode())
            shutil.rmtree(store)  # the scores are kept; the ensemble is not needed again
            computed.append(candidate.key)
        results[candidate.key] = json.loads(file.read_text())
        if on_candidate is not None:
            on_candidate(candidate, fresh)
        return results[candidate.key]["score"]

    chosen = search(evaluate, config)
    tuning = {
        "method": "climdiff tune-guidance (docs/tune_guidance.md)",
        "climdiff_version": __version__,
        "command": command,
        "source_bundle": {"name": bundle.meta["name"], "bundle_sha256": bundle.meta["bundle_sha256"]},
        "data": identity["data"],
        "split": {"name": SPLIT, "days": [lo, hi]},
        "seed": config.seed,
        "ensemble": {"starts": dates, "members": config.members, "days": config.days},
        "tolerances": TOLERANCES,
        "reference": {"std": _significant(target.std, 4), "acf": [_significant(v, 4) for v in target.acf]},
        # each candidate's score and its three mismatches in tolerance units (the work directory keeps the rest)
        "candidates": {
            key: {name: _significant(value, 4) for name, value in {"score": r["score"], **r["terms"]}.items()}
            for key, r in results.items()
        },
        "chosen": chosen.key,
    }
    path = derive_bundle(bundle, out, sampler=chosen.sampler(bundle.sampler), tuning=tuning, overwrite=overwrite)
    return TuningResult(path, chosen, results, computed)


def _observed(field: xr.DataArray, indices: list[int], leads: int) -> xr.DataArray:
    """The reference days each start's leads verify against: (init_time, lead, spatial)."""
    positions = xr.DataArray(np.add.outer(indices, np.arange(1, leads + 1)), dims=("init_time", "lead"))
    observed = field.isel(time=positions).drop_vars("time", errors="ignore").compute()
    return observed.assign_coords(lead=np.arange(1, leads + 1))

"""`climdiff evaluate`: every selected metric family for every run against one reference.

Output folder ``DIR``:

- ``evaluation.json``: what was asked (runs, reference, families, settings) and whether it is
  complete; the resume rule (climdiff/resume.py) reads it.
- ``families/<family>.json``: each family's result, written atomically as soon as it is done,
  so an interrupted evaluation recomputes only the families not yet on disk.
- ``results.json``: every headline number (schema in docs/evaluate.md).
- ``<family>.png``: one figure per family; ``report.md``: the main table and the figures.
"""

from __future__ import annotations

import json
import math
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

from climdiff import __version__
from climdiff.atomic import atomic_write_bytes
from climdiff.errors import ClimdiffError, StoreError
from climdiff.evaluate.families import (
    FAMILIES,
    FORECAST_FAMILIES,
    PRECIPITATION_FAMILIES,
    FamilyResult,
    Settings,
    is_precipitation,
)
from climdiff.evaluate.plots import draw
from climdiff.evaluate.report import write_report
from climdiff.evaluate.sources import Source, check_block_days, check_comparable, open_source
from climdiff.progress import ProgressReporter
from climdiff.resume import OutputHeader, claim_output, read_json_header, write_json_header
from climdiff.zarr_io import EMULATION_KIND, FORECAST_KIND, TRAINING_KIND

EVALUATION_KIND = "evaluation"
HEADER_FILE = "evaluation.json"
RESULTS_SCHEMA = 1


def read_evaluation_header(out: Path) -> OutputHeader | None:
    """What an evaluation folder says about itself, or None if it is not one."""
    return read_json_header(Path(out) / HEADER_FILE)


def describe_evaluation(out: Path) -> dict[str, Any]:
    """What `climdiff info` shows about an evaluation folder."""
    header = read_evaluation_header(Path(out))
    if header is None or header.kind != EVALUATION_KIND:
        raise StoreError(f"{out} is not a climdiff evaluation")
    done = sorted(p.stem for p in (Path(out) / "families").glob("*.json"))
    return {"path": str(out), "kind": header.kind, "complete": header.complete, **header.config, "families_done": done}


def _write_header(out: Path, config: dict[str, Any], complete: bool) -> None:
    write_json_header(out / HEADER_FILE, EVALUATION_KIND, config, complete)


def _labels(runs: list[Path], labels: list[str] | None) -> list[str]:
    if labels is None:
        labels = [p.name.removesuffix(".zarr") for p in runs]
    if len(labels) != len(runs):
        raise ClimdiffError(f"--labels gives {len(labels)} label(s) for {len(runs)} run(s)")
    if len(set(labels)) != len(labels) or "reference" in labels:
        raise ClimdiffError("run labels must be distinct and not 'reference' (use --labels a,b,...)")
    return labels


def choose_families(requested: list[str] | None, runs: list[Source], reference: Source) -> list[str]:
    """The families to compute: the requested ones (checked), else every one that applies (the
    wet-day family only to precipitation)."""
    unknown = sorted(set(requested or []) - set(FAMILIES))
    if unknown:
        raise ClimdiffError(
            f"unknown metric famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)} (choose from {', '.join(FAMILIES)})"
        )
    has_forecasts = any(r.is_forecast for r in runs)
    has_runs = any(not r.is_forecast for r in runs)
    if requested:
        for family in requested:
            if family in FORECAST_FAMILIES and not has_forecasts:
                raise ClimdiffError(f"{family} needs a forecast store (made with `climdiff emulate --init-from`)")
            if family not in FORECAST_FAMILIES and not has_runs:
                raise ClimdiffError(f"{family} needs an emulation store; only forecast stores were given")
        return list(requested)
    return [
        f
        for f in FAMILIES
        if ((f in FORECAST_FAMILIES and has_forecasts) or (f not in FORECAST_FAMILIES and has_runs))
        and (f not in PRECIPITATION_FAMILIES or is_precipitation(reference.field))
    ]


def evaluate(
    runs: list[Path],
    reference: Path,
    out: Path,
    *,
    labels: list[str] | None = None,
    metrics: list[str] | None = None,
    split: str = "all",
    settings: Settings | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    command: str = "",
) -> Path:
    """Evaluate ``runs`` against ``reference`` into the folder ``out`` (resumable)."""
    if not runs:
        raise ClimdiffError("give at least one run to evaluate")
    out, settings = Path(out), settings or Settings()
    names = _labels([Path(r) for r in runs], labels)
    ref = open_source(reference, "reference", allowed=(TRAINING_KIND, EMULATION_KIND), split=split)
    sources = [open_source(p, n, allowed=(EMULATION_KIND, FORECAST_KIND)) for p, n in zip(runs, names, strict=True)]
    check_comparable(ref, sources)
    check_block_days(settings.block_days, [ref, *sources])
    families = choose_families(metrics, sources, ref)
    config = {
        # paths as given, not resolved: a folder of runs, reference and evaluation can be moved and still resume
        "runs": [str(p) for p in runs],
        "labels": names,
        "reference": str(reference),
        "split": split,
        "families": families,
        "settings": asdict(settings),
    }
    results: dict[str, FamilyResult] = {}
    with ExitStack() as stack:
        if scheduler:  # before touching the output: an unreachable scheduler leaves nothing behind
            stack.enter_context(_client(scheduler))
        if not claim_output(
            out,
            kind=EVALUATION_KIND,
            config=config,
            overwrite=overwrite,
            header=read_evaluation_header(out),
            noun="evaluation",
        ):
            out.mkdir(exist_ok=True)
            _write_header(out, config, complete=False)
        (out / "families").mkdir(exist_ok=True)
        with ProgressReporter("evaluate", len(families), unit="families", quiet=quiet) as progress:
            for family in families:
                results[family] = _family(family, ref, sources, settings, out)
                draw(results[family], ref.label, out / f"{family}.png")
                progress.advance(1)
    document = {
        "schema_version": RESULTS_SCHEMA,
        "climdiff_version": __version__,
        "command": command,
        "reference": ref.describe(),
        "runs": [s.describe() for s in sources],
        "settings": asdict(settings),
        "families": families,
        "metrics": [asdict(h) for f in families for h in results[f].headlines],
        "notes": {f: results[f].notes for f in families},
    }
    document = json_safe(document)
    atomic_write_bytes(out / "results.json", json.dumps(document, indent=2, allow_nan=False).encode())
    write_report(out / "report.md", document)
    _write_header(out, config, complete=True)
    return out


def json_safe(value: Any) -> Any:
    """NaN and infinities (e.g. a statistic of a run whose members all stopped) become null:
    strict JSON readers refuse them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def _family(family: str, reference: Source, sources: list[Source], settings: Settings, out: Path) -> FamilyResult:
    """A family's result: from its file if an earlier (interrupted) evaluation finished it."""
    path = out / "families" / f"{family}.json"
    if path.exists():
        return FamilyResult.from_json(json.loads(path.read_text()))
    wanted = [s for s in sources if s.is_forecast == (family in FORECAST_FAMILIES)]
    try:
        result = FAMILIES[family](reference, wanted, settings)
    except ValueError as err:  # a store too short or too small for the family
        raise ClimdiffError(f"{family}: {err}") from None
    atomic_write_bytes(path, json.dumps(result.to_json()).encode())
    return result


def _client(address: str) -> Any:
    """A dask.distributed client for an existing scheduler, used by every compute inside."""
    try:
        from distributed import Client
    except ImportError:
        raise ClimdiffError("--scheduler needs dask.distributed: pip install 'climdiff[distributed]'") from None
    try:
        return Client(address, timeout="10s", set_as_default=True)
    except (OSError, TimeoutError) as err:
        raise ClimdiffError(f"cannot reach the dask scheduler at {address}: {err}") from None

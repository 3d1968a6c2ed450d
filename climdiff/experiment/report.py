"""The comparison's report: ``results.json`` (every number, with its bootstrap interval) and
``report.md`` (the paper's figures as tables, with the evaluation plots linked).

Everything is read back from what the stages wrote: the training runs (cost), the rollout stores
(blow-ups), and the evaluation folders (``results.json`` and the per-family files whose plot data
hold the autocorrelation at every lag and the rank histograms). The tables of evaluation numbers
are the evaluation report's own (:func:`climdiff.evaluate.report.main_table`), one section per
figure of the paper.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import zarr

from climdiff import __version__
from climdiff.atomic import atomic_write_bytes
from climdiff.evaluate.report import headline_cell as cell
from climdiff.evaluate.report import main_table
from climdiff.evaluate.runner import json_safe
from climdiff.experiment.cost import cost_comparison, training_cost
from climdiff.experiment.layout import Layout
from climdiff.models.presets import MODEL_KINDS
from climdiff.zarr_io import store_meta

RESULTS_SCHEMA = 1
# (section title, ((evaluation, families), ...)): the paper's figures, in its order.
SECTIONS = (
    ("Hovmoller diagrams and the W1 distance between consecutive rows", (("climate", ("temporal",)),)),
    ("Calibration: CRPS and spread-skill per lead", (("forecasts", ("calibration",)),)),
    ("Bias", (("climate", ("bias",)),)),
    ("Spectra", (("climate", ("spectra",)),)),
    ("Extremes, wet days and EOFs", (("climate", ("extremes", "wet_days", "eofs")),)),
    ("Long-run stability", (("climate", ("stability",)), ("century", ("stability",)))),
)


def _family_plot(folder: Path, family: str) -> dict[str, Any]:
    path = folder / "families" / f"{family}.json"
    return json.loads(path.read_text())["plot"] if path.exists() else {}


def _evaluation(folder: Path) -> dict[str, Any]:
    """An evaluation's numbers and what it compared (without paths, so two experiment folders
    with the same protocol give the same document)."""
    document = json.loads((folder / "results.json").read_text())

    def facts(source: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in source.items() if k != "path"}

    return {
        "reference": facts(document["reference"]),
        "runs": [facts(r) for r in document["runs"]],
        "settings": document["settings"],
        "families": document["families"],
        "metrics": document["metrics"],
        "notes": document["notes"],
    }


def _autocorrelation(plot: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every lag's autocorrelation with its interval, per source, from the temporal family's plot data."""
    return {
        label: [
            {"lag": lag, "value": v, "low": lo, "high": hi}
            for lag, v, lo, hi in zip(
                plot["lags"], values, plot["acf_low"][label], plot["acf_high"][label], strict=True
            )
        ]
        for label, values in plot.get("acf", {}).items()
    }


def _store_summary(path: Path) -> dict[str, Any]:
    meta = store_meta(zarr.open_group(str(path), mode="r").attrs)
    keys = ("days", "members")
    return {**{k: meta["config"][k] for k in keys}, **{k: meta.get(k) for k in ("stopped_members", "total_redraws")}}


def collect(layout: Layout, stages: dict[str, Any], command: str) -> dict[str, Any]:
    """The content of ``results.json``."""
    costs = {kind: training_cost(layout.run(kind)) for kind in MODEL_KINDS}
    planned = layout.evaluations()
    evaluations = {name: _evaluation(layout.evaluation(name)) for name in planned}
    climate, forecasts = layout.evaluation("climate"), layout.evaluation("forecasts")
    stores = {**planned["climate"][0], **{f"{m}-century": p for m, p in planned.get("century", ({},))[0].items()}}
    return {
        "schema_version": RESULTS_SCHEMA,
        "kind": "experiment-compare-results",
        "climdiff_version": __version__,
        "command": command,
        "protocol": layout.protocol.to_dict(),
        "training_cost": {**costs, "comparison": cost_comparison(costs)},
        "stage_seconds": {name: entry["seconds"] for name, entry in stages.items()},
        "rollouts": {label: _store_summary(path) for label, path in stores.items()},
        "autocorrelation": _autocorrelation(_family_plot(climate, "temporal")),
        "rank_histograms": _family_plot(forecasts, "calibration").get("rank_histograms", {}),
        "evaluations": evaluations,
    }


def _number(value: float | None, digits: str = ".3g") -> str:
    return "n/a" if value is None else format(value, digits)


def _protocol_lines(protocol: dict[str, Any]) -> list[str]:
    lines = ["| setting | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in protocol.items() if value not in (None, {})]
    return lines


def _cost_lines(cost: dict[str, Any]) -> list[str]:
    lines = [
        "| model | parameters | steps | batch | wall time (s) | s per step |",
        "|---|---|---|---|---|---|",
    ]
    for kind in MODEL_KINDS:
        c = cost[kind]
        lines.append(
            f"| {kind} | {c['parameters']} | {c['steps']} | {c['batch_size']} | {_number(c['wall_seconds'], '.1f')} "
            f"| {_number(c['seconds_per_step'], '.4f')} |"
        )
    ratios = cost["comparison"]
    lines += ["", "| ratio | parameters | wall time |", "|---|---|---|"]
    for name, text in (("disc_over_vdm", "discriminator / VDM"), ("guided_over_vdm", "(IDM + discriminator) / VDM")):
        r = ratios[name]
        lines.append(f"| {text} | {_number(r.get('parameters'))} | {_number(r.get('wall_seconds'))} |")
    return lines


def _autocorrelation_lines(acf: dict[str, list[dict[str, Any]]]) -> list[str]:
    labels = list(acf)
    lines = ["| lag | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for i, row in enumerate(acf[labels[0]] if labels else []):
        lines.append(f"| {row['lag']} | " + " | ".join(cell(acf[label][i]) for label in labels) + " |")
    return lines


def _rank_lines(histograms: dict[str, list[int]]) -> list[str]:
    lines = ["| method | frequency / uniform, rank 0 .. M |", "|---|---|"]
    for label, counts in histograms.items():
        total = sum(counts)
        lines.append(f"| {label} | " + " ".join(f"{c * len(counts) / total:.2f}" for c in counts) + " |")
    return lines


def _rollout_lines(rollouts: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| run | members | days | members stopped (blow-up) | days redrawn |", "|---|---|---|---|---|"]
    for label, r in rollouts.items():
        lines.append(f"| {label} | {r['members']} | {r['days']} | {r['stopped_members']} | {r['total_redraws']} |")
    return lines


def _section(results: dict[str, Any], name: str, families: tuple[str, ...]) -> list[str]:
    """One evaluation's tables, notes and figures for ``families`` (nothing if it has none of them)."""
    document = results["evaluations"].get(name)
    shown = [f for f in families if document and f in document["families"]]
    if not shown:
        return []
    metrics = [m for m in document["metrics"] if m["family"] in shown]
    lines = [f"From `evaluation/{name}`:", ""]
    if name == "forecasts":
        runs = document["runs"][0]
        lines += [f"{runs['starts']} starts x {runs['members']} members x {runs['leads']} leads.", ""]
    if metrics:
        lines += [*main_table({**document, "metrics": metrics}), ""]
    if name == "forecasts":
        lines += ["Rank histograms (1 = uniform):", "", *_rank_lines(results["rank_histograms"]), ""]
    lines += [f"- {f}: {note}" for f in shown for note in document["notes"].get(f, [])]
    return [*lines, "", *[f"![{f}](evaluation/{name}/{f}.png)" for f in shown], ""]


def render(results: dict[str, Any]) -> str:
    """``report.md`` from the content of ``results.json``."""
    climate = results["evaluations"]["climate"]
    reference = climate["reference"]
    confidence = climate["settings"]["confidence"]
    lines = [
        "# climdiff experiment compare: guided IDM, unguided IDM (lambda = 0) and VDM",
        "",
        f"`{results['command']}`" if results["command"] else "",
        "",
        f"Reference: the held-out test split of the training store ({reference.get('days')} days, "
        f"{reference.get('first')} to {reference.get('last')}). Each number: estimate "
        f"[{confidence:.0%} bootstrap interval]; the evaluation folders under `evaluation/` hold every "
        "family's report and figure.",
        "",
        "## Protocol",
        "",
        *_protocol_lines(results["protocol"]),
        "",
        "## Training cost",
        "",
        "Wall time of the optimiser steps (validation and checkpoints excluded), from each run's metrics.jsonl.",
        "",
        *_cost_lines(results["training_cost"]),
        "",
        "## Temporal consistency: autocorrelation at lags 1-10",
        "",
        *_autocorrelation_lines(results["autocorrelation"]),
        "",
    ]
    for title, parts in SECTIONS:
        body = [line for name, families in parts for line in _section(results, name, families)]
        if body:
            lines += [f"## {title}", "", *body]
        if body and title == "Long-run stability":
            lines += ["Rollouts:", "", *_rollout_lines(results["rollouts"]), ""]
    lines += ["## Stage wall times (s; the session that finished each stage)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {_number(seconds, '.1f')} |" for name, seconds in results["stage_seconds"].items()]
    return "\n".join(lines) + "\n"


def write_report(layout: Layout, stages: dict[str, Any], command: str) -> None:
    """Write ``results.json`` and ``report.md`` into the experiment folder."""
    results = collect(layout, stages, command)
    results = json_safe(results)  # an interval of too few samples is NaN; strict JSON has no NaN
    atomic_write_bytes(layout.root / "results.json", json.dumps(results, indent=2, allow_nan=False).encode())
    atomic_write_bytes(layout.root / "report.md", render(results).encode())

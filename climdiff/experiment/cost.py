"""Training cost side by side (issue 12, item 2), read from the training runs' own records.

Each run directory holds ``run.json`` (settings, step count, parameter count) and
``metrics.jsonl``, whose records give the steps per second measured over each logging interval.
The wall time of training is the sum over intervals of (steps in the interval) / (steps per
second): optimiser steps only, validation and checkpoint writing excluded, and summed over every
session of a resumed run (the log keeps each step once).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from climdiff.errors import ClimdiffError
from climdiff.train.loop import RUN_FILE, read_run_header
from climdiff.train.metrics import MetricsLog


def require_trained_run(path: Path, kind: str) -> Path:
    """``path`` if it is a complete training run of ``kind``; else one clear error."""
    header = read_run_header(path)
    if header is None:
        raise ClimdiffError(f"--{kind} {path} is not a climdiff training run (no valid {RUN_FILE})")
    found = header.config.get("train", {}).get("kind")
    if found != kind:
        raise ClimdiffError(f"--{kind} {path} is a training run of kind {found}, not {kind}")
    if not header.complete:
        raise ClimdiffError(f"--{kind} {path} is an unfinished training run; re-run its command to finish it")
    return Path(path)


def training_cost(run: Path) -> dict[str, Any]:
    """Parameters, steps, batch size, wall time and seconds per step of one training run."""
    meta = json.loads((Path(run) / RUN_FILE).read_text())
    train = meta["config"]["train"]
    seconds, previous = 0.0, 0
    for record in MetricsLog(Path(run)).records():
        rate = record.get("steps_per_s")
        if rate:
            seconds += (record["step"] - previous) / rate
        previous = record["step"]
    steps = int(meta.get("steps", previous))
    return {
        "kind": train["kind"],
        "preset": train["preset"],
        "parameters": meta.get("parameters"),
        "steps": steps,
        "batch_size": train["batch_size"],
        "wall_seconds": seconds,
        "seconds_per_step": seconds / steps if steps else None,
    }


def cost_comparison(costs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What the guided method's extra model (the discriminator) costs against training a VDM,
    and what the whole guided method (IDM + discriminator) costs against it."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    idm, disc, vdm = costs["idm"], costs["disc"], costs["vdm"]
    return {
        "disc_over_vdm": {key: ratio(disc[key], vdm[key]) for key in ("parameters", "wall_seconds")},
        "guided_over_vdm": {
            key: ratio(idm[key] + disc[key], vdm[key])
            for key in ("parameters", "wall_seconds")
            if None not in (idm[key], disc[key])
        },
    }

"""Training metrics: JSON lines (the record), CSV (for spreadsheets) and a loss-curve PNG.

On resume the log is cut back to the resumed step first, so a restarted run never holds the
same step twice.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class MetricsLog:
    """Append-only ``metrics.jsonl`` with a CSV and PNG rendering made on demand."""

    def __init__(self, directory: Path) -> None:
        self.jsonl = directory / "metrics.jsonl"
        self.csv = directory / "metrics.csv"
        self.png = directory / "loss.png"

    def records(self) -> list[dict[str, Any]]:
        if not self.jsonl.exists():
            return []
        out = []
        for line in self.jsonl.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a kill: drop it
                break
        return out

    def truncate(self, step: int) -> None:
        """Keep only records up to and including ``step`` (the resumed training step)."""
        kept = [r for r in self.records() if r["step"] <= step]
        self.jsonl.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def append(self, record: dict[str, Any]) -> None:
        with self.jsonl.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def render(self) -> None:
        """Rewrite the CSV and the loss-curve PNG from the JSON lines."""
        records = self.records()
        if not records:
            return
        columns = sorted({key for r in records for key in r}, key=lambda k: (k != "step", k))
        with self.csv.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(records)
        self._plot(records)

    def _plot(self, records: list[dict[str, Any]]) -> None:
        fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
        for key, style in (("train_loss", "-"), ("val_loss", "o-")):
            points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), float) and math.isfinite(r[key])]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, style, label=key.replace("_", " "), ms=3)
        ax.set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
        ax.legend()
        fig.savefig(self.png, dpi=100)
        plt.close(fig)

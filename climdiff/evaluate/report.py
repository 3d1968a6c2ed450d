"""``report.md``: what was compared, the main table (every headline number with its interval,
reference first), the notes, and the figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from climdiff.atomic import atomic_write_bytes


def headline_cell(entry: dict[str, Any] | None) -> str:
    """One results.json headline as a report cell: the value with its interval, "-" where absent."""
    if entry is None:
        return "-"
    if entry["value"] is None:
        return "n/a"
    text = f"{entry['value']:.4g}"
    if entry.get("low") is not None:
        text += f" [{entry['low']:.3g}, {entry['high']:.3g}]"
    return text


def main_table(document: dict[str, Any], leads: set[int] | None = None) -> list[str]:
    """Rows (family, metric, lead) by columns (reference, runs), as markdown lines; per-lead
    rows only for ``leads`` (None: every lead)."""
    sources = [document["reference"]["label"]] + [r["label"] for r in document["runs"]]
    rows: dict[tuple[str, str, int | None], dict[str, dict[str, Any]]] = {}
    for entry in document["metrics"]:
        lead = entry.get("lead")
        if lead is None or leads is None or lead in leads:
            rows.setdefault((entry["family"], entry["metric"], lead), {})[entry["source"]] = entry
    lines = ["| family | metric | ideal | " + " | ".join(sources) + " |", "|---|---|---|" + "---|" * len(sources)]
    for (family, metric, lead), cells in rows.items():
        name = metric if lead is None else f"{metric} (lead {lead})"
        units = next(iter(cells.values())).get("units")
        if units and units != "1":  # "1": dimensionless (CF)
            name += f" ({units})"
        ideal = next(iter(cells.values())).get("ideal")
        ideal_text = "-" if ideal is None else f"{ideal:g}"
        lines.append(
            f"| {family} | {name} | {ideal_text} | " + " | ".join(headline_cell(cells.get(s)) for s in sources) + " |"
        )
    return lines


def write_report(path: Path, document: dict[str, Any]) -> None:
    confidence = document["settings"]["confidence"]
    lines = [
        "# climdiff evaluation",
        "",
        f"`{document['command']}`" if document.get("command") else "",
        "",
        "## Compared",
        "",
    ]
    for source in [document["reference"], *document["runs"]]:
        facts = ", ".join(f"{k} {v}" for k, v in source.items() if k not in ("label", "path"))
        lines.append(f"- **{source['label']}**: `{source['path']}` ({facts})")
    all_leads = sorted({e["lead"] for e in document["metrics"] if e.get("lead") is not None})
    shown = {all_leads[0], all_leads[len(all_leads) // 2], all_leads[-1]} if all_leads else set()
    lines += [
        "",
        "## Main table",
        "",
        f"Each cell: estimate [{confidence:.0%} bootstrap interval] (settings in results.json)."
        + (f" Forecast scores at leads {', '.join(map(str, sorted(shown)))}; every lead below." if all_leads else ""),
        "",
        *main_table(document, shown),
        "",
    ]
    if len(all_leads) > len(shown):
        calibration = {**document, "metrics": [e for e in document["metrics"] if e.get("lead") is not None]}
        lines += ["## Forecast scores at every lead", "", *main_table(calibration), ""]
    lines += ["## Notes", ""]
    for family, notes in document["notes"].items():
        lines += [f"- {family}: {note}" for note in notes]
    lines += ["", "## Figures", ""]
    for family in document["families"]:
        lines += [f"### {family}", "", f"![{family}]({family}.png)", ""]
    atomic_write_bytes(path, "\n".join(lines).encode())

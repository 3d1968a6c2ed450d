"""benchmarks/speed_quality.py on a tiny trained VDM: one row per sampler setting with the point-4
figures read from real evaluations (none for a setting whose members all blew up), and a second
run that keeps the finished outputs and gives the same figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from climdiff.evaluate.runner import read_evaluation_header
from climdiff.zarr_io import read_header

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "speed_quality.py"


def test_speed_quality_scores_each_setting_and_keeps_finished_outputs(
    vdm_bundle: Path, learning_store: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    command = [
        sys.executable, str(SCRIPT), "--checkpoint", str(vdm_bundle), "--data", str(learning_store),
        "--work", str(work), "--config", "steps=4", "--config", "steps=8,S_churn=0", "--days", "24",
        "--starts", "2", "--forecast-members", "2", "--leads", "3", "--cost-days", "3", "--block-days", "4",
        "--resamples", "20", "--mab-limit", "0.5", "--quiet",
    ]  # fmt: skip
    first = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    rows = [line for line in first.stdout.splitlines() if line.startswith("| steps=")]
    assert [row.split(" | ")[0] for row in rows] == ["| steps=4", "| steps=8,S_churn=0"]
    blown, scored = (row.strip("| ").split(" | ") for row in rows)
    # this tiny model blows up at 4 steps with churn: every member stops, nothing is scored
    assert blown[3:] == ["-", "-", "-", "-", "-", "2", "0/5"], blown
    assert all(cell != "-" for cell in scored) and scored[-2] == "0" and scored[-1].endswith("/5"), scored
    assert not (work / "steps4" / "climate").exists()
    long = work / "steps8_S_churn0" / "long.zarr"
    assert read_header(long).complete and read_header(long).config["days"] == 24
    assert read_header(long).config["sampler"]["S_churn"] == 0
    for name in ("climate", "forecasts"):
        assert read_evaluation_header(work / "steps8_S_churn0" / name).complete
    finished = (long / "zarr.json").stat().st_mtime_ns  # rewritten by every commit
    second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert (long / "zarr.json").stat().st_mtime_ns == finished
    assert [line.split(" | ")[3:] for line in second.stdout.splitlines()] == [
        line.split(" | ")[3:] for line in first.stdout.splitlines()
    ]  # the same figures (the costs, measured anew, may differ)

"""benchmarks/long_run.py on a real two-year emulation of a tiny trained VDM: the yearly figures
it prints are the store's own, computed directly here, and the events come from the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "long_run.py"


def test_long_run_reports_each_years_statistics(cli, vdm_bundle: Path, learning_store: Path, tmp_path: Path) -> None:
    run = tmp_path / "two_years.zarr"
    made = cli(
        "emulate", "--checkpoint", vdm_bundle, "--days", "730", "--start", "0001-01-01", "--steps", "8",
        "--churn", "0", "--solver", "dpmpp_2m", "--time-chunk", "365", "--out", run, "--quiet",
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(run), "--reference", str(learning_store)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "2 complete years (1-2)"
    rows = {line.split(" | ")[0].strip("| "): line.strip("| ").split(" | ") for line in lines if line.startswith("| ")}
    field = xr.open_zarr(run)["vorticity"]
    for year, column in ((1, 1), (2, 2)):
        values = field.sel(time=field["time"].dt.year == year).values.astype(np.float64)
        assert float(rows["std"][column]) == pytest.approx(values.std(), rel=1e-3)
        assert float(rows["max_abs"][column]) == pytest.approx(np.abs(values).max(), rel=1e-3)
    assert "reference: no complete calendar year" in done.stdout  # 160 days of learning data
    assert lines[-1] == "redrawn days: 0; stopped members: 0; every value finite: True"

"""benchmarks/scale_persistence.py on a real emulation of a tiny trained VDM and a real data store: its
per-wavenumber figures equal a direct FFT computation, day-to-day changes are taken within members,
and a lat-lon run is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "scale_persistence.py"
sys.path.insert(0, str(SCRIPT.parent))
from scale_persistence import scale_persistence  # noqa: E402


def shells(values: np.ndarray) -> np.ndarray:
    """Mean over the leading axes of the shell-summed |fft2 / N|^2 (independent of climdiff's code)."""
    n = values.shape[-1]
    k = np.fft.fftfreq(n, 1.0 / n)
    shell = np.rint(np.hypot(*np.meshgrid(k, k, indexing="ij"))).astype(int).ravel()
    power = (np.abs(np.fft.fft2(values) / n**2) ** 2).reshape(-1, n * n).mean(0)
    return np.bincount(shell, power)[: n // 2 + 1]


def test_figures_per_wavenumber_match_a_direct_computation(cli, vdm_bundle: Path, tmp_path: Path) -> None:
    run = tmp_path / "run.zarr"
    made = cli(
        "emulate", "--checkpoint", vdm_bundle, "--days", "30", "--members", "2", "--steps", "8",
        "--churn", "0", "--solver", "dpmpp_2m", "--out", run, "--quiet",
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    field = xr.open_zarr(run)["vorticity"]
    got = scale_persistence(field)
    values = field.values.astype(np.float64)  # (member, time, y, x)
    power = shells(values)
    change = shells(np.diff(values, axis=1))  # within each member: never member 0's last day to member 1's first
    np.testing.assert_allclose(got["power"].values, power, rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(got["change"].values, change, rtol=1e-6, atol=1e-15)
    # the one-day correlation is the lag-1 correlation of the coefficients, up to the series' ends
    n = values.shape[-1]
    coefficients = np.fft.fft2(values) / n**2
    lagged = (coefficients[:, 1:] * np.conj(coefficients[:, :-1])).real.reshape(-1, n * n).mean(0)
    k = np.fft.fftfreq(n, 1.0 / n)
    shell = np.rint(np.hypot(*np.meshgrid(k, k, indexing="ij"))).astype(int).ravel()
    direct = np.bincount(shell, lagged)[: n // 2 + 1] / power
    carrying = power > 1e-3 * power.sum()
    np.testing.assert_allclose(got["correlation"].values[carrying], direct[carrying], atol=0.1)

    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(run), "--reference", str(run.parent / "missing.zarr")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "missing.zarr" in done.stderr and "Traceback" not in done.stderr


def test_the_table_and_a_refused_lat_lon_field(cli, vdm_bundle: Path, learning_store: Path, tmp_path: Path) -> None:
    run = tmp_path / "run.zarr"
    made = cli(
        "emulate", "--checkpoint", vdm_bundle, "--days", "12", "--steps", "8", "--churn", "0",
        "--solver", "dpmpp_2m", "--out", run, "--quiet",
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(run), "--reference", str(learning_store), "--split", "all"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.strip("| ").split(" | ") for line in done.stdout.splitlines()[2:]]
    reference = scale_persistence(xr.open_zarr(learning_store)["vorticity"])
    for row in rows[:-1]:
        k = int(row[0])
        assert float(row[1]) == pytest.approx(float(reference["power"].sel(wavenumber=k)), rel=1e-3)
    assert rows[-1][0] == "all"
    sphere = xr.DataArray(np.zeros((3, 4, 8)), dims=("time", "lat", "lon"))
    with pytest.raises(SystemExit, match="doubly periodic"):
        scale_persistence(sphere)

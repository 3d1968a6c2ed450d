"""The turbulence data stage end to end: real solver, real Zarr store on disk."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cftime
import numpy as np
import pytest
import xarray as xr
import zarr

from climdiff.data.navier_stokes import ForcedTurbulence
from climdiff.data.store import STATE_FILE, AppendableStore
from climdiff.data.turbulence import generate_turbulence
from climdiff.errors import SolverError, StoreError
from climdiff.zarr_io import store_meta
from tests.conftest import SMALL_RUN

ARRAYS = ("vorticity", "energy_spectrum", "energy", "injection", "drag", "dissipation", "dEdt", "time", "model_time")


def assert_same_store(a: Path, b: Path) -> None:
    """Every stored array identical, bit for bit."""
    ga, gb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    for name in ARRAYS:
        np.testing.assert_array_equal(ga[name][:], gb[name][:], err_msg=name)


def test_store_opens_with_xarray_and_has_cf_metadata(turbulence_store: Path) -> None:
    ds = xr.open_zarr(turbulence_store)
    assert ds["vorticity"].dims == ("time", "y", "x")
    assert ds["vorticity"].shape == (SMALL_RUN.frames, 32, 32)
    assert isinstance(ds["time"].values[0], cftime.DatetimeNoLeap)
    assert ds["time"].values[1] - ds["time"].values[0] == np.timedelta64(1, "D") or (
        (ds["time"].values[1] - ds["time"].values[0]).days == 1
    )
    assert ds["vorticity"].attrs["units"] == "1"
    assert ds["vorticity"].attrs["long_name"] == "relative vorticity"
    meta = store_meta(ds.attrs)
    assert meta["complete"] is True
    assert meta["config"]["seed"] == SMALL_RUN.seed
    assert meta["config"]["solver"]["size"] == 32
    assert meta["split"] == {"train": [0, 24], "validation": [24, 32], "test": [32, 40]}
    assert np.isfinite(ds["vorticity"].values).all()
    # model time advances by `every` steps per frame after the spin-up
    model_time = ds["model_time"].values
    np.testing.assert_allclose(np.diff(model_time), SMALL_RUN.every * SMALL_RUN.solver.dt)
    np.testing.assert_allclose(model_time[0], (SMALL_RUN.spinup_steps + SMALL_RUN.every) * SMALL_RUN.solver.dt)
    assert not (turbulence_store / STATE_FILE).exists()


def test_training_statistics_match_the_training_split(turbulence_store: Path) -> None:
    ds = xr.open_zarr(turbulence_store)
    stats = store_meta(ds.attrs)["stats"]["vorticity"]
    train = ds["vorticity"].isel(time=slice(0, 24)).values.astype(np.float64)
    assert stats["mean"] == pytest.approx(train.mean(), abs=1e-9)
    assert stats["std"] == pytest.approx(train.std(), rel=1e-9)
    assert stats["min"] == pytest.approx(train.min()) and stats["max"] == pytest.approx(train.max())


def test_stored_budget_terms_close(turbulence_store: Path) -> None:
    ds = xr.open_zarr(turbulence_store)
    residual = ds["budget_residual"].values
    scale = np.abs(ds["injection"].values).mean()
    # dE/dt over a frame interval equals injection - drag - dissipation to time-stepping error
    assert np.abs(residual).mean() < 0.02 * scale


def test_same_seed_gives_identical_store(turbulence_store: Path, tmp_path: Path) -> None:
    again = generate_turbulence(tmp_path / "again.zarr", SMALL_RUN, quiet=True)
    assert_same_store(turbulence_store, again)


def test_other_seed_gives_other_store(turbulence_store: Path, tmp_path: Path) -> None:
    other = generate_turbulence(tmp_path / "other.zarr", dataclasses.replace(SMALL_RUN, seed=8, frames=8), quiet=True)
    a = zarr.open_group(str(turbulence_store), mode="r")["vorticity"][:8]
    b = zarr.open_group(str(other), mode="r")["vorticity"][:]
    assert not np.array_equal(a, b)


class Interrupt(Exception):
    """Raised from the commit hook to stop a run at a known point."""


def _interrupt_after(frames: int):
    def hook(done: int) -> None:
        if done >= frames:
            raise Interrupt

    return hook


def test_interrupted_and_resumed_equals_uninterrupted(turbulence_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed.zarr"
    with pytest.raises(Interrupt):
        generate_turbulence(out, SMALL_RUN, quiet=True, after_commit=_interrupt_after(16))
    partial = xr.open_zarr(out)
    assert partial.sizes["time"] == 16 and store_meta(partial.attrs)["complete"] is False
    # A crash between a chunk's data write and its state commit leaves extra frames on disk:
    # simulate it, and check resume discards them rather than keeping a duplicate.
    store = AppendableStore.open(out)
    extra = {arr.basename: np.zeros((8, *arr.shape[1:]), dtype=arr.dtype) for arr in store.time_arrays()}
    store.append(extra)
    generate_turbulence(out, SMALL_RUN, quiet=True)
    assert_same_store(turbulence_store, out)


def test_interrupted_during_spinup_resumes_exactly(tmp_path: Path) -> None:
    run = dataclasses.replace(SMALL_RUN, spinup=2.0, frames=8, chunk=4)
    reference = generate_turbulence(tmp_path / "ref.zarr", run, quiet=True)
    out = tmp_path / "spin.zarr"
    calls = {"n": 0}
    original = AppendableStore.save_state

    def save_then_stop(self: AppendableStore, state: dict) -> None:
        original(self, state)
        calls["n"] += 1
        if calls["n"] == 2:  # two spin-up commits of chunk*every steps, still spinning up
            raise Interrupt

    AppendableStore.save_state = save_then_stop  # type: ignore[method-assign]
    try:
        with pytest.raises(Interrupt):
            generate_turbulence(out, run, quiet=True)
    finally:
        AppendableStore.save_state = original  # type: ignore[method-assign]
    assert zarr.open_group(str(out), mode="r")["vorticity"].shape[0] == 0
    generate_turbulence(out, run, quiet=True)
    assert_same_store(reference, out)


def test_kill_9_then_rerun_continues_without_loss(turbulence_store: Path, tmp_path: Path) -> None:
    """A real `kill -9` of the command, then the same command again."""
    out = tmp_path / "killed.zarr"
    args = [
        sys.executable,
        "-m",
        "climdiff",
        "data",
        "turbulence",
        "--out",
        str(out),
        "--size",
        "32",
        "--dt",
        "0.01",
        "--frames",
        "40",
        "--every",
        "2",
        "--spinup",
        "1.0",
        "--seed",
        "7",
        "--split",
        "0.6,0.2,0.2",
        "--chunk",
        "8",
        "--threads",
        "1",
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / STATE_FILE).exists() and zarr.open_group(str(out), mode="r")["vorticity"].shape[0] >= 8:
            break
        time.sleep(0.01)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = subprocess.run(args, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert_same_store(turbulence_store, out)
    if not killed:
        pytest.skip("the run finished before it could be killed; resume not exercised")


def test_complete_store_is_refused_unless_overwrite(turbulence_store: Path, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="already complete"):
        generate_turbulence(turbulence_store, SMALL_RUN, quiet=True)
    small = dataclasses.replace(SMALL_RUN, frames=4, chunk=4)
    out = generate_turbulence(tmp_path / "s.zarr", small, quiet=True)
    with pytest.raises(StoreError, match=r"another configuration \(differs in: frames\)"):
        generate_turbulence(out, dataclasses.replace(small, frames=5), quiet=True)
    generate_turbulence(out, dataclasses.replace(small, frames=5), quiet=True, overwrite=True)
    assert xr.open_zarr(out).sizes["time"] == 5


def test_foreign_directory_is_never_overwritten(tmp_path: Path) -> None:
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    with pytest.raises(StoreError, match="not a climdiff store"):
        generate_turbulence(foreign, SMALL_RUN, quiet=True, overwrite=True)
    assert (foreign / "thesis.tex").read_text() == "years of work"


def test_too_large_dt_is_a_clear_solver_error(cli, tmp_path: Path) -> None:
    out = tmp_path / "blow.zarr"
    result = cli(
        "data",
        "turbulence",
        "--out",
        out,
        "--size",
        "32",
        "--dt",
        "2",
        "--eps",
        "50",
        "--frames",
        "8",
        "--every",
        "1",
        "--spinup",
        "0",
        "--chunk",
        "2",
        "--quiet",
    )
    assert result.exit_code == SolverError.exit_code
    assert "blew up" in result.stderr and "smaller --dt" in result.stderr
    assert "Traceback" not in result.stderr


def test_blow_up_keeps_every_committed_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A blow-up injected after 10 frames: the 8 frames of the committed chunks stay, intact."""
    run = dataclasses.replace(SMALL_RUN, frames=16, chunk=4)
    reference = generate_turbulence(tmp_path / "ref.zarr", run, quiet=True)
    healthy = ForcedTurbulence.step
    blow_up_at = run.spinup_steps + 10 * run.every + 1

    def step(self: ForcedTurbulence, zeta_hat, forcing_hat=None):  # noqa: ANN001, ANN202
        new, budget = healthy(self, zeta_hat, forcing_hat)
        step.calls += 1
        return (new * float("nan") if step.calls >= blow_up_at else new), budget

    step.calls = 0
    monkeypatch.setattr(ForcedTurbulence, "step", step)
    out = tmp_path / "blow.zarr"
    with pytest.raises(SolverError, match="The 8 frames already in"):
        generate_turbulence(out, run, quiet=True)
    kept = zarr.open_group(str(out), mode="r")["vorticity"][:]
    assert kept.shape[0] == 8
    np.testing.assert_array_equal(kept, zarr.open_group(str(reference), mode="r")["vorticity"][:8])


# --- command line -------------------------------------------------------------------------


def test_cli_makes_a_store_and_info_describes_it(cli, tmp_path: Path) -> None:
    out = tmp_path / "cli.zarr"
    result = cli(
        "data",
        "turbulence",
        "--out",
        out,
        "--size",
        "32",
        "--dt",
        "0.01",
        "--frames",
        "8",
        "--every",
        "2",
        "--spinup",
        "0.2",
        "--chunk",
        "4",
        "--threads",
        "1",
        "--quiet",
    )
    assert result.exit_code == 0, result.stderr
    assert "wrote 8 frames of 32x32 vorticity" in result.stdout
    summary = cli("data", "info", out, "--json")
    assert summary.exit_code == 0
    info = json.loads(summary.stdout)
    assert info["complete"] and info["frames"] == 8 and info["grid"] == {"y": 32, "x": 32}
    assert info["time"]["calendar"] == "noleap"
    png = tmp_path / "quicklook.png"
    table = cli("data", "info", out, "--plot", png)
    assert table.exit_code == 0 and "energy_budget.injection_mean" in table.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "0"], "size"),
        (["--size", "33"], "even"),
        (["--frames", "0"], "--frames must be positive"),
        (["--every", "-1"], "--every must be positive"),
        (["--dt", "0"], "dt"),
        (["--split", "0.5,0.1"], "--split"),
        (["--dtype", "float16"], "dtype"),
    ],
)
def test_cli_bad_input_is_one_clear_line(cli, tmp_path: Path, args: list[str], message: str) -> None:
    result = cli("data", "turbulence", "--out", tmp_path / "x.zarr", "--quiet", *args)
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "x.zarr").exists()


def test_cli_refuses_unwritable_and_existing_paths(cli, tmp_path: Path) -> None:
    missing = cli("data", "turbulence", "--out", tmp_path / "no" / "such" / "x.zarr", "--quiet")
    assert missing.exit_code != 0 and "does not exist" in missing.stderr
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    existing = cli("data", "turbulence", "--out", afile, "--quiet", "--overwrite")
    assert existing.exit_code != 0 and "not a climdiff store" in existing.stderr
    assert afile.read_text() == "x"
    info = cli("data", "info", afile)
    assert info.exit_code != 0 and "not a climdiff store" in info.stderr and "Traceback" not in info.stderr

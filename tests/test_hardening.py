"""Bad inputs and hostile conditions (issue 14): every one gives one clear line and a non-zero exit
status, Ctrl-C exits 130, a full disk names the output and the space it needs, and nothing is
left behind that blocks the corrected command. Real stores, real commands; faults are injected
at the lowest write (Zarr's local file write, fsync), never into the code under test."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
import zarr.storage._local as zarr_local

from climdiff.errors import ClimdiffError, StoreError
from climdiff.evaluate.sources import open_source
from climdiff.runtime import default_threads
from climdiff.zarr_io import missing_chunks, store_meta

REPO = Path(__file__).resolve().parents[1]
# The session's turbulence_store, as command-line flags (the same run, so outputs compare bit for bit).
SMALL_FLAGS = "--size 32 --dt 0.01 --frames 40 --every 2 --spinup 1 --seed 7 --split 0.6,0.2,0.2 --chunk 8 -q".split()
EMULATE_FLAGS = "--model turbulence32 --days 4 --members 2 --steps 5 --guidance 0 --time-chunk 2 --quiet".split()


def error_line(result, code: int = 2) -> str:  # noqa: ANN001
    """The one ``climdiff: error:`` line of a refused command (and no traceback)."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("climdiff: error: "), result.stderr
    return lines[0]


def copy_store(store: Path, to: Path) -> Path:
    shutil.copytree(store, to)
    return to


def put_nan(store: Path, name: str, index: tuple[int, ...]) -> None:
    """Write one NaN into a real store's array, as a damaged file or a bad upstream tool would."""
    array = zarr.open_array(str(store / name), mode="r+")
    array[index] = np.nan


@pytest.fixture(scope="module")
def emulation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 members x 4 days of the embedded model, chunked 2 days: four field chunks."""
    from climdiff.assets import embedded_bundle
    from climdiff.bundle import load_bundle
    from climdiff.rollout.engine import EmulateConfig, emulate

    bundle = load_bundle(embedded_bundle("turbulence32"))
    sampler = bundle.sampler.replace(guidance=0.0, steps=5)
    config = EmulateConfig(days=4, members=2, seed=3, time_chunk=2, sampler=sampler)
    return emulate(bundle, tmp_path_factory.mktemp("emu") / "run.zarr", config, quiet=True).path


@pytest.fixture
def fill_disk(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Make Zarr's lowest-level file write fail with ENOSPC once ``after`` chunk files of the
    field were written (what a full disk does to a real store)."""

    def arm(field: str, after: int) -> None:
        real = zarr_local._put
        written = []

        def put(path: Path, value, exclusive: bool = False):  # noqa: ANN001, ANN202
            if f"/{field}/c/" in Path(path).as_posix():
                if len(written) >= after:
                    raise OSError(errno.ENOSPC, "No space left on device", str(path))
                written.append(path)
            return real(path, value, exclusive=exclusive)

        monkeypatch.setattr(zarr_local, "_put", put)

    return arm


# --- 1. Ctrl-C ---------------------------------------------------------------------------------


def test_ctrl_c_exits_130_with_the_resume_line(tmp_path: Path) -> None:
    out = tmp_path / "long.zarr"
    flags = "--size 32 --dt 0.01 --frames 100000 --chunk 4 --spinup 0".split()
    command = [sys.executable, "-m", "climdiff", "data", "turbulence", "--out", str(out), *flags]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # A shell runs background jobs with SIGINT ignored and children inherit that; restore the
    # default so the test does not depend on how the test run itself was started.
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        for _ in range(1200):  # until the first chunk is committed: the run is really under way
            if (out / "climdiff-resume.npz").exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "re-run the same command to resume" in stderr
    assert "Traceback" not in stderr


def test_ctrl_c_leaves_no_traceback_from_writes_it_cut_short(tmp_path: Path) -> None:
    """An interrupt during a zarr write can leave asyncio tasks on zarr's loop thread that asyncio
    reports at exit (through its logger, or as 'exception ignored'); the command still ends with
    the one resume line. The abandoned write is played by a command that schedules both reports
    for interpreter exit, then is interrupted."""
    script = """
import asyncio, atexit, logging, sys
from climdiff import cli

class AbandonedWrite:
    def __del__(self):
        raise RuntimeError("Event loop is closed")

def report_abandoned_writes():
    try:
        raise asyncio.CancelledError()
    except asyncio.CancelledError:
        logging.getLogger("asyncio").exception("Task was destroyed but it is pending!")
    AbandonedWrite()

@cli.app.command("cut-short")
def cut_short():
    atexit.register(report_abandoned_writes)
    raise KeyboardInterrupt

sys.argv = ["climdiff", "cut-short"]
cli.main()
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 130
    assert run.stderr.splitlines() == [
        "climdiff: interrupted; everything committed so far is kept: re-run the same command to resume"
    ]


# --- 2. a full disk ----------------------------------------------------------------------------


def test_full_disk_in_data_turbulence_is_one_line_and_resumes(
    cli, fill_disk, turbulence_store, tmp_path, monkeypatch
) -> None:
    out = tmp_path / "t.zarr"
    fill_disk("vorticity", after=2)
    line = error_line(cli("data", "turbulence", "--out", out, *SMALL_FLAGS))
    assert "no space left" in line and str(out) in line and "needs up to 160.0 KiB" in line and "re-run" in line
    monkeypatch.undo()
    assert cli("data", "turbulence", "--out", out, *SMALL_FLAGS).exit_code == 0
    resumed, whole = xr.open_zarr(out), xr.open_zarr(turbulence_store)
    np.testing.assert_array_equal(resumed["vorticity"].values, whole["vorticity"].values)


def test_full_disk_in_emulate_is_one_line_and_resumes(cli, fill_disk, emulation, tmp_path, monkeypatch) -> None:
    out = tmp_path / "e.zarr"
    fill_disk("vorticity", after=1)
    line = error_line(cli("emulate", "--out", out, "--seed", "3", *EMULATE_FLAGS))
    assert "no space left" in line and str(out) in line and "needs up to 32.0 KiB" in line
    monkeypatch.undo()
    assert cli("emulate", "--out", out, "--seed", "3", *EMULATE_FLAGS).exit_code == 0
    # the resumed member is sampled alone, not beside the other: equal to float tolerance (DESIGN.md section 3)
    resumed, whole = xr.open_zarr(out)["vorticity"].values, xr.open_zarr(emulation)["vorticity"].values
    np.testing.assert_array_equal(resumed[0], whole[0])
    np.testing.assert_allclose(resumed, whole, rtol=1e-3, atol=1e-3)


def test_full_disk_in_export_is_one_line_and_leaves_no_file(cli, turbulence_store, tmp_path, monkeypatch) -> None:
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    out = tmp_path / "t.nc"
    line = error_line(cli("export", turbulence_store, "--out", out, "--quiet"))
    assert "no space left" in line and str(out) in line and "needs up to" in line
    assert os.listdir(tmp_path) == []


# --- 3. missing chunks -------------------------------------------------------------------------


def test_a_deleted_chunk_is_refused_by_every_reader(cli, turbulence_store, tmp_path) -> None:
    store = copy_store(turbulence_store, tmp_path / "t.zarr")
    (store / "vorticity" / "c" / "2" / "0" / "0").unlink()
    assert missing_chunks(store) == [("vorticity", {"time": slice(16, 24), "y": slice(0, 32), "x": slice(0, 32)})]
    commands = (
        ["data", "info", store],
        ["export", store, "--out", tmp_path / "t.nc"],
        ["train", "idm", "--data", store, "--out", tmp_path / "run", "--preset", "tiny"],
    )
    for command in commands:
        line = error_line(cli(*command))
        assert "1 chunk(s) of vorticity are missing" in line and "time 16..23" in line, command
    with pytest.raises(StoreError, match="missing"):
        open_source(store, "reference", allowed=("training-data",))
    assert not (tmp_path / "t.nc").exists() and not (tmp_path / "run").exists()


def test_emulation_chunks_are_checked_and_a_stopped_members_tail_may_be_absent(cli, emulation, tmp_path) -> None:
    store = copy_store(emulation, tmp_path / "e.zarr")
    assert missing_chunks(store) == []
    (store / "vorticity" / "c" / "1" / "1" / "0" / "0").unlink()  # member 1, days 2..3
    assert "member 1..1, time 2..3" in error_line(cli("export", store, "--out", tmp_path / "e.nc"))
    # a member that stopped at day 2 has NaN days from there on, which Zarr never writes
    zarr.open_array(str(store / "stopped_day"), mode="r+")[1] = 2
    assert missing_chunks(store) == []


# --- 4. inputs that gave tracebacks ------------------------------------------------------------


def test_reference_without_its_field_or_consolidated_metadata(turbulence_store, tmp_path) -> None:
    renamed = copy_store(turbulence_store, tmp_path / "renamed.zarr")
    (renamed / "vorticity").rename(renamed / "temperature")
    zarr.consolidate_metadata(str(renamed))
    with pytest.raises(StoreError, match="holds no field vorticity"):
        open_source(renamed, "reference", allowed=("training-data",))

    plain = copy_store(turbulence_store, tmp_path / "plain.zarr")
    meta = json.loads((plain / "zarr.json").read_text())
    meta.pop("consolidated_metadata")
    (plain / "zarr.json").write_text(json.dumps(meta))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read quietly, as it is, from each array's own metadata
        source = open_source(plain, "reference", allowed=("training-data",))
    np.testing.assert_array_equal(source.field.values, xr.open_zarr(turbulence_store)["vorticity"].values)


def test_huge_grid_and_plot_into_missing_folder(cli, turbulence_store, tmp_path) -> None:
    line = error_line(cli("data", "turbulence", "--out", tmp_path / "big.zarr", "--size", "1000000"))
    assert "needs about" in line and "of memory" in line
    assert not (tmp_path / "big.zarr").exists()
    assert "folder" in error_line(cli("data", "info", turbulence_store, "--plot", tmp_path / "nodir" / "q.png"))


# --- 5. non-finite and out-of-range numbers ----------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_guidance_is_refused(cli, tmp_path, value: str) -> None:
    out = tmp_path / "e.zarr"
    line = error_line(cli("emulate", "--out", out, "--days", "2", "--guidance", value))
    assert "guidance must be a finite number" in line
    assert not out.exists()


def test_nan_in_training_data_is_refused_before_anything_is_written(cli, turbulence_store, tmp_path) -> None:
    store = copy_store(turbulence_store, tmp_path / "t.zarr")
    put_nan(store, "vorticity", (5, 3, 3))
    line = error_line(cli("train", "idm", "--data", store, "--out", tmp_path / "run", "--preset", "tiny"))
    assert "vorticity in" in line and "non-finite" in line and "time 5" in line
    assert not (tmp_path / "run").exists()
    with pytest.raises(ClimdiffError, match="time 5"):  # the same data as an evaluation reference
        open_source(store, "reference", allowed=("training-data",))


def test_nan_in_a_forecast_start_or_a_bundles_initial_state(
    guided_bundle, trained_idm, learning_store, tmp_path
) -> None:
    from climdiff.bundle import load_bundle, make_bundle
    from climdiff.rollout.engine import EmulateConfig
    from climdiff.rollout.forecast import plan_forecast

    bundle = load_bundle(guided_bundle)
    store = copy_store(learning_store, tmp_path / "ref.zarr")
    first_test = store_meta(json.loads((store / "zarr.json").read_text())["attributes"])["split"]["test"][0]
    put_nan(store, "vorticity", (first_test, 0, 0))
    config = EmulateConfig(days=3, members=1, sampler=bundle.sampler)
    with pytest.raises(ClimdiffError, match=f"vorticity in .*ref.zarr.*non-finite.*time {first_test}"):
        plan_forecast(bundle, store, config, starts=1, start_dates=None)
    # a bundle's initial state is the test split's first two days: refused when it is made
    with pytest.raises(ClimdiffError, match=f"non-finite.*time {first_test}"):
        make_bundle(tmp_path / "b.bundle", data=store, idm=trained_idm)
    assert not (tmp_path / "b.bundle").exists()


def test_out_of_range_settings(cli, turbulence_store, emulation, tmp_path) -> None:
    line = error_line(cli("train", "disc", "--data", turbulence_store, "--out", tmp_path / "d", "--crop", "64"))
    assert "crop 64 is larger than the 32 x 32 grid" in line
    config = tmp_path / "bad.toml"
    config.write_text('lr = "fast"\n')
    line = error_line(cli("train", "idm", "--data", turbulence_store, "--out", tmp_path / "i", "--config", config))
    assert "setting lr must be float" in line
    assert not (tmp_path / "d").exists() and not (tmp_path / "i").exists()
    evaluate = ["evaluate", emulation, "--reference", turbulence_store, "--out", tmp_path / "ev"]
    assert "--block-days 30 is longer than run (4 days)" in error_line(cli(*evaluate, "--block-days", "30"))


def test_slurm_allocation_beyond_the_cores_is_capped(monkeypatch) -> None:
    cores = os.cpu_count() or 1
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", str(cores + 7))
    with pytest.warns(UserWarning, match="more than the"):
        assert default_threads() == cores
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert default_threads() == 1


# --- 6. nothing left behind; evaluations keyed by the paths given ------------------------------


def test_refused_training_leaves_nothing_and_the_corrected_command_runs(cli, turbulence_store, tmp_path) -> None:
    out = tmp_path / "run"
    train = ["train", "idm", "--data", turbulence_store, "--out", out, "--preset", "tiny"]
    assert "fewer than one batch" in error_line(cli(*train, "--batch-size", "64"))
    assert not out.exists()
    result = cli(*train, "--batch-size", "8", "--steps", "2", "--quiet")
    assert result.exit_code == 0, result.stderr


def test_a_moved_evaluation_folder_resumes(cli, turbulence_store, emulation, tmp_path, monkeypatch) -> None:
    first = tmp_path / "first"
    first.mkdir()
    copy_store(turbulence_store, first / "ref.zarr")
    copy_store(emulation, first / "run.zarr")
    monkeypatch.chdir(first)
    args = "evaluate run.zarr --reference ref.zarr --out ev --metrics bias --block-days 2 --resamples 10 -q".split()
    assert cli(*args).exit_code == 0
    assert json.loads((first / "ev" / "evaluation.json").read_text())["config"]["runs"] == ["run.zarr"]
    moved = first.rename(tmp_path / "moved")
    monkeypatch.chdir(moved)
    # the same command in the moved folder is the same evaluation: complete, not "another configuration"
    assert "already complete" in error_line(cli(*args))

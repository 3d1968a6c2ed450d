"""The embedded default rolls out today exactly as it did before the rollout seams were refactored.

``tests/data/rollout_reference.npz`` holds, as float32, what these commands wrote on the commit before the
day-stepper / block-loop refactor (issue 13, item 4), on a 2-core x86-64 CPU with torch 2.13:

* ``climdiff emulate --days 4 --members 2 --seed 3 --threads 1`` (the embedded turbulence default): the field
  ``emulation`` (member, time, y, x) and each member's final resume state (``last``: its last two days in model
  space; ``rng``: its generator's state);
* ``climdiff emulate --init-from <learning_store> --starts 2 --days 3 --members 2 --seed 3 --threads 1``: the
  field ``forecast`` (init_time, lead, member, y, x), and ``reference_days``, the two reference days each
  start is conditioned on (so a changed solver or reference store is told apart from a changed rollout).

The test re-runs the same commands (and an interrupted, resumed emulation, and the emulation with ``--threads 2``,
which puts the guidance on a thread of its own). What it asserts, and why in two strengths:

* On one host, the resumed run and the run with guidance on its own thread equal the straight run bit for bit:
  that is climdiff's promise (DESIGN.md section 3), and nothing but climdiff's own code can break it.
* Against the saved fixture, the random draws (generator states) are equal bit for bit and the fields agree to
  float32 round-off (``ROUND_OFF``, a relative root-mean-square difference). torch does not promise bitwise-equal
  CPU kernels across instruction sets: on an AVX-512 host the fixture's fields (made on another host) come back
  with a relative RMS difference of 6e-6 (emulation) and 1.7e-5 (forecast; largest single difference 7.6e-4 on
  values up to 11.5; measured 2026-12-04). A changed rollout (another draw, another solver step, another
  guidance) moves them by a relative RMS of order one.

Regenerate the fixture ONLY deliberately, when a change is meant to alter the draws, and say so in the commit
message: ``CLIMDIFF_REGENERATE_ROLLOUT_REFERENCE=1 python -m pytest tests/test_bit_identical.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from climdiff.assets import embedded_bundle
from climdiff.bundle import load_bundle
from climdiff.rollout.engine import EmulateConfig, emulate
from climdiff.rollout.writer import EmulationStore

FIXTURE = Path(__file__).parent / "data" / "rollout_reference.npz"
REGENERATE = os.environ.get("CLIMDIFF_REGENERATE_ROLLOUT_REFERENCE") == "1"
ROUND_OFF = 1e-3  # relative RMS: 60 x the largest cross-host difference measured, 1/1000 of a changed draw
MODEL = "turbulence32"  # the fixture was made with this embedded model (the default until the lat-lon one)
EMULATE = ("emulate", "--model", MODEL, "--days", "4", "--members", "2", "--seed", "3", "--quiet")
FORECAST = ("--starts", "2", "--days", "3", "--members", "2", "--seed", "3", "--threads", "1", "--quiet")


def final_states(path: Path) -> dict[str, np.ndarray]:
    """Each member's last two days and generator state, read back through the store's own decoder."""
    bundle = load_bundle(embedded_bundle(MODEL))
    store = EmulationStore.open(path, "vorticity", tuple(bundle.initial_state.shape[1:]))
    states = [store.load_state(m) for m in range(2)]
    return {
        "last": np.stack([s.last.numpy() for s in states]),  # type: ignore[union-attr]
        "rng": np.stack([s.generator.get_state().numpy() for s in states]),  # type: ignore[union-attr]
    }


@pytest.fixture(scope="module")
def current(cli, tmp_path_factory: pytest.TempPathFactory, learning_store: Path) -> dict[str, np.ndarray]:
    tmp = tmp_path_factory.mktemp("bitwise")
    run = cli(*EMULATE, "--threads", "1", "--out", str(tmp / "run.zarr"))
    assert run.exit_code == 0, run.stderr
    beside = cli(*EMULATE, "--threads", "2", "--out", str(tmp / "beside.zarr"))  # the guidance on a thread of its own
    assert beside.exit_code == 0, beside.stderr
    fc = cli("emulate", "--model", MODEL, "--init-from", str(learning_store), *FORECAST, "--out", str(tmp / "fc.zarr"))
    assert fc.exit_code == 0, fc.stderr
    forecast = zarr.open_group(str(tmp / "fc.zarr"))
    reference = xr.open_zarr(learning_store)
    times = list(reference["time"].values)
    init = [times.index(t) for t in xr.open_zarr(tmp / "fc.zarr")["init_time"].values]
    arrays = {
        "emulation": zarr.open_group(str(tmp / "run.zarr"))["vorticity"][:],
        **final_states(tmp / "run.zarr"),
        "forecast": forecast["vorticity"][:],
        "reference_days": np.stack([reference["vorticity"].values[i - 1 : i + 1] for i in init]).astype(np.float32),
        "resumed": resumed_run(tmp / "resumed.zarr"),
        "beside": zarr.open_group(str(tmp / "beside.zarr"))["vorticity"][:],
    }
    if REGENERATE:
        FIXTURE.parent.mkdir(exist_ok=True)
        np.savez_compressed(FIXTURE, **{k: v for k, v in arrays.items() if k not in ("resumed", "beside")})
    return arrays


def resumed_run(out: Path) -> np.ndarray:
    """The emulation command's run, stopped after its first two-day block and resumed."""
    bundle = load_bundle(embedded_bundle(MODEL))
    config = EmulateConfig(days=4, members=2, seed=3, time_chunk=2, sampler=bundle.sampler)

    class Stop(Exception):
        pass

    def stop(days: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        emulate(bundle, out, config, quiet=True, after_commit=stop)
    assert np.isnan(zarr.open_group(str(out))["vorticity"][:, 2:]).all()
    emulate(bundle, out, config, quiet=True)
    return zarr.open_group(str(out))["vorticity"][:]


@pytest.fixture(scope="module")
def saved() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return dict(data)


def test_the_reference_store_is_the_one_the_fixture_was_made_from(current, saved) -> None:
    assert np.array_equal(current["reference_days"], saved["reference_days"]), "the reference store changed"


def assert_same_up_to_round_off(current: np.ndarray, saved: np.ndarray) -> None:
    """The fixture's field, to float32 round-off of another host's kernels (see the module docstring)."""
    assert current.shape == saved.shape and np.isfinite(current).all()
    relative_rms = float(np.sqrt(np.mean((current - saved) ** 2) / np.mean(saved**2)))
    assert relative_rms < ROUND_OFF, f"relative RMS difference {relative_rms:.2e} is more than round-off"


def test_emulation_and_its_resume_state_match_the_fixture(current, saved) -> None:
    assert current["emulation"].shape == (2, 4, 32, 32)
    assert_same_up_to_round_off(current["emulation"], saved["emulation"])
    assert_same_up_to_round_off(current["last"], saved["last"])
    assert np.array_equal(current["rng"], saved["rng"]), "the random draws changed"


def test_a_resumed_emulation_is_bit_identical(current) -> None:
    assert np.array_equal(current["resumed"], current["emulation"])


def test_guidance_on_its_own_thread_is_bit_identical(current) -> None:
    assert np.array_equal(current["beside"], current["emulation"])


def test_forecasts_match_the_fixture(current, saved) -> None:
    assert current["forecast"].shape == (2, 3, 2, 32, 32)
    assert_same_up_to_round_off(current["forecast"], saved["forecast"])

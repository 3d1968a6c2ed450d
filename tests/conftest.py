"""Shared fixtures: one small real turbulence store, made once per test session."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from climdiff.data.navier_stokes import TurbulenceConfig
from climdiff.data.turbulence import TurbulenceRun, generate_turbulence

torch.set_num_threads(1)

# 32^2 keeps the forcing ring (k_f = 6) well inside the 2/3-dealiased range (k < 10.7).
SMALL_RUN = TurbulenceRun(
    solver=TurbulenceConfig(size=32, dt=0.01),
    frames=40,
    every=2,
    spinup=1.0,
    seed=7,
    split=(0.6, 0.2, 0.2),
    chunk=8,
)


# A longer store for tests that need models to learn something real.
LEARNING_RUN = TurbulenceRun(
    solver=TurbulenceConfig(size=32, dt=0.01),
    frames=160,
    every=4,
    spinup=5.0,
    seed=11,
    split=(0.6, 0.3, 0.1),
    chunk=32,
)


@pytest.fixture(scope="session")
def learning_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete 32x32 store of 160 frames (96 for training, 48 for validation)."""
    out = tmp_path_factory.mktemp("data") / "learning.zarr"
    return generate_turbulence(out, LEARNING_RUN, quiet=True)


@pytest.fixture(scope="session")
def trained_disc(learning_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny discriminator trained on real turbulence (a training-run directory)."""
    from climdiff.train.config import resolve_config
    from climdiff.train.loop import train_model

    config = resolve_config(
        "disc",
        {},
        {
            "preset": "tiny",
            "steps": 400,
            "batch_size": 16,
            "val_every": 400,
            "val_batches": 6,
            "checkpoint_every": 400,
            "log_every": 100,
        },
    )
    return train_model(config, learning_store, tmp_path_factory.mktemp("runs") / "disc", device="cpu", quiet=True)


@pytest.fixture(scope="session")
def trained_idm(learning_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny image diffusion model trained briefly on real turbulence (a training-run directory)."""
    from climdiff.train.config import resolve_config
    from climdiff.train.loop import train_model

    config = resolve_config(
        "idm", {}, {"preset": "tiny", "steps": 60, "batch_size": 8, "val_every": 60, "checkpoint_every": 60}
    )
    return train_model(config, learning_store, tmp_path_factory.mktemp("runs") / "idm", device="cpu", quiet=True)


@pytest.fixture(scope="session")
def guided_bundle(
    tmp_path_factory: pytest.TempPathFactory, learning_store: Path, trained_idm: Path, trained_disc: Path
) -> Path:
    """IDM + discriminator bundle with a short sampler (8 steps, lambda 3)."""
    from climdiff.bundle import make_bundle
    from climdiff.sampling.config import SamplerConfig

    out = tmp_path_factory.mktemp("bundles") / "guided.bundle"
    return make_bundle(
        out, data=learning_store, idm=trained_idm, disc=trained_disc, sampler=SamplerConfig(steps=8, guidance=3.0)
    )


@pytest.fixture(scope="session")
def trained_vdm(learning_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny video diffusion model (conditioned on the two previous days) trained briefly on real turbulence."""
    from climdiff.train.config import resolve_config
    from climdiff.train.loop import train_model

    config = resolve_config(
        "vdm", {}, {"preset": "tiny", "steps": 200, "batch_size": 8, "val_every": 200, "checkpoint_every": 200}
    )
    return train_model(config, learning_store, tmp_path_factory.mktemp("runs") / "vdm", device="cpu", quiet=True)


@pytest.fixture(scope="session")
def vdm_bundle(tmp_path_factory: pytest.TempPathFactory, learning_store: Path, trained_vdm: Path) -> Path:
    """A VDM bundle with a short sampler (8 steps; no guidance)."""
    from climdiff.bundle import make_bundle
    from climdiff.sampling.config import SamplerConfig

    out = tmp_path_factory.mktemp("bundles") / "vdm.bundle"
    return make_bundle(out, data=learning_store, vdm=trained_vdm, sampler=SamplerConfig(steps=8))


@pytest.fixture(scope="session")
def turbulence_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete 32x32 store of 40 frames, shared read-only by many tests."""
    out = tmp_path_factory.mktemp("data") / "turb.zarr"
    return generate_turbulence(out, SMALL_RUN, quiet=True)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def cli() -> Callable[..., CliResult]:
    """Run ``climdiff ARGS`` in-process through the real entry point (exit codes included)."""
    from climdiff.cli import main

    def run(*args: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        argv = sys.argv
        sys.argv = ["climdiff", *map(str, args)]
        code = 0
        threads = torch.get_num_threads()  # commands set it; keep the session's for later tests
        try:
            with redirect_stdout(out), redirect_stderr(err):
                main()
        except SystemExit as done:
            code = int(done.code or 0)
        finally:
            sys.argv = argv
            torch.set_num_threads(threads)
        return CliResult(code, out.getvalue(), err.getvalue())

    return run

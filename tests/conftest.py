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


@pytest.fixture
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

"""The model recipes in scripts/: valid shell, and `step` (scripts/steps.sh) keeps a complete
output and runs the command for a missing or unfinished one, so a re-run continues a recipe."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _step(out: Path, *command: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """`step OUT ARGS...` in bash, with this interpreter's climdiff first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "climdiff"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m climdiff "$@"\n')
    shim.chmod(0o755)
    script = f'source "{SCRIPTS / "steps.sh"}"; PATH="{bin_dir}:$PATH"; step "$@"'
    return subprocess.run(
        ["bash", "-c", script, "step", str(out), *command], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.sh")))
def test_every_script_is_valid_bash(script: str) -> None:
    done = subprocess.run(["bash", "-n", str(SCRIPTS / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_step_keeps_a_complete_output_and_makes_a_missing_or_unfinished_one(
    learning_store: Path, trained_idm: Path, tmp_path: Path
) -> None:
    for complete in (learning_store, trained_idm):
        kept = _step(complete, "no-such-command", tmp_path=tmp_path)
        assert kept.returncode == 0 and kept.stdout.strip() == f"{complete}: complete, kept", kept.stderr
    unfinished = tmp_path / "run"
    shutil.copytree(trained_idm, unfinished)
    record = unfinished / "run.json"
    record.write_text(record.read_text().replace('"complete": true', '"complete": false'))
    for out in (tmp_path / "missing.zarr", unfinished):
        ran = _step(out, "--version", tmp_path=tmp_path)
        assert ran.returncode == 0 and ran.stdout.startswith("climdiff "), ran.stderr

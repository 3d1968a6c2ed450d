"""benchmarks/discriminator_probe.py: its candidates and AUCs, checked with a discriminator whose
answers are known (one that judges only the size of the change), and the command on a real bundle."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from climdiff.data.windows import FrameSource

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "discriminator_probe.py"


def load_script():
    spec = importlib.util.spec_from_file_location("discriminator_probe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SizeOnly(nn.Module):
    """Logit = minus the squared distance of the candidate from the one-day change's typical size:
    it cannot see where a change goes, only how large it is."""

    def __init__(self, size: float) -> None:
        super().__init__()
        self.size = size

    def forward(self, candidate, sigma, cond, doy=None) -> torch.Tensor:
        change = (candidate - cond[:, :1]).pow(2).mean(dim=(1, 2, 3)).sqrt()
        return -((change - self.size) ** 2)


def test_a_discriminator_that_sees_only_the_size_of_a_change(learning_store: Path) -> None:
    probe = load_script()
    source = FrameSource(learning_store, "train")
    table = probe.probe(SizeOnly(source.change_std()), source, days=40, sigmas=[0.0], seed=0)[0.0]
    assert set(table) == {"next", *probe.CANDIDATES, *probe.PERIODIC_CANDIDATES}
    assert table["next"][1] == 0.5  # the positives against themselves
    # the moved change has exactly the true change's size (to round-off): indistinguishable
    assert table["change moved"][1] == pytest.approx(0.5, abs=0.05)
    assert table["change moved"][0] == pytest.approx(table["next"][0], rel=1e-5)
    # a doubled change is always too large; a copy has no change at all
    assert table["2 x change"][1] == 1.0 and table["copy"][1] > 0.9
    # another day's change has the right size on average, so the truth is not clearly preferred
    assert 0.3 < table["another day's change"][1] < 0.8


def test_the_command_on_a_trained_bundle(guided_bundle: Path, learning_store: Path, turbulence_store: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(SCRIPT), str(guided_bundle), "--days", "24", "--sigmas", "0.05,1", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)

    done = run("--data", str(learning_store), "--split", "train")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    frames = FrameSource(learning_store, "train").frames(list(range(96))).double().numpy()
    changes = np.diff(frames, axis=0).reshape(95, -1)
    days = np.linspace(1, 94, 94).astype(int)
    expected = np.mean([np.corrcoef(changes[n - 1], changes[n])[0, 1] for n in days])
    assert lines[0] == f"correlation of consecutive one-day changes: {expected:+.3f}"
    rows = [line for line in lines if line.startswith("| 0.05 ") or line.startswith("| 1 ")]
    assert len(rows) == 2 and all(len(row.strip("|").split("|")) == 9 for row in rows)
    assert run("--data", str(learning_store), "--split", "train").stdout == done.stdout  # deterministic by seed
    refused = run("--data", str(turbulence_store))
    assert refused.returncode != 0 and "is not the data" in refused.stderr

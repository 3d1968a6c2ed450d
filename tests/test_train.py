"""Training: configuration merging, the shared loop (resume, DDP), and that models really learn."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.stats import mannwhitneyu

from climdiff.checkpoint import load_checkpoint
from climdiff.errors import ClimdiffError, StoreError
from climdiff.train.config import ADDED_SETTINGS, TrainConfig, resolve_config
from climdiff.train.loop import train_model
from climdiff.train.tasks import roc_auc

ROOT = Path(__file__).parents[1]


def tiny(kind: str, **overrides) -> TrainConfig:
    return resolve_config(
        kind,
        {},
        {
            "preset": "tiny",
            "steps": 6,
            "batch_size": 4,
            "checkpoint_every": 2,
            "val_every": 3,
            "log_every": 1,
            **overrides,
        },
    )


def test_config_layers_preset_file_then_flags() -> None:
    cfg = resolve_config(
        "idm", {"lr": 3e-4, "batch_size": 4, "model": {"base_channels": 16}}, {"batch_size": 2, "lr": None}
    )
    assert cfg.preset == "small" and cfg.lr == 3e-4 and cfg.batch_size == 2 and cfg.model == {"base_channels": 16}
    assert cfg.steps == 3000 and cfg.epochs is None
    by_epochs = resolve_config("disc", {"epochs": 3}, {})
    assert by_epochs.epochs == 3 and by_epochs.steps is None
    paper_disc = resolve_config("disc", {}, {"preset": "paper"})
    assert paper_disc.epochs == 500 and paper_disc.batch_size == 8 and paper_disc.lr == 1e-4
    with pytest.raises(ClimdiffError, match="unknown setting"):
        resolve_config("idm", {"learning_rate": 1.0}, {})
    with pytest.raises(ClimdiffError, match="batch_size must be a positive"):
        resolve_config("idm", {}, {"batch_size": 0})
    with pytest.raises(ClimdiffError, match="unknown model kind"):
        TrainConfig(kind="gan", steps=1)
    assert resolve_config("disc", {}, {"negatives": "no-copies"}).negatives == "no-copies"
    with pytest.raises(ClimdiffError, match="unknown kind of negatives 'none' \\(use all, no-copies, later\\)"):
        resolve_config("disc", {"negatives": "none"}, {})


def test_roc_auc_agrees_with_mann_whitney() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.4
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)  # rounded: many ties
    u = mannwhitneyu(scores[labels], scores[~labels]).statistic
    assert roc_auc(scores, labels) == pytest.approx(u / (labels.sum() * (~labels).sum()))
    assert roc_auc(np.arange(4.0), np.array([0, 0, 1, 1])) == 1.0


@pytest.mark.parametrize("kind", ["idm", "vdm"])
def test_diffusion_training_writes_a_loadable_checkpoint(turbulence_store: Path, tmp_path: Path, kind: str) -> None:
    run = train_model(tiny(kind), turbulence_store, tmp_path / kind, device="cpu", quiet=True)
    model, header = load_checkpoint(run / "model.safetensors", expected_kind=kind)
    assert header["grid"]["kind"] == "periodic" and header["variable"]["name"] == "vorticity"
    assert header["normalization"]["std"] > 0 and header["tensors"]["ema"] is True
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(r["train_loss"]) for r in records) and "val_loss" in records[2]
    assert (run / "loss.png").read_bytes()[:4] == b"\x89PNG" and (run / "metrics.csv").exists()
    assert json.loads((run / "run.json").read_text())["complete"] is True
    x = torch.randn(2, 1, 32, 32)
    cond = torch.randn(2, 2, 32, 32) if kind == "vdm" else None
    assert torch.isfinite(model(x, torch.tensor([0.5, 2.0]), cond)).all()


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


class Stop(Exception):
    pass


def test_resume_continues_exactly(turbulence_store: Path, tmp_path: Path) -> None:
    config = tiny("disc")
    reference = train_model(config, turbulence_store, tmp_path / "ref", device="cpu", quiet=True)

    def stop_at_4(step: int) -> None:
        if step == 4:
            raise Stop

    out = tmp_path / "resumed"
    with pytest.raises(Stop):
        train_model(config, turbulence_store, out, device="cpu", quiet=True, after_checkpoint=stop_at_4)
    assert json.loads((out / "run.json").read_text())["complete"] is False
    train_model(config, turbulence_store, out, device="cpu", quiet=True)
    a, b = _weights(reference), _weights(out)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_a_run_started_before_the_made_up_negatives_resumes(turbulence_store: Path, tmp_path: Path) -> None:
    def stop_at_2(step: int) -> None:
        if step == 2:
            raise Stop

    out = tmp_path / "old"
    with pytest.raises(Stop):
        train_model(tiny("disc"), turbulence_store, out, device="cpu", quiet=True, after_checkpoint=stop_at_2)
    record = json.loads((out / "run.json").read_text())
    assert not set(ADDED_SETTINGS) & set(record["config"]["train"])  # at their defaults: not in the identity
    train_model(tiny("disc"), turbulence_store, out, device="cpu", quiet=True)  # resumes
    assert json.loads((out / "run.json").read_text())["complete"] is True
    with pytest.raises(StoreError, match=r"differs in: train"):  # a run with them set is another run
        train_model(tiny("disc", foreign_changes=0.5), turbulence_store, out, device="cpu", quiet=True)


def test_finished_or_different_runs_are_refused(turbulence_store: Path, tmp_path: Path) -> None:
    out = train_model(tiny("idm", steps=2), turbulence_store, tmp_path / "r", device="cpu", quiet=True)
    with pytest.raises(StoreError, match="already complete"):
        train_model(tiny("idm", steps=2), turbulence_store, out, device="cpu", quiet=True)
    with pytest.raises(StoreError, match=r"differs in: train"):
        train_model(tiny("idm", steps=3), turbulence_store, out, device="cpu", quiet=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_step_equals_single_process_full_batch(turbulence_store: Path, tmp_path: Path) -> None:
    common = [
        "train",
        "idm",
        "--data",
        str(turbulence_store),
        "--preset",
        "tiny",
        "--steps",
        "1",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [sys.executable, "-m", "climdiff", *common, "--out", str(tmp_path / "one")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_free_port()),
            "-m",
            "climdiff",
            *common,
            "--out",
            str(tmp_path / "two"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    before = {k: v for k, v in _weights_at_init(turbulence_store, tmp_path).items()}
    changed = 0
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-6, msg=name)
        changed += int(not torch.equal(one[name], before[name]))
    assert changed > 0  # the step really moved the weights


def _weights_at_init(store: Path, tmp_path: Path) -> dict[str, torch.Tensor]:
    """The same run with a learning rate of ~0: the initial weights, for comparison."""
    cfg = resolve_config("idm", {}, {"preset": "tiny", "steps": 1, "batch_size": 4, "lr": 1e-30})
    return _weights(train_model(cfg, store, tmp_path / "init", device="cpu", quiet=True))


def test_discriminator_learns_time_consistency(trained_disc: Path) -> None:
    """Trained on real turbulence, it beats chance clearly at low noise, also on hard offsets."""
    validation = json.loads((trained_disc / "run.json").read_text())["validation"]
    assert validation["auc_sigma_0.002-0.05"] > 0.8
    assert validation["auc_hard_sigma_0.002-0.05"] > 0.65
    assert validation["acc_sigma_0.002-0.05"] > 0.65


def test_made_up_negatives_have_their_own_validation_auc(cli, turbulence_store: Path, tmp_path: Path) -> None:
    flags = ["--preset", "tiny", "--steps", "3", "--batch-size", "4", "--val-every", "3", "--quiet"]
    made = cli(
        "train", "disc", "--data", turbulence_store, "--out", tmp_path / "d", *flags,
        "--foreign-changes", "0.3", "--large-scale-negatives", "0.4", "--large-scale-cutoff", "3",
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    run = json.loads((tmp_path / "d" / "run.json").read_text())
    assert {
        k: run["config"]["train"][k] for k in ("foreign_changes", "large_scale_negatives", "large_scale_cutoff")
    } == {
        "foreign_changes": 0.3,
        "large_scale_negatives": 0.4,
        "large_scale_cutoff": 3,
    }
    for kind in ("foreign", "large_scales"):
        assert 0 <= run["validation"][f"auc_{kind}_sigma_0.002-0.05"] <= 1
    plain = train_model(tiny("disc"), turbulence_store, tmp_path / "p", device="cpu", quiet=True)
    assert not any(
        "foreign" in k or "large_scales" in k for k in json.loads((plain / "run.json").read_text())["validation"]
    )


def test_cli_train_bad_input_is_one_line(cli, turbulence_store: Path, tmp_path: Path) -> None:
    missing = cli("train", "idm", "--data", tmp_path / "none.zarr", "--out", tmp_path / "o", "--quiet")
    assert missing.exit_code != 0 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("learning_rate = 1\n")
    unknown = cli("train", "idm", "--data", turbulence_store, "--out", tmp_path / "o", "--config", bad)
    assert unknown.exit_code != 0 and "unknown setting(s) in config file: learning_rate" in unknown.stderr
    preset = cli("train", "disc", "--data", turbulence_store, "--out", tmp_path / "o", "--preset", "huge")
    assert preset.exit_code != 0 and "unknown preset" in preset.stderr
    kind = cli("train", "gan", "--data", turbulence_store, "--out", tmp_path / "o")
    assert kind.exit_code != 0 and "Traceback" not in kind.stderr


def test_validation_runs_on_its_own_interval_whatever_the_log_interval(turbulence_store: Path, tmp_path: Path) -> None:
    run = train_model(tiny("idm", val_every=4, log_every=5), turbulence_store, tmp_path / "r", device="cpu", quiet=True)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], "val_loss" in r) for r in records] == [(4, True), (5, False), (6, True)]

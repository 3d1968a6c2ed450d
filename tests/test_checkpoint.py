"""Checkpoint format: exact round trips, and every kind of bad file refused with CheckpointError."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import safetensors
import safetensors.torch
import torch
from torch import nn

from climdiff.checkpoint import (
    FORMAT_VERSION,
    METADATA_KEY,
    CheckpointError,
    describe_checkpoint,
    load_checkpoint,
    save_checkpoint,
    weights_sha256,
)
from climdiff.errors import ClimdiffError
from climdiff.models import build_model, config_for, count_parameters

META = {
    "normalization": {"transform": "standardize", "mean": 0.1, "std": 2.0},
    "grid": {"kind": "periodic", "shape": [16, 16], "x": {"start": 0.0, "step": 0.39}},
    "variable": {"name": "vorticity", "units": "1/s"},
    "calendar": None,
    "provenance": {"store": "turb.zarr", "steps": 10, "seed": 1},
}


def make(kind: str, seed: int = 0) -> nn.Module:
    """A tiny model with random (not zero-initialised) weights, so outputs depend on every tensor."""
    torch.manual_seed(seed)
    model = build_model(kind, config_for(kind, "tiny"))
    nn.utils.vector_to_parameters(0.2 * torch.randn(count_parameters(model)), model.parameters())
    return model.eval()


def outputs(model: nn.Module, kind: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 16, 16, generator=gen)
    cond = torch.randn(2, 2, 16, 16, generator=gen)
    sigma = torch.tensor([0.05, 3.0])
    with torch.no_grad():
        return model(x, sigma) if kind == "idm" else model(x, sigma, cond)


def rewrite(
    path: Path,
    header: Callable[[dict[str, Any]], None] = lambda h: None,
    tensors: Callable[[dict[str, torch.Tensor]], None] = lambda t: None,
) -> None:
    """Edit a checkpoint's header and/or tensors in place, re-hashing the weights so that only the
    intended defect remains."""
    with safetensors.safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()[METADATA_KEY])
        weights = {k: f.get_tensor(k) for k in f.keys()}
    tensors(weights)
    meta["weights_sha256"] = weights_sha256(weights)
    header(meta)
    safetensors.torch.save_file(weights, str(path), metadata={METADATA_KEY: json.dumps(meta)})


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "idm.safetensors"
    save_checkpoint(path, make("idm"), META)
    return path


@pytest.mark.parametrize("kind", ["idm", "disc", "vdm"])
def test_round_trip_reproduces_outputs_exactly(tmp_path: Path, kind: str) -> None:
    model = make(kind)
    path = tmp_path / f"{kind}.safetensors"
    save_checkpoint(path, model, META)
    loaded, meta = load_checkpoint(path, expected_kind=kind)
    assert torch.equal(outputs(loaded, kind), outputs(model, kind))
    assert not loaded.training
    assert meta["kind"] == kind and meta["format_version"] == FORMAT_VERSION
    for key, value in META.items():
        assert meta[key] == value
    assert meta["padding"] == "periodic"
    assert meta["tensors"] == {"model": True, "ema": False}


def test_ema_weights_are_loaded_for_sampling_and_model_weights_on_request(tmp_path: Path) -> None:
    model, ema = make("idm", seed=0), make("idm", seed=1)
    path = tmp_path / "with_ema.safetensors"
    save_checkpoint(path, model, META, ema=ema)
    assert torch.equal(outputs(load_checkpoint(path)[0], "idm"), outputs(ema, "idm"))
    assert torch.equal(outputs(load_checkpoint(path, weights="model")[0], "idm"), outputs(model, "idm"))


def test_ema_must_match_the_model(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="EMA"):
        save_checkpoint(tmp_path / "x.safetensors", make("idm"), META, ema=make("disc"))


def test_save_is_atomic_and_replaces_old_file(tmp_path: Path, saved: Path) -> None:
    save_checkpoint(saved, make("idm", seed=4), META)
    assert sorted(p.name for p in tmp_path.iterdir()) == [saved.name]  # no temporary left behind
    assert torch.equal(outputs(load_checkpoint(saved)[0], "idm"), outputs(make("idm", seed=4), "idm"))


def test_failed_save_leaves_existing_checkpoint_intact(tmp_path: Path, saved: Path) -> None:
    before = saved.read_bytes()
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(saved, make("idm", seed=5), {**META, "provenance": {"bad": object()}})
    assert saved.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [saved.name]


def test_describe_reports_kind_size_and_hashes(saved: Path) -> None:
    info = describe_checkpoint(saved)
    assert info["kind"] == "idm"
    assert info["parameters"] == count_parameters(make("idm"))
    assert info["file_bytes"] == saved.stat().st_size
    assert len(info["file_sha256"]) == 64 and len(info["weights_sha256"]) == 64
    assert info["variable"] == META["variable"]


def _rejected(path: Path, match: str) -> None:
    """Both readers refuse the file with a one-line, user-facing message."""
    for read in (load_checkpoint, describe_checkpoint):
        with pytest.raises(CheckpointError, match=match) as info:
            read(path)
        assert "\n" not in str(info.value) and isinstance(info.value, ClimdiffError)


def test_missing_checkpoint(tmp_path: Path) -> None:
    _rejected(tmp_path / "nope.safetensors", "not found")


def test_truncated_checkpoint(saved: Path) -> None:
    data = saved.read_bytes()
    for cut in (len(data) - 100, 40, 4):
        saved.write_bytes(data[:cut])
        _rejected(saved, "not a readable safetensors file")


def test_garbage_and_foreign_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x80\x04pickle? no thanks" * 10)
    _rejected(garbage, "not a readable safetensors file")
    foreign = tmp_path / "foreign.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(foreign))
    _rejected(foreign, "not a climdiff checkpoint")


def test_tampered_weights(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside the last tensor's data
    saved.write_bytes(bytes(data))
    _rejected(saved, "sha256")


def test_wrong_kind(saved: Path) -> None:
    with pytest.raises(CheckpointError, match="kind 'idm', but 'disc' was expected"):
        load_checkpoint(saved, expected_kind="disc")


def test_future_format(saved: Path) -> None:
    rewrite(saved, header=lambda h: h.update(format_version=FORMAT_VERSION + 1))
    _rejected(saved, "newer than")


def test_unknown_kind_and_missing_header_keys(saved: Path) -> None:
    rewrite(saved, header=lambda h: h.update(kind="gan"))
    _rejected(saved, "unknown model kind")
    rewrite(saved, header=lambda h: h.pop("model"))
    _rejected(saved, "lacks required keys")


def test_weights_that_do_not_fit_the_configuration(saved: Path) -> None:
    rewrite(saved, header=lambda h: h["model"]["backbone"].update(base_channels=16, emb_channels=64))
    _rejected(saved, "do not fit the stored idm configuration: .*wrong shape")


def test_missing_tensor(saved: Path) -> None:
    rewrite(saved, tensors=lambda t: t.pop("model.backbone.conv_out.weight"))
    _rejected(saved, "missing backbone.conv_out.weight")


def test_configuration_from_the_future(saved: Path) -> None:
    rewrite(saved, header=lambda h: h["model"]["backbone"].update(shiny_new_option=True))
    _rejected(saved, "cannot be built")


def test_grid_and_padding_must_agree(tmp_path: Path, saved: Path) -> None:
    latlon_meta = {**META, "grid": {"kind": "latlon", "shape": [16, 16]}}
    with pytest.raises(CheckpointError, match="latlon grid cannot use a network with periodic padding"):
        save_checkpoint(tmp_path / "x.safetensors", make("idm"), latlon_meta)
    rewrite(saved, header=lambda h: h.update(grid=latlon_meta["grid"]))
    _rejected(saved, "cannot use a network")


def test_kind_in_metadata_must_match_model(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="kind 'disc'"):
        save_checkpoint(tmp_path / "x.safetensors", make("idm"), {**META, "kind": "disc"})

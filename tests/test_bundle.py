"""Bundles (what emulate loads) and `climdiff info` on every kind of output."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
import xarray as xr

from climdiff.bundle import BundleError, _check_compatible, load_bundle, make_bundle, resolve_checkpoint
from climdiff.checkpoint import describe_checkpoint
from climdiff.data.navier_stokes import TurbulenceConfig
from climdiff.data.turbulence import generate_turbulence
from climdiff.train.config import resolve_config
from climdiff.train.loop import train_model
from climdiff.zarr_io import store_meta
from tests.conftest import SMALL_RUN


@pytest.fixture
def guided(guided_bundle: Path) -> Path:
    return guided_bundle


def test_bundle_loads_models_state_and_settings(guided: Path, learning_store: Path) -> None:
    bundle = load_bundle(guided)
    assert bundle.kind == "guided" and set(bundle.models) == {"idm", "disc"}
    assert bundle.sampler.steps == 8 and bundle.sampler.guidance == 3.0
    ds = xr.open_zarr(learning_store)
    first = store_meta(ds.attrs)["split"]["test"][0]
    assert bundle.initial_state.shape == (2, 1, 32, 32)
    torch.testing.assert_close(bundle.initial_state[:, 0], torch.from_numpy(ds["vorticity"].values[first : first + 2]))
    assert bundle.initial_dates == [t.isoformat() for t in ds["time"].values[first : first + 2]]
    assert bundle.meta["grid"]["shape"] == [32, 32] and bundle.meta["calendar"] == "noleap"
    assert not any(p.requires_grad for p in bundle.models["idm"].parameters())


def test_bundle_refuses_tampering_and_missing_parts(guided: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.bundle"
    shutil.copytree(guided, copy)
    load_bundle(copy)
    meta = json.loads((copy / "bundle.json").read_text())
    meta["sampler"]["guidance"] = 100.0
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="bundle.json does not match its hash"):
        load_bundle(copy)
    shutil.rmtree(copy)
    shutil.copytree(guided, copy)
    with (copy / "disc.safetensors").open("r+b") as fh:
        fh.seek(-8, 2)
        fh.write(b"\x00" * 8)
    with pytest.raises(BundleError, match="disc.safetensors does not match its hash"):
        load_bundle(copy)
    (copy / "initial_state.safetensors").unlink()
    with pytest.raises(BundleError, match="incomplete"):
        load_bundle(copy)
    with pytest.raises(BundleError, match="not a climdiff bundle"):
        load_bundle(tmp_path)
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nothing")


def test_models_from_different_grids_are_refused(trained_idm: Path, learning_store: Path, tmp_path: Path) -> None:
    coarse = dataclasses.replace(SMALL_RUN, solver=TurbulenceConfig(size=16, dt=0.01, kf=4.0), frames=20, chunk=4)
    store16 = generate_turbulence(tmp_path / "16.zarr", coarse, quiet=True)
    disc16 = train_model(
        resolve_config("disc", {}, {"preset": "tiny", "steps": 1, "batch_size": 4}),
        store16,
        tmp_path / "d16",
        device="cpu",
        quiet=True,
    )
    with pytest.raises(BundleError, match="different data \\(grid differs"):
        make_bundle(tmp_path / "b", data=learning_store, idm=trained_idm, disc=disc16)
    with pytest.raises(BundleError, match="other data"):
        make_bundle(tmp_path / "b", data=store16, idm=trained_idm)


def test_statistics_that_differ_by_round_off_fit_together(trained_idm: Path, trained_disc: Path) -> None:
    # the same store made on another host: its statistics differ in the last bits, not in substance
    headers = {
        kind: describe_checkpoint(resolve_checkpoint(p)) for kind, p in (("idm", trained_idm), ("disc", trained_disc))
    }
    stats = headers["disc"]["normalization"]
    stats["std"] *= 1 + 1e-9
    stats["mean"] += 3e-15  # a mean near zero moves by its absolute round-off
    assert _check_compatible(headers)["normalization"] == headers["idm"]["normalization"]
    stats["std"] *= 1.001  # other data
    with pytest.raises(BundleError, match="different data \\(normalization differs"):
        _check_compatible(headers)


def test_bad_combinations_are_refused(
    trained_idm: Path, trained_disc: Path, learning_store: Path, tmp_path: Path
) -> None:
    with pytest.raises(BundleError, match="give --idm too"):
        make_bundle(tmp_path / "b", data=learning_store, disc=trained_disc)
    with pytest.raises(BundleError, match="not both"):
        make_bundle(tmp_path / "b", data=learning_store, idm=trained_idm, vdm=trained_idm)
    with pytest.raises(BundleError, match="holds a disc model, not a idm"):
        make_bundle(tmp_path / "b", data=learning_store, idm=trained_disc)
    with pytest.raises(BundleError, match="does not exist"):
        make_bundle(tmp_path / "b", data=learning_store, idm=tmp_path / "none")
    unguided = make_bundle(tmp_path / "u", data=learning_store, idm=trained_idm)
    assert load_bundle(unguided).kind == "unguided" and load_bundle(unguided).sampler.guidance == 0.0


def test_info_describes_every_kind_of_output(
    cli, guided: Path, trained_idm: Path, learning_store: Path, tmp_path: Path
) -> None:
    for path, key in (
        (guided, "bundle_sha256"),
        (trained_idm, "run"),
        (trained_idm / "model.safetensors", "weights_sha256"),
        (learning_store, "frames"),
    ):
        result = cli("info", path, "--json")
        assert result.exit_code == 0, result.stderr
        assert key in json.loads(result.stdout)
    table = cli("info", guided)
    assert table.exit_code == 0 and "guided" in table.stdout
    foreign = cli("info", tmp_path)
    assert foreign.exit_code != 0 and "not a climdiff" in foreign.stderr and "Traceback" not in foreign.stderr


def test_cli_bundle(cli, trained_idm: Path, trained_disc: Path, learning_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.bundle"
    args = (
        "bundle",
        "--idm",
        trained_idm,
        "--disc",
        trained_disc,
        "--data",
        learning_store,
        "--out",
        out,
        "--steps",
        "5",
    )
    assert cli(*args).exit_code == 0
    assert load_bundle(out).sampler.steps == 5
    again = cli(*args)
    assert again.exit_code != 0 and "already complete" in again.stderr


def test_bundle_from_another_changes_only_the_sampler(cli, tmp_path: Path) -> None:
    """`climdiff bundle --from` keeps the source's networks and initial state and records where the
    new settings came from; a run of the copy is the run of the source with those settings."""
    from climdiff.assets import embedded_bundle

    source = load_bundle(embedded_bundle("turbulence32-vdm"))
    out = tmp_path / "fast.bundle"
    made = cli("bundle", "--from", "turbulence32-vdm", "--solver", "dpmpp_2m", "--steps", "12", "--out", out)
    assert made.exit_code == 0, made.stderr
    copy = load_bundle(out)
    assert copy.meta["files"] == source.meta["files"]  # the same networks and initial state, by sha256
    assert copy.sampler == source.sampler.replace(solver="dpmpp_2m", steps=12)
    assert copy.meta["tuning"] == {
        "derived_from": "turbulence32-vdm",
        "source_sha256": source.meta["bundle_sha256"],
        "changed": {"steps": 12, "solver": "dpmpp_2m"},
    }
    assert load_bundle(embedded_bundle("turbulence32-vdm")).meta == source.meta  # the source is untouched
    runs = {
        "copy": ("--checkpoint", out),
        "source": ("--model", "turbulence32-vdm", "--solver", "dpmpp_2m", "--steps", "12"),
    }
    for label, args in runs.items():
        assert cli("emulate", *args, "--days", "3", "--out", tmp_path / f"{label}.zarr", "--quiet").exit_code == 0
    days = {label: xr.open_zarr(tmp_path / f"{label}.zarr")["vorticity"].values for label in runs}
    assert (days["copy"] == days["source"]).all()
    # a window can be cleared again: 'all' guides at every noise level
    windowed = load_bundle(embedded_bundle("turbulence32"))
    assert windowed.sampler.guidance_sigma_max is not None
    wide = cli("bundle", "--from", "turbulence32", "--guidance-sigma-max", "all", "--out", tmp_path / "wide.bundle")
    assert wide.exit_code == 0, wide.stderr
    widened = load_bundle(tmp_path / "wide.bundle")
    assert widened.sampler == dataclasses.replace(windowed.sampler, guidance_sigma_max=None)
    assert widened.meta["tuning"]["changed"] == {"guidance_sigma_max": None}
    # a window wholly above the bundle's (sigma <= 5): both ends apply together
    above = cli(
        "bundle", "--from", "turbulence32", "--guidance-sigma-min", "6", "--guidance-sigma-max", "all",
        "--out", tmp_path / "above.bundle",
    )  # fmt: skip
    assert above.exit_code == 0, above.stderr
    lifted = load_bundle(tmp_path / "above.bundle")
    assert (lifted.sampler.guidance_sigma_min, lifted.sampler.guidance_sigma_max) == (6.0, None)
    assert lifted.meta["tuning"]["changed"] == {"guidance_sigma_min": 6.0, "guidance_sigma_max": None}
    for bad in ("-1", "1,2", "wide"):
        refused = cli("bundle", "--from", "turbulence32", "--guidance-sigma-max", bad, "--out", tmp_path / "x.bundle")
        assert refused.exit_code != 0 and "--guidance-sigma-max" in refused.stderr, refused.stderr
    mixed = cli("bundle", "--from", out, "--data", tmp_path, "--out", tmp_path / "x.bundle")
    assert mixed.exit_code != 0 and "--from keeps its bundle's models" in mixed.stderr
    bare = cli("bundle", "--out", tmp_path / "y.bundle")
    assert bare.exit_code != 0 and "give --data" in bare.stderr
    assert not (tmp_path / "x.bundle").exists() and not (tmp_path / "y.bundle").exists()

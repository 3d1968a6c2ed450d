"""Training on a lat-lon store: padding from the grid, area-weighted loss, resume, day-of-year
conditioning (batches, checkpoints, bundles), year fractions in several calendars."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cftime
import numpy as np
import pytest
import torch

from climdiff.bundle import describe_bundle, load_bundle, make_bundle
from climdiff.checkpoint import load_checkpoint
from climdiff.data.latlon import LatLonGrid
from climdiff.data.seasons import year_fraction
from climdiff.data.splits import split_counts
from climdiff.data.statistics import field_statistics
from climdiff.data.store import TRAINING_KIND, AppendableStore, TimeVariable, open_training_store
from climdiff.errors import ClimdiffError
from climdiff.models import EDMLoss, build_model, config_for, edm_loss_weight
from climdiff.train.config import TrainConfig, resolve_config
from climdiff.train.loop import train_model
from climdiff.train.tasks import DiffusionTask, cell_weights, make_task, sample_generator
from climdiff.zarr_io import store_meta
from tests.test_models import randomized
from tests.test_train import Stop, _weights

GRID = LatLonGrid(16, 32)
YEAR = 365  # noleap
DAYS = 2 * YEAR
TIME_UNITS = "days since 2001-01-01 00:00:00"


def _seasonal_precipitation(seed: int = 3) -> np.ndarray:
    """Daily (DAYS, 16, 32) non-negative fields: a rain band that migrates 20 degrees north and
    south with the season, eastward-moving waves along it, and intermittent multiplicative noise."""
    rng = np.random.default_rng(seed)
    day = np.arange(DAYS)[:, None, None]
    lat, lon = GRID.lat[None, :, None], np.deg2rad(GRID.lon)[None, None, :]
    centre = 20.0 * np.sin(2 * np.pi * day / YEAR)
    band = 8.0 * np.exp(-(((lat - centre) / 12.0) ** 2)) * (1.0 + 0.5 * np.cos(3 * lon - 0.4 * day))
    noise = rng.gamma(0.8, 1.25, size=(DAYS, GRID.n_lat, GRID.n_lon))
    return np.where(noise > 0.3, band * noise, 0.0).astype(np.float32)


@pytest.fixture(scope="session")
def latlon_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two noleap years of 16x32 daily precipitation, written as the lat-lon training stores are."""
    out = tmp_path_factory.mktemp("data") / "precip.zarr"
    store = AppendableStore.create(
        out,
        kind=TRAINING_KIND,
        config={"source": "synthetic seasonal test field", "days": DAYS},
        attrs={"title": "synthetic precipitation", "Conventions": "CF-1.10"},
        coords=GRID.coordinates(),
        variables=[
            TimeVariable(
                "time", dtype="int64", attrs={"standard_name": "time", "units": TIME_UNITS, "calendar": "noleap"}
            ),
            TimeVariable(
                "precipitation",
                dims=("lat", "lon"),
                shape=GRID.shape,
                attrs={"standard_name": "lwe_precipitation_rate", "units": "mm day-1", "cell_methods": "time: mean"},
            ),
        ],
        time_chunk=73,
        meta={
            "variable": "precipitation",
            "units": "mm day-1",
            "calendar": "noleap",
            "grid": GRID.meta(),
            "transform": {"name": "log_minmax", "offset": 0.1, "offset_units": "mm day-1"},
        },
    )
    store.append({"time": np.arange(DAYS, dtype=np.int64), "precipitation": _seasonal_precipitation()})
    counts = split_counts(DAYS, (0.8, 0.1, 0.1))
    stats = field_statistics(out, "precipitation", stop=counts["train"][1])
    store.update_meta(complete=True, split=counts, stats={"precipitation": stats})
    return out


def tiny(kind: str, **overrides) -> TrainConfig:
    settings = {"preset": "tiny", "steps": 4, "batch_size": 4, "checkpoint_every": 2, "val_every": 4, "val_batches": 1}
    return resolve_config(kind, {}, {**settings, "log_every": 2, **overrides})


@pytest.fixture(scope="module")
def doy_runs(latlon_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A day-of-year-conditioned IDM and discriminator, trained a few steps on the lat-lon store."""
    root = tmp_path_factory.mktemp("runs")
    return {
        kind: train_model(tiny(kind, day_of_year=True), latlon_store, root / kind, device="cpu", quiet=True)
        for kind in ("idm", "disc")
    }


# ----------------------------------------------------------------------------- calendars


def test_year_fraction_follows_each_calendar() -> None:
    def at(calendar: str, *ymd: int) -> float:
        return float(year_fraction([cftime.datetime(*ymd, calendar=calendar)])[0])

    assert at("noleap", 2001, 1, 1) == 0.0
    assert at("noleap", 2001, 12, 31) == pytest.approx(364 / 365)
    assert at("360_day", 2001, 12, 30) == pytest.approx(359 / 360)
    assert at("standard", 2000, 12, 31) == pytest.approx(365 / 366)  # a leap year
    assert at("standard", 2001, 12, 31) == pytest.approx(364 / 365)
    assert at("noleap", 2001, 7, 2) == pytest.approx(182 / 365)


# ----------------------------------------------------------------------------- area weights


def test_cell_weights_are_cos_latitude_with_mean_one_and_only_on_latlon_grids() -> None:
    weights = cell_weights(GRID.meta())
    assert weights.shape == (GRID.n_lat, 1)
    assert float(weights.mean()) == pytest.approx(1.0, abs=1e-6)
    cos_lat = np.cos(np.deg2rad(GRID.lat))
    np.testing.assert_allclose(weights[:, 0].numpy(), cos_lat / cos_lat.mean(), rtol=1e-6)
    assert cell_weights({"kind": "periodic", "shape": [32, 32]}) is None


def test_weighted_edm_loss_counts_an_error_by_the_area_of_its_cell() -> None:
    """A denoiser wrong by 1 in one cell only: the loss is w(sigma) a_cell / cells, so the same
    error costs far less at the pole row than at the equator."""
    y = torch.zeros(1, 1, GRID.n_lat, GRID.n_lon, dtype=torch.float64)
    sigma = torch.full((1, 1, 1, 1), 0.5, dtype=torch.float64)
    weights = cell_weights(GRID.meta()).double()
    loss_fn = EDMLoss(1.0, cell_weights=weights)

    def wrong_at(row: int) -> float:
        def net(x, s, cond=None, doy=None):
            out = torch.zeros_like(x)
            out[..., row, 3] = 1.0
            return out

        return float(loss_fn.at(net, y, sigma, torch.zeros_like(y)))

    w = float(edm_loss_weight(sigma, 1.0))
    cells = GRID.n_lat * GRID.n_lon
    for row in (0, GRID.n_lat // 2, GRID.n_lat - 1):
        assert wrong_at(row) == pytest.approx(w * float(weights[row, 0]) / cells, rel=1e-12)
    assert wrong_at(0) < 0.1 * wrong_at(GRID.n_lat // 2)


def test_idm_task_applies_the_area_weights_unless_switched_off(latlon_store: Path) -> None:
    torch.manual_seed(0)
    model = build_model("idm", config_for("idm", "tiny", padding="latlon"))
    randomized(model, scale=0.1)
    weighted = DiffusionTask(tiny("idm"), latlon_store)
    plain = DiffusionTask(tiny("idm", area_weighted=False), latlon_store)
    assert weighted.cell_weights is not None and plain.cell_weights is None
    batch = weighted.batch("train", [0, 100, 200, 300])
    generators = lambda: [sample_generator(0, 0, i) for i in range(4)]  # noqa: E731
    got = weighted.losses(model, batch, generators())
    sigma, noise = weighted.draw(batch.target, generators())
    error = (model(batch.target + sigma * noise, sigma) - batch.target) ** 2
    expected = (edm_loss_weight(sigma, 1.0) * error * cell_weights(GRID.meta())).flatten(1).mean(1)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, plain.losses(model, batch, generators()))


def test_periodic_store_has_no_area_weights(turbulence_store: Path) -> None:
    assert DiffusionTask(tiny("idm"), turbulence_store).cell_weights is None


# ----------------------------------------------------------------------------- training


def test_idm_trains_on_the_latlon_store_with_latlon_padding_and_resumes_exactly(
    latlon_store: Path, tmp_path: Path
) -> None:
    config = tiny("idm")
    reference = train_model(config, latlon_store, tmp_path / "ref", device="cpu", quiet=True)
    model, header = load_checkpoint(reference / "model.safetensors", expected_kind="idm")
    assert header["padding"] == "latlon" and header["grid"] == GRID.meta()
    assert header["provenance"]["train"]["area_weighted"] is True and header["calendar"] == "noleap"
    assert header["model"]["backbone"]["day_of_year"] is False
    assert torch.isfinite(model(torch.randn(2, 1, *GRID.shape), 0.5)).all()

    out = tmp_path / "resumed"
    with pytest.raises(Stop):
        train_model(config, latlon_store, out, device="cpu", quiet=True, after_checkpoint=stop_after(2))
    train_model(config, latlon_store, out, device="cpu", quiet=True)
    a, b = _weights(reference), _weights(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def stop_after(checkpoint_step: int) -> Callable[[int], None]:
    """An ``after_checkpoint`` hook that interrupts the run at the given step."""

    def hook(step: int) -> None:
        if step == checkpoint_step:
            raise Stop

    return hook


def test_batches_carry_the_year_fraction_of_each_models_target_day(latlon_store: Path) -> None:
    start = store_meta(open_training_store(latlon_store).attrs)["split"]["validation"][0]
    for kind, target in (("idm", lambda i: i), ("vdm", lambda i: i + 2), ("disc", lambda i: i // 2 + 2)):
        task = make_task(tiny(kind, day_of_year=True), latlon_store)
        indices = [0, 1, 5, 40]
        doy = task.batch("validation", indices).doy
        expected = [((start + target(i)) % YEAR) / YEAR for i in indices]
        np.testing.assert_allclose(doy.numpy(), expected, rtol=1e-6)
        assert make_task(tiny(kind), latlon_store).batch("validation", indices).doy is None


def test_day_of_year_conditioning_is_recorded_and_changes_outputs(doy_runs: dict[str, Path]) -> None:
    idm, idm_header = load_checkpoint(doy_runs["idm"] / "model.safetensors", expected_kind="idm")
    disc, disc_header = load_checkpoint(doy_runs["disc"] / "model.safetensors", expected_kind="disc")
    assert idm_header["model"]["backbone"]["day_of_year"] is True and disc_header["model"]["day_of_year"] is True
    assert idm_header["provenance"]["train"]["day_of_year"] is True
    x, cond = torch.randn(1, 1, *GRID.shape), torch.randn(1, 2, *GRID.shape)
    january, july = torch.tensor([0.0]), torch.tensor([0.5])
    with torch.no_grad():
        assert not torch.allclose(idm(x, 0.5, None, january), idm(x, 0.5, None, july))
        assert not torch.allclose(disc(x, 0.5, cond, january), disc(x, 0.5, cond, july))
    with pytest.raises(ValueError, match="pass doy"):
        idm(x, 0.5)


def test_bundle_records_which_models_take_the_date(
    doy_runs: dict[str, Path], latlon_store: Path, tmp_path: Path
) -> None:
    out = make_bundle(tmp_path / "doy.bundle", data=latlon_store, idm=doy_runs["idm"], disc=doy_runs["disc"])
    assert load_bundle(out).meta["day_of_year"] == {"idm": True, "disc": True}
    assert describe_bundle(out)["day_of_year"] == {"idm": True, "disc": True}
    meta = json.loads((out / "bundle.json").read_text())
    meta["day_of_year"] = {"idm": False, "disc": True}  # the setting is covered by the bundle's hash
    (out / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(ClimdiffError, match="modified"):
        load_bundle(out)


def test_latlon_refusals_are_one_clear_line(cli, latlon_store: Path, tmp_path: Path) -> None:
    crop = cli("train", "disc", "--data", latlon_store, "--out", tmp_path / "c", "--preset", "tiny", "--crop", "8")
    assert crop.exit_code != 0 and "without --crop" in crop.stderr and "Traceback" not in crop.stderr
    large = cli("train", "disc", "--data", latlon_store, "--out", tmp_path / "l", "--large-scale-negatives", "0.5")
    assert (
        large.exit_code != 0 and "without --large-scale-negatives" in large.stderr and "Traceback" not in large.stderr
    )
    deep = tmp_path / "deep.toml"
    deep.write_text("[model]\nchannel_mult = [1, 1, 1, 1, 1, 1]\nattention_levels = []\n")
    shape = cli("train", "idm", "--data", latlon_store, "--out", tmp_path / "d", "--preset", "tiny", "--config", deep)
    assert shape.exit_code != 0 and "not divisible" in shape.stderr and "Traceback" not in shape.stderr


def test_cli_flags_set_area_weights_and_day_of_year(cli, latlon_store: Path, tmp_path: Path) -> None:
    flags = ["--preset", "tiny", "--steps", "2", "--batch-size", "4", "--val-every", "2", "--quiet"]
    out = tmp_path / "v"
    result = cli("train", "vdm", "--data", latlon_store, "--out", out, *flags, "--day-of-year", "--no-area-weighted")
    assert result.exit_code == 0, result.stderr
    _, header = load_checkpoint(tmp_path / "v" / "model.safetensors", expected_kind="vdm")
    assert header["model"]["backbone"]["day_of_year"] is True
    assert header["provenance"]["train"]["area_weighted"] is False

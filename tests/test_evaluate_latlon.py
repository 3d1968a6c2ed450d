"""`climdiff evaluate` end to end on lat-lon stores: a daily precipitation reference (training-data
store, dims time, lat, lon) and an emulation store (member, time, lat, lon), written on disk in
the layouts the climate path writes, with latitudes north to south and south to north."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from climdiff.data.store import TRAINING_KIND, AppendableStore, Coordinate, TimeVariable
from climdiff.evaluate.families import FAMILIES, FORECAST_FAMILIES
from climdiff.evaluate.runner import evaluate
from climdiff.rollout.calendar import parse_date, time_units
from climdiff.rollout.writer import EmulationStore, MemberState, StoreLayout
from tests.test_evaluate_cli import FAST, PNG, entries

DAYS, NLAT, NLON = 3 * 365, 9, 16  # three complete noleap years: the drift is estimated
LAT_N_TO_S = np.linspace(80.0, -80.0, NLAT)  # the equator is a row: the Hovmoller band holds it
LON = np.arange(NLON) * 360.0 / NLON
PEAK_DAY = 200  # day of year of the wettest season
UNITS = "mm day-1"
CALENDAR = "noleap"
TIME_UNITS = time_units(parse_date("2001-01-01", CALENDAR))
SETTINGS = replace(FAST, block_days=30)  # 36 blocks: few jackknife passes


def precipitation(seed: int, members: int, wetter: float = 1.0) -> np.ndarray:
    """(members, days, lat, lon), lat north to south: rain where a latent AR(1) field (persistence
    0.7 a day) exceeds a level that falls in the wet season, with gamma amounts that peak then,
    and more rain in the tropics. Non-negative, with dry cell-days."""
    rng = np.random.default_rng(seed)
    season = np.cos(2 * np.pi * (np.arange(DAYS) % 365 + 1 - PEAK_DAY) / 365)[:, None, None]
    tropics = np.cos(np.deg2rad(LAT_N_TO_S))[None, :, None]
    latent = np.empty((members, DAYS, NLAT, NLON))
    latent[:, 0] = rng.standard_normal((members, NLAT, NLON))
    for t in range(1, DAYS):
        latent[:, t] = 0.7 * latent[:, t - 1] + np.sqrt(1 - 0.49) * rng.standard_normal((members, NLAT, NLON))
    wet = latent > 0.3 - 0.4 * season - 0.5 * tropics
    amount = rng.gamma(0.8, wetter * (4.0 + 2.0 * season + 4.0 * tropics), size=latent.shape)
    return np.where(wet, 1.0 + amount, 0.0).astype(np.float32)


def grid(lat: np.ndarray) -> dict[str, np.ndarray]:
    return {"lat": lat, "lon": LON}


GRID_ATTRS = {"lat": {"units": "degrees_north", "axis": "Y"}, "lon": {"units": "degrees_east", "axis": "X"}}
FIELD_ATTRS = {"units": UNITS, "standard_name": "lwe_precipitation_rate", "long_name": "daily precipitation"}


def reference_store(path: Path, values: np.ndarray, lat: np.ndarray) -> Path:
    """A complete training-data store (time, lat, lon) with a split, as `climdiff data` writes."""
    coords = [Coordinate(name, v, GRID_ATTRS[name]) for name, v in grid(lat).items()]
    time_attrs = {"standard_name": "time", "units": TIME_UNITS, "calendar": CALENDAR, "axis": "T"}
    variables = [
        TimeVariable("time", dtype="int64", attrs=time_attrs),
        TimeVariable("precipitation", dims=("lat", "lon"), shape=(NLAT, NLON), attrs=FIELD_ATTRS),
    ]
    store = AppendableStore.create(
        path,
        kind=TRAINING_KIND,
        config={"synthetic": True},
        attrs={"Conventions": "CF-1.10"},
        coords=coords,
        variables=variables,
        time_chunk=365,
        meta={"variable": "precipitation", "units": UNITS, "calendar": CALENDAR},
    )
    store.append({"time": np.arange(DAYS, dtype=np.int64), "precipitation": values})
    store.update_meta(complete=True, split={"train": [0, 730], "validation": [730, 900], "test": [900, DAYS]})
    return path


def emulation_store(path: Path, values: np.ndarray, lat: np.ndarray) -> Path:
    """A complete emulation store (member, time, lat, lon) written by climdiff's own writer."""
    layout = StoreLayout(
        variable="precipitation",
        variable_attrs=FIELD_ATTRS,
        calendar=CALENDAR,
        coords=grid(lat),
        coord_attrs=GRID_ATTRS,
        frame_shape=(1, NLAT, NLON),
    )
    store = EmulationStore.create(
        path,
        layout,
        config={"synthetic": True},
        members=len(values),
        days=values.shape[1],
        time_units=TIME_UNITS,
        time_chunk=365,
        attrs={"Conventions": "CF-1.10"},
    )
    for member, series in enumerate(values):
        state = MemberState(torch.zeros(2, 1, NLAT, NLON), torch.Generator(), days_done=values.shape[1])
        store.write_block(member, 0, series, state)
    store.finish()
    return path


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same data evaluated with latitudes north to south and south to north."""
    reference, run = precipitation(1, members=1)[0], precipitation(2, members=2, wetter=1.5)
    out = {}
    for order, flip in (("north_first", False), ("south_first", True)):
        root = tmp_path_factory.mktemp(order)
        lat = LAT_N_TO_S[::-1] if flip else LAT_N_TO_S
        ref_values, run_values = (reference[:, ::-1], run[:, :, ::-1]) if flip else (reference, run)
        ref = reference_store(root / "reference.zarr", np.ascontiguousarray(ref_values), lat)
        emu = emulation_store(root / "wetter.zarr", np.ascontiguousarray(run_values), lat)
        out[order] = evaluate([emu], ref, root / "ev", settings=SETTINGS, quiet=True)
    return out


def test_every_family_runs_on_lat_lon_stores_with_figures(evaluations: dict[str, Path]) -> None:
    for out in evaluations.values():
        document = json.loads((out / "results.json").read_text())
        expected = [f for f in FAMILIES if f not in FORECAST_FAMILIES]  # wet_days: the field is precipitation
        assert document["families"] == expected
        for family in expected:
            assert (out / f"{family}.png").read_bytes()[:8] == PNG
            assert entries(out, family=family), family
        assert all(e["value"] is not None for e in document["metrics"])
        assert {e["interval"] for e in document["metrics"] if e["low"] is not None} <= {"BCa", "basic"}


def test_latitude_order_changes_no_number(evaluations: dict[str, Path]) -> None:
    north, south = (json.loads((evaluations[k] / "results.json").read_text())["metrics"] for k in evaluations)
    names = [[(e["family"], e["metric"], e["source"]) for e in metrics] for metrics in (north, south)]
    assert names[0] == names[1]
    for a, b in zip(north, south, strict=True):
        for key in ("value", "low", "high"):
            expected = None if b[key] is None else pytest.approx(b[key], rel=1e-5, abs=1e-9)
            assert a[key] == expected, (a["metric"], a["source"], key)
    maps = [json.loads((evaluations[k] / "families" / "wet_days.json").read_text())["plot"] for k in evaluations]
    np.testing.assert_allclose(maps[0]["intensity_maps"]["wetter"], maps[1]["intensity_maps"]["wetter"], rtol=1e-5)


def test_wet_days_seasons_and_drift_match_the_synthetic_truth(evaluations: dict[str, Path]) -> None:
    out = evaluations["north_first"]
    kept = DAYS // SETTINGS.block_days * SETTINGS.block_days  # a tail shorter than a block is dropped
    reference = precipitation(1, members=1)[0, :kept].astype(np.float64)
    w = np.broadcast_to(np.cos(np.deg2rad(LAT_N_TO_S))[None, :, None], reference.shape)
    wet = reference >= SETTINGS.wet_threshold
    frequency = entries(out, metric="wet_day_frequency", source="reference")[0]
    intensity = entries(out, metric="wet_day_intensity", source="reference")[0]
    assert frequency["value"] == pytest.approx(np.average(wet, weights=w), rel=1e-6)
    assert intensity["value"] == pytest.approx(np.sum(w * reference * wet) / np.sum(w * wet), rel=1e-6)
    assert frequency["low"] < frequency["value"] < frequency["high"] and intensity["units"] == UNITS
    wetter = entries(out, metric="wet_day_intensity", source="wetter")[0]
    assert wetter["low"] > intensity["high"]  # the run's amounts are 1.5 times larger
    for source in ("reference", "wetter"):
        phase = entries(out, metric="seasonal_phase", source=source)[0]["value"]
        assert abs(phase - PEAK_DAY) < 15
        drift = entries(out, metric="drift_per_century", source=source)[0]
        # three years: some resamples repeat one year, whose slope is undefined, so no interval
        assert drift["value"] is not None and drift["units"] == UNITS
    bias = entries(out, metric="mean_absolute_bias", source="wetter")[0]
    assert bias["value"] > 0 and bias["low"] > 0


def test_a_run_shorter_than_a_year_gets_its_autocorrelation_from_the_reference_climatology(tmp_path: Path) -> None:
    """200 days: the run's own day-of-year mean would be the run itself; the reference's fitted
    climatology leaves the latent field's persistence to be measured, as in the reference."""
    ref = reference_store(tmp_path / "reference.zarr", precipitation(1, members=1)[0], LAT_N_TO_S)
    run = emulation_store(tmp_path / "short.zarr", precipitation(3, members=1)[:, :200], LAT_N_TO_S)
    out = evaluate([run], ref, tmp_path / "ev", metrics=["temporal", "stability"], settings=SETTINGS, quiet=True)
    lag1 = {e["source"]: e for e in entries(out, metric="autocorrelation_lag1")}
    assert lag1["short"]["low"] < lag1["reference"]["value"] < lag1["short"]["high"]
    assert lag1["reference"]["value"] > 0.1  # rain amounts are independent from day to day: the occurrence persists
    assert len(entries(out, family="temporal", source="short")) == 11  # lags 1-10 and the Hovmoller distance
    phase = entries(out, metric="seasonal_phase", source="short")[0]
    assert phase["value"] is not None and phase["low"] is None  # no complete year: no interval


def test_the_targets_table_reads_the_evaluation(evaluations: dict[str, Path]) -> None:
    """benchmarks/latlon_targets.py: a row per target, the run's wet-day frequency met (its wet
    days are those of the reference's process) and its std missed (its amounts are 1.5 x)."""
    script = [sys.executable, str(Path(__file__).parents[1] / "benchmarks" / "latlon_targets.py")]
    out = subprocess.run(
        [*script, str(evaluations["north_first"]), "--guided", "wetter"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    rows = {line.split(" | ")[0].strip("| "): line for line in out.stdout.splitlines()}
    assert rows["target"] == "| target | tolerance | reference | wetter |"
    assert len([name for name in rows if name.startswith("autocorrelation lag")]) == 10
    assert rows["wet-day frequency"].endswith(": met |")
    assert ": missed by " in rows["(std over cells and days)"]
    assert "(whole run)" in rows["seasonal phase, last decade"]  # three years: no decades
    wrong = subprocess.run(
        [*script, str(evaluations["north_first"]), "--guided", "nope"], capture_output=True, text=True
    )
    assert wrong.returncode != 0 and "no run labelled nope" in wrong.stderr

"""`climdiff evaluate` end to end on real stores made by `climdiff data` and `climdiff emulate`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from climdiff.bundle import load_bundle
from climdiff.data.navier_stokes import TurbulenceConfig
from climdiff.data.turbulence import TurbulenceRun, generate_turbulence
from climdiff.errors import ClimdiffError, StoreError
from climdiff.evaluate.families import FAMILIES, PRECIPITATION_FAMILIES, Settings
from climdiff.evaluate.runner import evaluate
from climdiff.rollout.engine import EmulateConfig, emulate
from climdiff.rollout.forecast import forecast, plan_forecast

FAST = Settings(block_days=8, n_resamples=30, eof_samples=120, eof_resamples=10, hovmoller_days=40)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def stores(guided_bundle, learning_store, tmp_path_factory):
    """A guided and an unguided emulation (2 members, 45 days) and a forecast set (4 starts)."""
    bundle = load_bundle(guided_bundle)
    root = tmp_path_factory.mktemp("evaluate")
    made = {}
    for name, lam in (("guided", bundle.sampler.guidance), ("unguided", 0.0)):
        config = EmulateConfig(days=45, members=2, seed=1, time_chunk=45, sampler=bundle.sampler.replace(guidance=lam))
        made[name] = emulate(bundle, root / f"{name}.zarr", config, quiet=True).path
    plan = plan_forecast(
        bundle, learning_store, EmulateConfig(days=3, members=3, sampler=bundle.sampler), starts=4, start_dates=None
    )
    made["forecast"] = forecast(bundle, learning_store, root / "forecast.zarr", plan, quiet=True).path
    return made


@pytest.fixture(scope="module")
def evaluation(stores, learning_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("ev") / "ev"
    runs = [stores["guided"], stores["unguided"], stores["forecast"]]
    evaluate(runs, learning_store, out, settings=FAST, quiet=True)
    return out


def entries(out, **match):
    document = json.loads((out / "results.json").read_text())
    return [e for e in document["metrics"] if all(e.get(k) == v for k, v in match.items())]


def test_results_plots_and_report_cover_every_family_and_run(evaluation) -> None:
    document = json.loads((evaluation / "results.json").read_text())
    applicable = [f for f in FAMILIES if f not in PRECIPITATION_FAMILIES]  # vorticity is no precipitation
    assert document["schema_version"] == 1 and document["families"] == applicable
    assert [r["label"] for r in document["runs"]] == ["guided", "unguided", "forecast"]
    assert document["reference"]["kind"] == "training-data" and document["reference"]["days"] == 160
    for family in applicable:
        assert (evaluation / f"{family}.png").read_bytes()[:8] == PNG
        assert entries(evaluation, family=family) or family == "stability", family
    # 160 and 45 days hold no complete year: the drift is not estimated, and the notes say why
    assert any("complete year" in note for note in document["notes"]["stability"])
    for entry in document["metrics"]:
        assert math.isfinite(entry["value"]), entry
        if entry["low"] is not None:
            assert entry["low"] <= entry["high"]
    # emulation families describe the emulations and the reference; calibration the forecasts
    assert {e["source"] for e in entries(evaluation, family="temporal")} == {"reference", "guided", "unguided"}
    assert {e["source"] for e in entries(evaluation, family="calibration")} == {"forecast"}
    assert sorted({e["lead"] for e in entries(evaluation, family="calibration")}) == [1, 2, 3]
    report = (evaluation / "report.md").read_text()
    assert "| family | metric | ideal | reference | guided | unguided | forecast |" in report
    assert "![calibration](calibration.png)" in report


def test_unguided_days_are_independent_and_the_reference_is_not(evaluation) -> None:
    """What the paper's comparison shows: without guidance consecutive days are unrelated."""
    lag1 = {e["source"]: e for e in entries(evaluation, metric="autocorrelation_lag1")}
    assert lag1["reference"]["value"] > 0.8
    assert abs(lag1["unguided"]["value"]) < 0.3
    assert lag1["reference"]["low"] > lag1["unguided"]["high"]


def test_headline_numbers_match_direct_computations(evaluation, stores, learning_store) -> None:
    import xarray as xr

    ref = xr.open_zarr(learning_store)["vorticity"].values.astype(np.float64)
    run = xr.open_zarr(stores["guided"])["vorticity"].values.astype(np.float64)
    std = {e["source"]: e["value"] for e in entries(evaluation, metric="std")}
    # block means drop a tail shorter than a block: 160 -> 160 days, 45 -> 40 days
    assert std["reference"] == pytest.approx(ref.std(), rel=1e-6)
    assert std["guided"] == pytest.approx(run[:, :40].std(), rel=1e-6)
    bias = entries(evaluation, metric="mean_absolute_bias", source="guided")[0]["value"]
    assert bias == pytest.approx(np.abs(run[:, :40].mean(axis=(0, 1)) - ref.mean(axis=0)).mean(), rel=1e-6)
    exceed = entries(evaluation, metric="exceedance_frequency_p95", source="reference")[0]["value"]
    assert exceed == pytest.approx(0.05, abs=0.01)


def test_a_run_compared_with_itself_has_no_error(stores, tmp_path) -> None:
    out = evaluate(
        [stores["guided"]],
        stores["guided"],
        tmp_path / "self",
        labels=["same"],
        metrics=["bias", "spectra", "temporal"],
        settings=FAST,
        quiet=True,
    )
    assert entries(out, metric="mean_absolute_bias")[0]["value"] == pytest.approx(0.0, abs=1e-6)
    assert entries(out, metric="spectral_log_error")[0]["value"] == pytest.approx(0.0, abs=1e-9)
    for lag in (1, 5, 10):
        pair = {e["source"]: e["value"] for e in entries(out, metric=f"autocorrelation_lag{lag}")}
        assert pair["same"] == pytest.approx(pair["reference"], abs=1e-9)


def test_interrupted_evaluation_recomputes_only_missing_families(evaluation, stores, learning_store, tmp_path) -> None:
    out = tmp_path / "ev"
    runs = [stores["guided"], stores["unguided"], stores["forecast"]]
    evaluate(runs, learning_store, out, settings=FAST, quiet=True)
    first = json.loads((out / "results.json").read_text())["metrics"]
    # as after a kill during the eofs family: its file missing, the evaluation incomplete
    (out / "families" / "eofs.json").unlink()
    header = json.loads((out / "evaluation.json").read_text())
    (out / "evaluation.json").write_text(json.dumps({**header, "complete": False}))
    kept = (out / "families" / "bias.json").stat().st_mtime_ns
    evaluate(runs, learning_store, out, settings=FAST, quiet=True)
    assert (out / "families" / "bias.json").stat().st_mtime_ns == kept
    assert json.loads((out / "results.json").read_text())["metrics"] == first
    with pytest.raises(StoreError, match="complete"):
        evaluate(runs, learning_store, out, settings=FAST, quiet=True)


def test_dask_distributed_scheduler_gives_the_same_numbers(evaluation, stores, learning_store, tmp_path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        out = evaluate(
            [stores["guided"], stores["unguided"], stores["forecast"]],
            learning_store,
            tmp_path / "ev",
            metrics=["bias", "temporal"],
            settings=FAST,
            scheduler=cluster.scheduler_address,
            quiet=True,
        )
    for family in ("bias", "temporal"):
        assert entries(out, family=family) == entries(evaluation, family=family)


def test_bad_input_is_refused_clearly(stores, learning_store, tmp_path) -> None:
    other_grid = generate_turbulence(
        tmp_path / "g16.zarr",
        TurbulenceRun(
            solver=TurbulenceConfig(size=16, dt=0.01, kf=3.0, dkf=1.0),
            frames=12,
            every=1,
            spinup=0.1,
            seed=1,
            split=(0.5, 0.25, 0.25),
            chunk=4,
        ),
        quiet=True,
    )
    with pytest.raises(StoreError, match="grid"):
        evaluate([stores["guided"]], other_grid, tmp_path / "a", settings=FAST, quiet=True)
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreError, match="not a climdiff store"):
        evaluate([tmp_path / "plain"], learning_store, tmp_path / "b", settings=FAST, quiet=True)
    with pytest.raises(StoreError, match="does not exist"):
        evaluate([tmp_path / "missing.zarr"], learning_store, tmp_path / "c", settings=FAST, quiet=True)
    with pytest.raises(ClimdiffError, match="forecast store"):
        evaluate([stores["guided"]], learning_store, tmp_path / "d", metrics=["calibration"], settings=FAST, quiet=True)
    with pytest.raises(ClimdiffError, match="unknown metric"):
        evaluate([stores["guided"]], learning_store, tmp_path / "e", metrics=["vibes"], settings=FAST, quiet=True)
    with pytest.raises(ClimdiffError, match="labels"):
        evaluate([stores["guided"]], learning_store, tmp_path / "f", labels=["a", "b"], settings=FAST, quiet=True)


def test_cli_evaluate(cli, stores, learning_store, tmp_path) -> None:
    out = tmp_path / "ev"
    ok = cli(
        "evaluate",
        str(stores["guided"]),
        "--reference",
        str(learning_store),
        "--out",
        str(out),
        "--metrics",
        "bias,spectra",
        "--resamples",
        "20",
        "--quiet",
    )
    assert ok.exit_code == 0, ok.stderr
    assert "results.json" in ok.stdout and (out / "spectra.png").exists() and not (out / "eofs.png").exists()
    bad = cli(
        "evaluate", str(stores["guided"]), "--reference", str(tmp_path / "nope.zarr"), "--out", str(tmp_path / "x")
    )
    assert bad.exit_code == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_a_run_without_finite_values_is_refused(guided_bundle, learning_store, tmp_path) -> None:
    """A complete store whose members all stopped at once holds only NaN."""
    from climdiff.rollout.engine import _create_store
    from climdiff.rollout.steppers import day_stepper

    bundle = load_bundle(guided_bundle)
    config = EmulateConfig(days=20, members=1, sampler=bundle.sampler)
    stepper = day_stepper(bundle, bundle.sampler, torch.device("cpu"))
    store = _create_store(bundle, tmp_path / "empty.zarr", config, config.identity(bundle), "", stepper, 1)
    store.group["stopped_day"][0] = 0  # as the engine records it: its all-NaN chunks are never written
    store.finish(stopped_members=1, total_redraws=0)
    with pytest.raises(StoreError, match="no finite values"):
        evaluate([tmp_path / "empty.zarr"], learning_store, tmp_path / "ev", settings=FAST, quiet=True)


def test_info_describes_emulation_forecast_and_evaluation_outputs(cli, stores, evaluation) -> None:
    described = {}
    for name, path in (("guided", stores["guided"]), ("forecast", stores["forecast"]), ("evaluation", evaluation)):
        result = cli("info", str(path), "--json")
        assert result.exit_code == 0 and "Traceback" not in result.stderr, result.stderr
        described[name] = json.loads(result.stdout)
    assert (
        described["guided"]["kind"] == "emulation"
        and described["guided"]["days_done"] == 45 == described["guided"]["days"]
    )
    assert (
        described["forecast"]["starts"] == described["forecast"]["starts_done"] == 4
        and described["forecast"]["leads"] == 3
    )
    assert described["evaluation"]["complete"] is True
    assert set(described["evaluation"]["families_done"]) == set(FAMILIES) - set(PRECIPITATION_FAMILIES)
    wrong = cli("data", "info", str(stores["forecast"]))
    assert wrong.exit_code == 2 and "`climdiff info` describes it" in wrong.stderr and "Traceback" not in wrong.stderr

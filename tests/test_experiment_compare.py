"""`climdiff experiment compare` at the tiny preset: end to end, resumed after an interruption,
refusing a changed protocol and bad input (issue 12, items 1 and 2)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import xarray as xr

from climdiff.bundle import read_bundle_header
from climdiff.experiment.protocol import resolve_protocol
from climdiff.experiment.stages import stage_names

TINY = ("--preset", "tiny", "--threads", "1")


def compare(cli, data: Path, out: Path, *extra: str):
    return cli("experiment", "compare", "--data", data, "--out", out, *TINY, *extra)


def comparable(results: dict) -> dict:
    """What must not depend on how the run was split into sessions (wall times may)."""
    costs = {
        k: {n: c[n] for n in ("parameters", "steps", "batch_size")}
        for k, c in results["training_cost"].items()
        if k != "comparison"
    }
    keys = ("protocol", "rollouts", "autocorrelation", "rank_histograms", "evaluations")
    return {**{k: results[k] for k in keys}, "costs": costs}


@dataclass
class Resumed:
    out: Path
    first: Any
    second: Any
    kept: dict[Path, int]


@pytest.fixture(scope="module")
def resumed(cli, learning_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Resumed:
    """The tiny protocol stopped for real after the forecasts, then continued by the same command."""
    out = tmp_path_factory.mktemp("experiment") / "split"
    first = compare(cli, learning_store, out, "--until", "forecast-vdm")
    assert first.exit_code == 0, first.stderr
    record = json.loads((out / "experiment.json").read_text())
    # and as if killed after the VDM bundle was complete but before the record said so
    del record["stages"]["bundle-vdm"]
    (out / "experiment.json").write_text(json.dumps(record))
    outputs = [*(out / "runs").glob("*/model.safetensors"), out / "bundles" / "vdm.bundle" / "bundle.json"]
    kept = {p: p.stat().st_mtime_ns for p in [*outputs, *(out / "forecasts").glob("*.zarr/zarr.json")]}
    second = compare(cli, learning_store, out)
    assert second.exit_code == 0, second.stderr
    return Resumed(out, first, second, kept)


def test_an_interrupted_experiment_continues_without_redoing_finished_stages(resumed: Resumed) -> None:
    assert "stopped after forecast-vdm" in resumed.first.stdout
    assert "stage 9/18 forecast-vdm: done in" in resumed.first.stderr and "rollout-guided" not in resumed.first.stderr
    for stage in ("train-idm", "train-disc", "train-vdm", "bundle-vdm", "forecast-vdm"):
        assert f"{stage}: done earlier, skipped" in resumed.second.stderr
    assert "rollout-guided: done in" in resumed.second.stderr and "report: done in" in resumed.second.stderr
    assert len(resumed.kept) == 7 and all(p.stat().st_mtime_ns == t for p, t in resumed.kept.items())
    assert f"wrote {resumed.out / 'report.md'}" in resumed.second.stdout


def test_the_tiny_protocol_runs_end_to_end(resumed: Resumed) -> None:
    out = resumed.out
    record = json.loads((out / "experiment.json").read_text())
    protocol = resolve_protocol("tiny", {})
    assert record["complete"] is True and list(record["stages"]) == stage_names(protocol)
    results = json.loads((out / "results.json").read_text())
    assert set(results["evaluations"]) == {"forecasts", "climate", "century"}
    # the autocorrelation at every lag 1-10, with its interval, for the reference and each method
    acf = results["autocorrelation"]
    assert list(acf) == ["reference", "guided", "unguided", "vdm"]
    assert all([r["lag"] for r in rows] == list(range(1, 11)) for rows in acf.values())
    assert all(r["low"] is not None and r["low"] <= r["high"] for rows in acf.values() for r in rows)
    metrics = [m for e in results["evaluations"].values() for m in e["metrics"]]
    families = {m["family"] for m in metrics}
    assert {"temporal", "calibration", "bias", "spectra"} <= families
    calibration = [m for m in metrics if m["family"] == "calibration"]
    assert {m["lead"] for m in calibration} == {1, 2} and {m["source"] for m in calibration} == {
        "guided",
        "unguided",
        "vdm",
    }
    assert all(m["low"] is not None and m["high"] is not None for m in calibration)
    assert set(results["rank_histograms"]) == {"guided", "unguided", "vdm"}
    # the stores are the protocol's: long runs of every method, century runs of guided and VDM
    assert set(results["rollouts"]) == {"guided", "unguided", "vdm", "guided-century", "vdm-century"}
    field = xr.open_zarr(out / "rollouts" / "vdm.zarr")["vorticity"]
    assert field.sizes["member"] == protocol.long_members and field.sizes["time"] == protocol.long_days
    forecasts = xr.open_zarr(out / "forecasts" / "guided.zarr")["vorticity"]
    assert (forecasts.sizes["init_time"], forecasts.sizes["lead"], forecasts.sizes["member"]) == (2, 2, 2)
    # item 2: training cost side by side, from the runs' own records
    cost = results["training_cost"]
    for kind in ("idm", "disc", "vdm"):
        assert cost[kind]["steps"] == protocol.train_steps[kind] and cost[kind]["wall_seconds"] > 0
        assert cost[kind]["parameters"] == json.loads((out / "runs" / kind / "run.json").read_text())["parameters"]
    assert cost["disc"]["parameters"] < cost["vdm"]["parameters"]
    assert cost["comparison"]["disc_over_vdm"]["parameters"] == pytest.approx(
        cost["disc"]["parameters"] / cost["vdm"]["parameters"]
    )
    report = (out / "report.md").read_text()
    for section in (
        "## Training cost",
        "autocorrelation at lags 1-10",
        "Hovmoller",
        "spread-skill",
        "Bias",
        "Spectra",
        "Long-run stability",
    ):
        assert section in report
    for figure in (
        "evaluation/climate/temporal.png",
        "evaluation/forecasts/calibration.png",
        "evaluation/century/stability.png",
    ):
        assert f"]({figure})" in report and (out / figure).exists()


@pytest.mark.slow
def test_the_resumed_report_equals_an_uninterrupted_runs(
    cli, learning_store: Path, resumed: Resumed, tmp_path: Path
) -> None:
    whole = compare(cli, learning_store, tmp_path / "whole", "--quiet")
    assert whole.exit_code == 0, whole.stderr
    uninterrupted = json.loads((tmp_path / "whole" / "results.json").read_text())
    assert comparable(json.loads((resumed.out / "results.json").read_text())) == comparable(uninterrupted)


def test_a_changed_protocol_or_a_finished_experiment_is_refused(cli, learning_store: Path, resumed: Resumed) -> None:
    out = resumed.out
    changed = compare(cli, learning_store, out, "--long-days", "14")
    assert changed.exit_code != 0 and changed.stderr.count("\n") == 1
    assert "another configuration" in changed.stderr and "long_days" in changed.stderr
    again = compare(cli, learning_store, out)
    assert again.exit_code != 0 and "already complete" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--preset", "huge"), "unknown experiment preset"),
        (("--until", "dinner"), "unknown stage 'dinner'"),
        (("--long-years", "2", "--long-days", "20"), "exactly one of --long-years and --long-days"),
        (("--members", "1"), "--members must be at least 2"),
        (("--churn", "-1"), "--churn >= 0"),
        (("--solver", "dpmpp_2m"), "needs S_churn = 0"),
        (("--solver", "euler"), "unknown sampler solver"),
        (("--metrics", "calibration"), "unknown long-run metric"),
        (("--block-days", "40"), "test split"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli, learning_store: Path, tmp_path: Path, extra, message) -> None:
    done = compare(cli, learning_store, tmp_path / "out", *extra)
    assert done.exit_code != 0 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "out").exists()


def test_given_runs_replace_training_and_must_be_finished_runs_of_their_kind(
    cli, learning_store: Path, resumed: Resumed, tmp_path: Path
) -> None:
    runs = resumed.out / "runs"
    protocol = resolve_protocol("tiny", {}, {"idm": runs / "idm", "disc": runs / "disc", "vdm": runs / "vdm"})
    assert not any(name.startswith("train-") for name in stage_names(protocol))
    # the sampler settings of the protocol reach every method's bundle
    given = ("--idm", runs / "idm", "--disc", runs / "disc", "--vdm", runs / "vdm")
    record = tmp_path / "churn0" / "experiment.json"
    settings = ("--churn", "0", "--solver", "dpmpp_2m", "--until", "bundle-guided")
    bundled = compare(cli, learning_store, tmp_path / "churn0", *given, *settings)
    assert bundled.exit_code == 0, bundled.stderr
    sampler = read_bundle_header(tmp_path / "churn0" / "bundles" / "guided.bundle").config["sampler"]
    assert sampler["S_churn"] == 0 and sampler["solver"] == "dpmpp_2m" and sampler["guidance"] == protocol.guidance
    default = read_bundle_header(resumed.out / "bundles" / "guided.bundle").config["sampler"]
    assert default["S_churn"] == protocol.churn == 55 and "solver" not in default  # Heun, the default
    # the solver is part of an experiment's identity, left out at Heun so that a folder started
    # before it could be chosen keeps its identity
    assert json.loads(record.read_text())["config"]["solver"] == "dpmpp_2m"
    assert "solver" not in json.loads((resumed.out / "experiment.json").read_text())["config"]
    wrong = compare(cli, learning_store, tmp_path / "out", "--idm", runs / "disc")
    assert wrong.exit_code != 0 and "is a training run of kind disc, not idm" in wrong.stderr
    assert not (tmp_path / "out").exists()


def test_a_test_split_too_short_for_the_evaluation_is_refused(cli, turbulence_store: Path, tmp_path: Path) -> None:
    done = compare(cli, turbulence_store, tmp_path / "out")
    assert done.exit_code != 0 and "test split" in done.stderr

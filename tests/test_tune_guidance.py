"""`climdiff tune-guidance`: recovery of a known lambda, resume, the written bundle, refusals.

The synthetic case where the best lambda is known: a reference store whose days are a long run of
the tiny trained model itself at LAMBDA_STAR (seed 1000; the tuning uses seed 0). In this perfect-
model setting the candidate at LAMBDA_STAR draws from the reference's own distribution, so its
autocorrelation and std match and its forecasts are calibrated (the truth is one more member),
while the other candidates miss on at least one of them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from climdiff.bundle import load_bundle, make_bundle
from climdiff.errors import ClimdiffError
from climdiff.experiment.tune_guidance import Candidate, TuneConfig, next_lambda, search, tune_guidance
from climdiff.rollout.engine import EmulateConfig, emulate
from climdiff.zarr_io import consolidate, update_header

LAMBDA_STAR = 12.0
CANDIDATES = (0.0, 3.0, 12.0, 48.0)
REFERENCE_SEED = 1000
SMALL = {"starts": 4, "members": 3, "days": 12, "seed": 0, "refine": 0}


def small_config(**overrides) -> TuneConfig:
    return TuneConfig(**{"lambdas": CANDIDATES, "windows": (None,), **SMALL, **overrides})


@pytest.fixture(scope="module")
def bundle(guided_bundle):
    return load_bundle(guided_bundle)


@pytest.fixture(scope="module")
def reference_store(bundle, learning_store, tmp_path_factory) -> Path:
    """The learning store's layout holding a run of the model at LAMBDA_STAR; nearly all of it validation."""
    root = tmp_path_factory.mktemp("tune")
    out = root / "reference.zarr"
    shutil.copytree(learning_store, out)
    days = xr.open_zarr(learning_store).sizes["time"]
    config = EmulateConfig(days=days, seed=REFERENCE_SEED, sampler=bundle.sampler.replace(guidance=LAMBDA_STAR))
    run = emulate(bundle, root / "run.zarr", config, quiet=True).path
    group = zarr.open_group(str(out), mode="r+")
    group["vorticity"][:] = zarr.open_group(str(run))["vorticity"][0]
    update_header(group, split={"train": [0, 10], "validation": [10, days - 2], "test": [days - 2, days]})
    consolidate(out)
    return out


@pytest.fixture(scope="module")
def tuned(bundle, reference_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("tuned") / "tuned.bundle"
    return tune_guidance(bundle, reference_store, out, small_config(), quiet=True)


def test_the_known_lambda_is_recovered(tuned) -> None:
    scores = {key: r["score"] for key, r in tuned.results.items()}
    assert set(scores) == {Candidate.of(lam, None).key for lam in CANDIDATES}
    assert tuned.chosen == Candidate(LAMBDA_STAR, None)
    assert all(scores[tuned.chosen.key] < score for key, score in scores.items() if key != tuned.chosen.key)


def test_resume_after_an_interruption_gives_the_same_choice_without_recomputing(
    bundle, reference_store, tuned, tmp_path
) -> None:
    out = tmp_path / "resumed.bundle"
    seen: list[str] = []

    def stop_after_three(candidate: Candidate, computed: bool) -> None:
        seen.append(candidate.key)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tune_guidance(bundle, reference_store, out, small_config(), quiet=True, on_candidate=stop_after_three)
    assert not out.exists()
    finished = sorted(p.stem for p in (tmp_path / "resumed.bundle.tuning" / "candidates").glob("*.json"))
    assert finished == sorted(seen)
    resumed = tune_guidance(bundle, reference_store, out, small_config(), quiet=True)
    assert set(resumed.computed) == set(tuned.results) - set(seen)  # the finished ones were read back
    assert resumed.chosen == tuned.chosen
    assert {k: r["score"] for k, r in resumed.results.items()} == {k: r["score"] for k, r in tuned.results.items()}


def test_another_configuration_in_the_work_directory_is_refused(bundle, reference_store, tuned, tmp_path) -> None:
    work = tuned.bundle.with_name(tuned.bundle.name + ".tuning")
    with pytest.raises(ClimdiffError, match="another configuration"):
        tune_guidance(bundle, reference_store, tmp_path / "b.bundle", small_config(seed=5), work=work, quiet=True)


def test_the_written_bundle_records_the_tuning_and_emulates_with_the_choice(cli, tuned, tmp_path) -> None:
    tuned_bundle = load_bundle(tuned.bundle)
    assert tuned_bundle.sampler.guidance == tuned.chosen.guidance == LAMBDA_STAR
    assert tuned_bundle.sampler.steps == 8  # every other sampler setting is the source bundle's
    record = tuned_bundle.meta["tuning"]
    assert record["chosen"] == tuned.chosen.key and set(record["candidates"]) == set(tuned.results)
    assert record["seed"] == 0 and record["split"]["name"] == "validation" and record["data"].endswith("reference.zarr")
    run = emulate(tuned_bundle, tmp_path / "run.zarr", EmulateConfig(days=2, sampler=tuned_bundle.sampler), quiet=True)
    attrs = xr.open_zarr(run.path).attrs
    assert attrs["guidance_lambda"] == LAMBDA_STAR and np.isfinite(xr.open_zarr(run.path)["vorticity"].values).all()
    shown = cli("info", tuned.bundle, "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["tuning"]["chosen"] == tuned.chosen.key


def test_editing_the_tuning_record_is_detected(tuned, tmp_path) -> None:
    copy = tmp_path / "copy.bundle"
    shutil.copytree(tuned.bundle, copy)
    meta = json.loads((copy / "bundle.json").read_text())
    meta["tuning"]["chosen"] = "lambda=0,sigma_max=all"
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(ClimdiffError, match="was modified"):
        load_bundle(copy)


def test_the_cli_resumes_from_the_work_directory(cli, tuned, reference_store, guided_bundle, tmp_path) -> None:
    work = tuned.bundle.with_name(tuned.bundle.name + ".tuning")
    before = {p.name: p.stat().st_mtime_ns for p in (work / "candidates").glob("*.json")}
    args = ["--lambdas", ",".join(f"{v:g}" for v in CANDIDATES), "--windows", "all"]
    args += [f"--{k}={v}" for k, v in SMALL.items()]
    done = cli(
        "tune-guidance",
        "--checkpoint",
        guided_bundle,
        "--data",
        reference_store,
        "--out",
        tmp_path / "cli.bundle",
        "--work",
        work,
        "--threads",
        "1",
        *args,
    )
    assert done.exit_code == 0, done.stderr
    assert "lambda=12,sigma_max=all: score" in done.stdout and "<- chosen" in done.stdout
    assert done.stderr.count("(done before)") == len(CANDIDATES) and "computing" not in done.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (work / "candidates").glob("*.json")} == before
    assert load_bundle(tmp_path / "cli.bundle").sampler.guidance == LAMBDA_STAR


@pytest.fixture(scope="module")
def unguided_bundle(learning_store, trained_idm, tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundles") / "unguided.bundle", data=learning_store, idm=trained_idm)


@pytest.fixture(scope="module")
def no_validation_store(reference_store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tune") / "noval.zarr"
    shutil.copytree(reference_store, out)
    group = zarr.open_group(str(out), mode="r+")
    update_header(group, split={"train": [0, 150], "validation": [150, 150], "test": [150, 160]})
    consolidate(out)
    return out


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unguided", "has no discriminator"),
        ("no_validation", "has no validation split"),
        ("few_days", "--days must be more than 10"),
        ("many_starts", "validation split (days 10..157) has room for"),
        ("one_member", "--members must be at least 2"),
        ("bad_lambdas", "--lambdas takes comma-separated numbers"),
        ("negative_lambda", "--lambdas needs one or more finite values >= 0"),
    ],
)
def test_bad_input_is_refused_in_one_line(
    cli, case, message, guided_bundle, unguided_bundle, reference_store, no_validation_store, tmp_path
) -> None:
    bundle, data, extra = guided_bundle, reference_store, []
    if case == "unguided":
        bundle = unguided_bundle
    elif case == "no_validation":
        data = no_validation_store
    else:
        extra = {
            "few_days": ["--days", "5"],
            "many_starts": ["--starts", "200"],
            "one_member": ["--members", "1"],
            "bad_lambdas": ["--lambdas", "0,x"],
            "negative_lambda": ["--lambdas", "0,-3"],
        }[case]
    out = tmp_path / "out.bundle"
    done = cli("tune-guidance", "--checkpoint", bundle, "--data", data, "--out", out, *extra)
    assert done.exit_code != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("climdiff: error:") and message in lines[0], done.stderr
    assert not out.exists() and not (tmp_path / "out.bundle.tuning").exists()


def test_an_existing_output_is_refused_without_overwrite(cli, guided_bundle, reference_store, tuned) -> None:
    done = cli("tune-guidance", "--checkpoint", guided_bundle, "--data", reference_store, "--out", tuned.bundle)
    assert done.exit_code != 0 and "use --overwrite" in done.stderr


def test_help_says_what_is_matched(cli) -> None:
    done = cli("tune-guidance", "--help")
    text = " ".join(done.stdout.split())
    assert done.exit_code == 0
    assert "autocorrelation at lags 1-10" in text and "standard deviation" in text and "spread-skill" in text


def test_next_lambda_finds_the_vertex_and_expands_at_the_edges() -> None:
    parabola = [(x, (x - 7.0) ** 2) for x in (0.0, 4.0, 12.0, 20.0)]
    assert next_lambda(parabola) == 7.0
    assert next_lambda([(0.0, 3.0), (5.0, 2.0), (10.0, 1.0)]) == 20.0  # best at the largest: expand
    assert next_lambda([(0.0, 1.0), (10.0, 2.0)]) == pytest.approx(3.82)  # best at 0: golden section
    assert next_lambda([(0.0, 1.0)]) is None


def test_search_refines_around_a_known_minimum_and_reuses_lambda_zero() -> None:
    calls: list[Candidate] = []

    def score(c: Candidate) -> float:
        calls.append(c)
        return (c.guidance - 9.0) ** 2 + (0.0 if c.window == 5.0 or c.guidance == 0 else 10.0)

    best = search(score, TuneConfig(lambdas=(0.0, 4.0, 16.0), windows=(None, 5.0), refine=3, days=11))
    assert best.window == 5.0 and abs(best.guidance - 9.0) < 1.0
    assert len(calls) == len(set(calls)) and sum(c.guidance == 0 for c in calls) == 1


def test_search_refines_towards_lambda_zero_at_the_grid_window() -> None:
    calls: list[Candidate] = []

    def score(c: Candidate) -> float:
        calls.append(c)
        return c.guidance

    best = search(score, TuneConfig(lambdas=(0.0, 4.0, 16.0), windows=(5.0, None), refine=1, days=11))
    assert best == Candidate(0.0, None) and calls[-1] == Candidate(1.53, 5.0)

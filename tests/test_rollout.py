"""`climdiff emulate`: the rollout engine and its store, with a real (tiny) trained bundle."""

from __future__ import annotations

import json

import cftime
import numpy as np
import pytest
import torch
import xarray as xr
import zarr

from climdiff.bundle import load_bundle
from climdiff.errors import ClimdiffError, StoreError
from climdiff.rollout.calendar import days_in_years, parse_date
from climdiff.rollout.engine import EmulateConfig, emulate
from climdiff.rollout.policy import configure_sampling_threads
from climdiff.rollout.steppers import (
    DayStepper,
    GuidedStepper,
    TracedStepper,
    UnguidedStepper,
    day_stepper,
)
from climdiff.runtime import default_threads
from climdiff.zarr_io import store_meta


def config(**overrides) -> EmulateConfig:
    bundle_sampler = {"days": 6, "members": 3, "seed": 5, "time_chunk": 4}
    return EmulateConfig(**{**bundle_sampler, **overrides})


@pytest.fixture(scope="module")
def bundle(guided_bundle):
    return load_bundle(guided_bundle)


@pytest.fixture(scope="module")
def reference_run(bundle, tmp_path_factory):
    cfg = config(sampler=bundle.sampler)
    return emulate(bundle, tmp_path_factory.mktemp("emu") / "ref.zarr", cfg, quiet=True).path


def test_store_is_cf_and_opens_with_decoded_dates(bundle, reference_run) -> None:
    ds = xr.open_zarr(reference_run)
    assert ds["vorticity"].dims == ("member", "time", "y", "x") and ds["vorticity"].shape == (3, 6, 32, 32)
    assert ds["member"].attrs["standard_name"] == "realization"
    assert ds["vorticity"].attrs["climdiff_transform"] == "standardize"
    assert isinstance(ds["time"].values[0], cftime.DatetimeNoLeap)
    last_initial = parse_date(bundle.initial_dates[-1][:10], "noleap")
    assert (ds["time"].values[0] - last_initial).days == 1
    values = ds["vorticity"].values
    assert np.isfinite(values).all()
    # physical units: the spread is that of vorticity, not of standardised data
    assert 0.3 * bundle.meta["normalization"]["std"] < values.std() < 3 * bundle.meta["normalization"]["std"]
    assert store_meta(ds.attrs)["complete"] is True and ds.attrs["guidance_lambda"] == 3.0
    assert (ds["stopped_day"].values == -1).all() and (ds["redraws"].values == 0).all()
    # members are different chains
    assert not np.allclose(values[0], values[1])


def test_same_seed_same_run_and_members_do_not_depend_on_batching(bundle, reference_run, tmp_path) -> None:
    cfg = config(sampler=bundle.sampler)
    again = emulate(bundle, tmp_path / "again.zarr", cfg, quiet=True).path
    a, b = zarr.open_group(str(reference_run))["vorticity"][:], zarr.open_group(str(again))["vorticity"][:]
    np.testing.assert_array_equal(a, b)
    one_by_one = emulate(bundle, tmp_path / "b1.zarr", cfg, batch=1, quiet=True).path
    np.testing.assert_allclose(zarr.open_group(str(one_by_one))["vorticity"][:], a, rtol=1e-4, atol=1e-4)


class Stop(Exception):
    pass


def test_interrupted_run_resumes_bit_for_bit(bundle, reference_run, tmp_path) -> None:
    cfg = config(sampler=bundle.sampler)
    out = tmp_path / "resumed.zarr"

    def stop(days: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        emulate(bundle, out, cfg, quiet=True, after_commit=stop)
    partial = zarr.open_group(str(out))["vorticity"][:]
    assert np.isfinite(partial[:, :4]).all() and np.isnan(partial[:, 4:]).all()
    emulate(bundle, out, cfg, quiet=True)
    np.testing.assert_array_equal(
        zarr.open_group(str(out))["vorticity"][:], zarr.open_group(str(reference_run))["vorticity"][:]
    )
    with pytest.raises(StoreError, match="already complete"):
        emulate(bundle, out, cfg, quiet=True)
    with pytest.raises(StoreError, match="differs in: members"):
        emulate(bundle, out, config(sampler=bundle.sampler, members=2), quiet=True)


def test_blow_up_is_redrawn_then_stops_the_member(bundle, tmp_path, monkeypatch) -> None:
    """Member 1 blows up from day 2 on, whatever the noise: redrawn 3 times, then stopped, with
    every earlier day kept; the other members run on."""
    healthy = TracedStepper.__call__
    day = {"index": -1}

    def member_1_blows_up(self, last, generators, doy=None):  # noqa: ANN001, ANN202
        x = healthy(self, last, generators, doy)
        if len(generators) == 3:  # a new day for the whole cohort
            day["index"] += 1
        if day["index"] >= 2 and len(generators) in (1, 3):  # member 1, alone (a redraw) or with all
            x[1 if len(generators) == 3 else 0] = float("nan")
        return x

    monkeypatch.setattr(TracedStepper, "__call__", member_1_blows_up)
    result = emulate(bundle, tmp_path / "blow.zarr", config(sampler=bundle.sampler), quiet=True)
    assert result.stopped == {1: 2} and result.redraws == {1: 3}
    ds = xr.open_zarr(tmp_path / "blow.zarr")
    values = ds["vorticity"].values
    assert np.isfinite(values[1, :2]).all() and np.isnan(values[1, 2:]).all()
    assert np.isfinite(values[[0, 2]]).all()
    assert list(ds["stopped_day"].values) == [-1, 2, -1] and list(ds["redraws"].values) == [0, 3, 0]


def test_unguided_ablation_skips_the_discriminator(bundle, tmp_path, monkeypatch) -> None:
    def fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the discriminator must not be evaluated at lambda = 0")

    monkeypatch.setattr(bundle.models["disc"], "forward", fail)
    run = emulate(
        bundle, tmp_path / "plain.zarr", config(sampler=bundle.sampler.replace(guidance=0.0), days=2), quiet=True
    )
    assert np.isfinite(xr.open_zarr(run.path)["vorticity"].values).all()


def test_zarr_format_2_output(bundle, tmp_path) -> None:
    run = emulate(
        bundle, tmp_path / "v2.zarr", config(sampler=bundle.sampler, days=2, members=1, zarr_format=2), quiet=True
    )
    ds = xr.open_zarr(run.path)
    assert ds["vorticity"].dims == ("member", "time", "y", "x")
    assert zarr.open_group(str(run.path)).metadata.zarr_format == 2


def test_calendar_arithmetic() -> None:
    assert days_in_years(parse_date("0001-01-01", "noleap"), 100) == 36_500
    assert days_in_years(parse_date("2000-01-01", "standard"), 100) == 36_525
    assert days_in_years(parse_date("2000-02-29", "standard"), 1) == 366
    with pytest.raises(ClimdiffError, match="not a date in the noleap calendar"):
        parse_date("2001-02-29", "noleap")
    with pytest.raises(ClimdiffError, match="YYYY-MM-DD"):
        parse_date("yesterday", "noleap")


def test_cli_emulate_and_its_errors(cli, guided_bundle, tmp_path) -> None:
    out = tmp_path / "cli.zarr"
    ok = cli(
        "emulate",
        "--checkpoint",
        guided_bundle,
        "--days",
        "3",
        "--members",
        "2",
        "--out",
        out,
        "--quiet",
        "--steps",
        "10",
        "--guidance-sigma-max",
        "2.5",
    )
    assert ok.exit_code == 0, ok.stderr
    assert "wrote 2 member(s) x 3 days" in ok.stdout
    ds = xr.open_zarr(out)
    sampler = json.loads(ds.attrs["sampler"])
    assert sampler["steps"] == 10 and sampler["guidance_sigma_max"] == 2.5 and ds.sizes["time"] == 3
    # two 32x32 members per call: a small call runs each network on one thread, and the
    # guidance on a core of its own when there is a second one
    assert ds.attrs["threads"] == 1 and json.loads(ds.attrs["guidance_thread"]) == (default_threads() >= 2)
    for threads, guidance, expected in [("1", "3", (1, False)), ("2", "3", (1, True)), ("2", "0", (1, False))]:
        path = tmp_path / f"t{threads}-{guidance}.zarr"  # unguided: no guidance to run beside the IDM
        run = cli(
            "emulate",
            "--checkpoint",
            guided_bundle,
            "--days",
            "1",
            "--out",
            path,
            "--quiet",
            "--threads",
            threads,
            "--guidance",
            guidance,
        )
        assert run.exit_code == 0, run.stderr
        attrs = xr.open_zarr(path).attrs
        assert (attrs["threads"], json.loads(attrs["guidance_thread"])) == expected
    before = torch.get_num_threads()
    try:  # a large call spreads its operations over the threads instead
        assert configure_sampling_threads(2, 32, (1, 32, 32)) is False and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    for args, message in [
        (["--days", "3", "--years", "1"], "exactly one of --years and --days"),
        (["--years", "0"], "--years must be positive"),
        (["--days", "0"], "at least one day"),
        (["--days", "2", "--start", "0005-02-30"], "not a date in the noleap calendar"),
        (["--days", "2", "--members", "0"], "--members must be positive"),
        (["--days", "2", "--guidance-sigma-max", "0"], "--guidance-sigma-max takes one positive noise level"),
    ]:
        result = cli("emulate", "--checkpoint", guided_bundle, "--out", tmp_path / "x.zarr", "--quiet", *args)
        assert result.exit_code != 0 and message in result.stderr and "Traceback" not in result.stderr, (
            args,
            result.stderr,
        )
    missing = cli("emulate", "--checkpoint", tmp_path / "none.bundle", "--days", "2", "--out", tmp_path / "y.zarr")
    assert missing.exit_code != 0 and "does not exist" in missing.stderr
    again = cli(
        "emulate",
        "--checkpoint",
        guided_bundle,
        "--days",
        "3",
        "--members",
        "2",
        "--out",
        out,
        "--quiet",
        "--steps",
        "10",
        "--guidance-sigma-max",
        "2.5",
    )
    assert again.exit_code != 0 and "already complete" in again.stderr


def test_guidance_changes_the_days(bundle, reference_run, tmp_path) -> None:
    plain = emulate(bundle, tmp_path / "p.zarr", config(sampler=bundle.sampler.replace(guidance=0.0)), quiet=True).path
    guided = zarr.open_group(str(reference_run))["vorticity"][:]
    assert not np.allclose(zarr.open_group(str(plain))["vorticity"][:], guided)
    assert torch.is_tensor(bundle.initial_state)


def test_embedded_default_runs_out_of_the_box(cli, tmp_path) -> None:
    from climdiff.assets import DEFAULT_MODEL, available_models, embedded_bundle

    assert DEFAULT_MODEL in available_models()
    shipped = load_bundle(embedded_bundle())
    assert shipped.kind == "guided" and shipped.meta["calendar"] == "noleap"
    out = tmp_path / "default.zarr"
    result = cli("emulate", "--days", "2", "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    ds = xr.open_zarr(out)
    assert ds.sizes["time"] == 2 and np.isfinite(ds[shipped.meta["variable"]["name"]].values).all()
    unknown = cli("emulate", "--model", "nosuch", "--days", "2", "--out", tmp_path / "n.zarr")
    assert unknown.exit_code != 0 and f"available: {DEFAULT_MODEL}" in unknown.stderr


def test_two_torchrun_ranks_write_disjoint_members_of_one_store(bundle, guided_bundle, tmp_path) -> None:
    """Ranks split the members (m % 2) and write their own chunks; the store equals a single
    process's run to float tolerance (members are batched differently)."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ranks.zarr"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            "-m",
            "climdiff",
            "emulate",
            "--checkpoint",
            str(guided_bundle),
            "--days",
            "4",
            "--members",
            "3",
            "--time-chunk",
            "2",
            "--out",
            str(out),
            "--quiet",
            "--threads",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    single = emulate(
        bundle,
        tmp_path / "single.zarr",
        EmulateConfig(days=4, members=3, time_chunk=2, sampler=bundle.sampler),
        quiet=True,
    )
    ranks = xr.open_zarr(out)
    assert store_meta(ranks.attrs)["complete"] is True and ranks.attrs["ranks"] == 2
    np.testing.assert_allclose(
        ranks["vorticity"].values, xr.open_zarr(single.path)["vorticity"].values, rtol=1e-4, atol=1e-4
    )


def test_monthly_and_annual_means_beside_the_daily_field(bundle, tmp_path) -> None:
    cfg = config(
        days=40, members=2, start="0001-12-20", time_chunk=16, sampler=bundle.sampler, means=("monthly", "annual")
    )
    ds = xr.open_zarr(emulate(bundle, tmp_path / "means.zarr", cfg, quiet=True).path)
    daily = ds["vorticity"].values
    assert list(ds["days_monthly"].values) == [12, 28] and list(ds["days_annual"].values) == [12, 28]
    assert [(t.year, t.month, t.day) for t in ds["time_monthly"].values] == [(1, 12, 1), (2, 1, 1)]
    np.testing.assert_allclose(ds["vorticity_monthly"].values[:, 0], daily[:, :12].mean(axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ds["vorticity_annual"].values[:, 1], daily[:, 12:].mean(axis=1), rtol=1e-5, atol=1e-5)
    assert ds["vorticity_monthly"].attrs["cell_methods"] == "time: mean"
    with pytest.raises(ClimdiffError, match="unknown --means"):
        config(means=("weekly",))


def draw_days(sampler: DayStepper, bundle, members: int, days: int) -> torch.Tensor:  # noqa: ANN001
    """``days`` successive days of ``members`` chains from the bundle's initial state, (day, member, C, H, W)."""
    from climdiff.seeding import keyed_generator

    norm = bundle.meta["normalization"]
    last = ((bundle.initial_state - norm["mean"]) / norm["std"]).expand(members, -1, -1, -1, -1)
    generators, drawn = [keyed_generator(0, m) for m in range(members)], []
    for _ in range(days):
        drawn.append(sampler(last, generators))
        last = torch.stack([last[:, 1], drawn[-1]], dim=1)
    return torch.stack(drawn)


def test_traced_networks_draw_what_the_eager_ones_draw(bundle) -> None:
    days = {}
    for trace in (True, False):
        sampler = day_stepper(bundle, bundle.sampler, torch.device("cpu"), trace=trace)
        days[trace] = draw_days(sampler, bundle, members=3, days=1)
        assert bool(sampler._traced) == trace  # the traces were made (or not)
    np.testing.assert_allclose(days[True].numpy(), days[False].numpy(), rtol=1e-5, atol=1e-5)


def test_guidance_on_its_own_thread_draws_the_same_bits(bundle) -> None:
    """The IDM and the guidance of a step read the same x: running them at once changes nothing."""
    days = {}
    for concurrent in (False, True):
        sampler = day_stepper(bundle, bundle.sampler, torch.device("cpu"), guide_thread=concurrent)
        assert sampler.guidance_thread == concurrent
        days[concurrent] = draw_days(sampler, bundle, members=2, days=3)
    assert torch.equal(days[True], days[False])
    plain = day_stepper(bundle, bundle.sampler.replace(guidance=0.0), torch.device("cpu"), guide_thread=True)
    assert (
        isinstance(plain, UnguidedStepper) and not isinstance(plain, GuidedStepper) and plain.guidance_thread is False
    )

"""`climdiff tune-guidance`: choose lambda (and the guidance window) on validation data, write a new bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from climdiff.assets import DEFAULT_MODEL, embedded_bundle
from climdiff.bundle import load_bundle
from climdiff.cli.common import Device, OutPath, Overwrite, Quiet, Threads, command_line, numbers
from climdiff.experiment.tune_guidance import TuneConfig, default_candidates, tune_guidance
from climdiff.rollout.policy import configure_sampling_threads

DEFAULTS = TuneConfig(lambdas=(0.0,), windows=(None,))


def tune_guidance_command(
    out: OutPath,
    data: Annotated[
        Path,
        typer.Option(help="Training store (`climdiff data`) whose validation split is matched.", show_default=False),
    ],
    model: Annotated[str, typer.Option(help="Name of an embedded model to tune.")] = DEFAULT_MODEL,
    checkpoint: Annotated[Path | None, typer.Option(help="A bundle to tune (instead of --model).")] = None,
    lambdas: Annotated[
        str | None,
        typer.Option(help="Coarse grid of lambdas, e.g. 0,5,10,20 (default: 0, 1/4, 1/2, 1 and 2 x the bundle's)."),
    ] = None,
    windows: Annotated[
        str | None,
        typer.Option(
            help="Candidate guidance_sigma_max values, 'all' for the whole schedule; the first is searched with the "
            "lambda grid, the others at the best lambda (default: the bundle's, all, 1)."
        ),
    ] = None,
    refine: Annotated[int, typer.Option(help="Refinement steps on lambda after the grid.")] = DEFAULTS.refine,
    starts: Annotated[int, typer.Option(help="Forecast starts spread over the validation split.")] = DEFAULTS.starts,
    members: Annotated[int, typer.Option(help="Ensemble members per start (at least 2).")] = DEFAULTS.members,
    days: Annotated[int, typer.Option(help="Days (leads) each chain runs (more than 10).")] = DEFAULTS.days,
    seed: Annotated[int, typer.Option(help="Random seed, the same for every candidate.")] = DEFAULTS.seed,
    work: Annotated[
        Path | None, typer.Option(help="Work directory of finished candidates (default: OUT.tuning).")
    ] = None,
    batch: Annotated[int | None, typer.Option(help="Chains sampled together (default: 64 or the members).")] = None,
    device: Device = "cpu",
    threads: Threads = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Choose the guidance strength lambda (and the guidance window) on the store's validation split.

    Short forecast ensembles from validation days are run for each candidate with the same seeds and
    starts, and scored against the validation split by matching its autocorrelation at lags 1-10, its
    standard deviation, and the forecast spread-skill ratio at leads 1-10 (ideal 1); each mismatch is
    scaled by its acceptance tolerance (0.05, 5 %, 0.1). Writes a new bundle with the best setting and
    a record of the tuning (`climdiff info OUT`). Re-running the same command after an interruption
    reuses the candidates already finished.
    """
    bundle = load_bundle(checkpoint if checkpoint is not None else embedded_bundle(model))
    grid, window_list = default_candidates(bundle.sampler)
    config = TuneConfig(
        lambdas=grid if lambdas is None else numbers(lambdas, "--lambdas"),
        windows=window_list if windows is None else numbers(windows, "--windows", allow_all=True),
        refine=refine,
        starts=starts,
        members=members,
        days=days,
        seed=seed,
        device=device,
    )
    chains = batch or max(starts * members, 1)
    concurrent = configure_sampling_threads(threads, chains, tuple(bundle.initial_state.shape[1:]))
    result = tune_guidance(
        bundle,
        data,
        out,
        config,
        work=work,
        batch=batch,
        overwrite=overwrite,
        quiet=quiet,
        command=command_line(),
        concurrent_guide=concurrent,
        report=None if quiet else lambda line: typer.echo(line, err=True),
    )
    for key, record in result.results.items():
        typer.echo(f"{key}: score {record['score']:.4g}{'  <- chosen' if key == result.chosen.key else ''}")
    typer.echo(f"wrote bundle {result.bundle} with {result.chosen.key}")

"""`climdiff bundle`: assemble what emulate loads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from climdiff.assets import bundle_path
from climdiff.bundle import derive_bundle, load_bundle, make_bundle
from climdiff.cli.common import GuidanceSigmaMax, GuidanceSigmaMin, OutPath, Overwrite, Solver, with_window
from climdiff.errors import ClimdiffError
from climdiff.sampling.config import SamplerConfig

PAPER = SamplerConfig()


def bundle(
    out: OutPath,
    data: Annotated[
        Path | None,
        typer.Option(help="Training store: the initial state and a check that the models fit it.", show_default=False),
    ] = None,
    idm: Annotated[Path | None, typer.Option(help="IDM checkpoint or training-run directory.")] = None,
    disc: Annotated[Path | None, typer.Option(help="Discriminator checkpoint or run directory (guidance).")] = None,
    vdm: Annotated[Path | None, typer.Option(help="VDM checkpoint or run directory (instead of --idm).")] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="A bundle (path or embedded model name) whose models and initial state the new bundle keeps, with the sampler options given here changed (instead of --data and the models).",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Bundle name (default: the folder name).")] = None,
    start_index: Annotated[
        int | None,
        typer.Option(
            help="Day of --data whose pair (day, day+1) is the initial state (default: start of the test split)."
        ),
    ] = None,
    steps: Annotated[int | None, typer.Option(help=f"Sampler steps per day (default {PAPER.steps}).")] = None,
    guidance: Annotated[
        float | None, typer.Option(help=f"Guidance strength lambda, 0 = unguided (default {PAPER.guidance:g}).")
    ] = None,
    churn: Annotated[float | None, typer.Option(help=f"EDM S_churn (default {PAPER.S_churn:g}).")] = None,
    s_noise: Annotated[float | None, typer.Option(help=f"EDM S_noise (default {PAPER.S_noise:g}).")] = None,
    sigma_max: Annotated[
        float | None, typer.Option(help=f"Largest noise level of the schedule (default {PAPER.sigma_max:g}).")
    ] = None,
    guidance_sigma_min: GuidanceSigmaMin = None,
    guidance_sigma_max: GuidanceSigmaMax = None,
    solver: Solver = None,
    overwrite: Overwrite = False,
) -> None:
    """Assemble an emulation bundle: models, data transform, grid, calendar, initial state, sampler.

    With --from: a copy of a bundle with the sampler options given here changed, no retraining.
    """
    changes = {
        "steps": steps,
        "guidance": guidance,
        "S_churn": churn,
        "S_noise": s_noise,
        "sigma_max": sigma_max,
        "solver": solver,
    }
    if source is not None:
        if data or idm or disc or vdm or start_index is not None:
            raise ClimdiffError(
                "--from keeps its bundle's models and initial state: drop --data, the models and --start-index"
            )
        base = load_bundle(bundle_path(source))
        sampler = with_window(base.sampler.replace(**changes), guidance_sigma_min, guidance_sigma_max)
        given = {key: value for key, value in changes.items() if value is not None}
        if guidance_sigma_min is not None:
            given["guidance_sigma_min"] = guidance_sigma_min
        if guidance_sigma_max is not None:  # None here is "all": the whole schedule
            given["guidance_sigma_max"] = sampler.guidance_sigma_max
        record = {"derived_from": base.meta["name"], "source_sha256": base.meta["bundle_sha256"], "changed": given}
        path = derive_bundle(base, out, sampler=sampler, tuning=record, name=name, overwrite=overwrite)
    else:
        if data is None:
            raise ClimdiffError("give --data (the training store) with the models, or --from a bundle")
        path = make_bundle(
            out,
            data=data,
            idm=idm,
            disc=disc,
            vdm=vdm,
            sampler=with_window(PAPER.replace(**changes), guidance_sigma_min, guidance_sigma_max),
            name=name,
            start_index=start_index,
            overwrite=overwrite,
        )
    typer.echo(f"wrote bundle {path}")

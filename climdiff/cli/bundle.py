"""`climdiff bundle`: assemble what emulate loads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from climdiff.bundle import make_bundle
from climdiff.cli.common import GuidanceSigmaMax, OutPath, Overwrite, Solver
from climdiff.sampling.config import SamplerConfig

PAPER = SamplerConfig()


def bundle(
    out: OutPath,
    data: Annotated[
        Path,
        typer.Option(help="Training store: the initial state and a check that the models fit it.", show_default=False),
    ],
    idm: Annotated[Path | None, typer.Option(help="IDM checkpoint or training-run directory.")] = None,
    disc: Annotated[Path | None, typer.Option(help="Discriminator checkpoint or run directory (guidance).")] = None,
    vdm: Annotated[Path | None, typer.Option(help="VDM checkpoint or run directory (instead of --idm).")] = None,
    name: Annotated[str | None, typer.Option(help="Bundle name (default: the folder name).")] = None,
    start_index: Annotated[
        int | None,
        typer.Option(
            help="Day of --data whose pair (day, day+1) is the initial state (default: start of the test split)."
        ),
    ] = None,
    steps: Annotated[int, typer.Option(help="Sampler steps per day.")] = PAPER.steps,
    guidance: Annotated[float, typer.Option(help="Guidance strength lambda (0: unguided).")] = PAPER.guidance,
    churn: Annotated[float, typer.Option(help="EDM S_churn.")] = PAPER.S_churn,
    s_noise: Annotated[float, typer.Option(help="EDM S_noise.")] = PAPER.S_noise,
    sigma_max: Annotated[float, typer.Option(help="Largest noise level of the schedule.")] = PAPER.sigma_max,
    guidance_sigma_max: GuidanceSigmaMax = None,
    solver: Solver = PAPER.solver,
    overwrite: Overwrite = False,
) -> None:
    """Assemble an emulation bundle: models, data transform, grid, calendar, initial state, sampler."""
    sampler = SamplerConfig(
        steps=steps,
        guidance=guidance,
        S_churn=churn,
        S_noise=s_noise,
        sigma_max=sigma_max,
        guidance_sigma_max=guidance_sigma_max,
        solver=solver or PAPER.solver,
    )
    path = make_bundle(
        out,
        data=data,
        idm=idm,
        disc=disc,
        vdm=vdm,
        sampler=sampler,
        name=name,
        start_index=start_index,
        overwrite=overwrite,
    )
    typer.echo(f"wrote bundle {path}")

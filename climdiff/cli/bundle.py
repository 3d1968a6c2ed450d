"""`climdiff bundle` and `climdiff info`: assemble what emulate loads; describe any output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from climdiff.bundle import BUNDLE_FILE, describe_bundle, make_bundle
from climdiff.checkpoint import describe_checkpoint
from climdiff.cli.common import (
    GuidanceSigmaMax,
    Json,
    OutPath,
    Overwrite,
    print_summary,
)
from climdiff.data.info import describe_training_store
from climdiff.data.store import TRAINING_KIND
from climdiff.errors import ClimdiffError
from climdiff.evaluate.runner import describe_evaluation
from climdiff.rollout.info import describe_rollout_store
from climdiff.sampling.config import SamplerConfig
from climdiff.train.loop import RUN_FILE
from climdiff.zarr_io import read_header

PAPER = SamplerConfig()


def bundle(
    out: OutPath,
    data: Annotated[Path, typer.Option(help="Training store: the initial state and a check that the models fit it.", show_default=False)],
    idm: Annotated[Path | None, typer.Option(help="IDM checkpoint or training-run directory.")] = None,
    disc: Annotated[Path | None, typer.Option(help="Discriminator checkpoint or run directory (guidance).")] = None,
    vdm: Annotated[Path | None, typer.Option(help="VDM checkpoint or run directory (instead of --idm).")] = None,
    name: Annotated[str | None, typer.Option(help="Bundle name (default: the folder name).")] = None,
    start_index: Annotated[
        int | None, typer.Option(help="Day of --data whose pair (day, day+1) is the initial state (default: start of the test split).")
    ] = None,
    steps: Annotated[int, typer.Option(help="Sampler steps per day.")] = PAPER.steps,
    guidance: Annotated[float, typer.Option(help="Guidance strength lambda (0: unguided).")] = PAPER.guidance,
    churn: Annotated[float, typer.Option(help="EDM S_churn.")] = PAPER.S_churn,
    s_noise: Annotated[float, typer.Option(help="EDM S_noise.")] = PAPER.S_noise,
    sigma_max: Annotated[float, typer.Option(help="Largest noise level of the schedule.")] = PAPER.sigma_max,
    guidance_sigma_max: GuidanceSigmaMax = None,
    overwrite: Overwrite = False,
) -> None:
    """Assemble an emulation bundle: models, data transform, grid, calendar, initial state, sampler."""
    sampler = SamplerConfig(steps=steps, guidance=guidance, S_churn=churn, S_noise=s_noise, sigma_max=sigma_max,
                            guidance_sigma_max=guidance_sigma_max)  # fmt: skip
    path = make_bundle(
        out, data=data, idm=idm, disc=disc, vdm=vdm, sampler=sampler, name=name, start_index=start_index, overwrite=overwrite
    )
    typer.echo(f"wrote bundle {path}")


def info(
    path: Annotated[Path, typer.Argument(help="A store, checkpoint, training-run directory or bundle.")],
    as_json: Json = False,
) -> None:
    """Describe any climdiff output: store, checkpoint, training run, bundle or evaluation."""
    if not path.exists():
        raise ClimdiffError(f"{path} does not exist")
    if (path / BUNDLE_FILE).is_file():
        summary = describe_bundle(path)
    elif (path / RUN_FILE).is_file():
        summary = {"run": json.loads((path / RUN_FILE).read_text()), "checkpoint": describe_checkpoint(path / "model.safetensors")}
    elif path.is_file():
        summary = describe_checkpoint(path)
    elif (header := read_header(path)) is not None:
        summary = describe_training_store(path) if header.kind == TRAINING_KIND else describe_rollout_store(path)
    elif (evaluation := describe_evaluation(path)) is not None:
        summary = evaluation
    else:
        raise ClimdiffError(f"{path} is not a climdiff store, checkpoint, training run, bundle or evaluation")
    print_summary(str(path), summary, as_json)

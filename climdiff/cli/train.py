"""`climdiff train idm|disc|vdm`: train one of the three networks on a training store."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from climdiff.cli.common import Device, OutPath, Overwrite, Quiet, Threads, command_line
from climdiff.runtime import configure_threads
from climdiff.train.config import read_config_file, resolve_config
from climdiff.train.loop import train_model


class Kind(str, Enum):
    idm = "idm"
    disc = "disc"
    vdm = "vdm"


def train(
    kind: Annotated[
        Kind,
        typer.Argument(
            help="idm: image diffusion model; disc: time-consistency discriminator; vdm: video diffusion baseline."
        ),
    ],
    data: Annotated[Path, typer.Option(help="Training store made by `climdiff data`.", show_default=False)],
    out: OutPath,
    config: Annotated[
        Path | None, typer.Option(help="TOML (or YAML) file with any training setting; flags override it.")
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="Model and optimisation preset: tiny, small or paper. [default: small]")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Optimiser steps (instead of --epochs).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training split (instead of --steps).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Global batch size (split over torchrun ranks).")] = None,
    lr: Annotated[float | None, typer.Option(help="AdamW learning rate.")] = None,
    warmup_steps: Annotated[int | None, typer.Option(help="Linear learning-rate warm-up.")] = None,
    ema_decay: Annotated[float | None, typer.Option(help="EMA decay of the sampling weights.")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(help="Steps between checkpoints (and resume points).")] = None,
    val_every: Annotated[int | None, typer.Option(help="Steps between validations.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (weights, batches, noise).")] = None,
    crop: Annotated[int | None, typer.Option(help="Discriminator: random periodic crops of this size.")] = None,
    disc_sigma_max: Annotated[
        float | None, typer.Option(help="Discriminator: widen half of the noise draws log-uniformly up to this sigma.")
    ] = None,
    negatives: Annotated[
        str | None,
        typer.Option(
            help="Discriminator: which wrong offsets l the negatives have: all (l != 1), no-copies (also "
            "l != 0, -1) or later (l >= 2). [default: all]"
        ),
    ] = None,
    foreign_changes: Annotated[
        float | None,
        typer.Option(
            help="Discriminator: fraction of the negatives that are x^n plus another day's one-day change "
            "(right size, wrong direction; docs/training.md). [default: 0]"
        ),
    ] = None,
    large_scale_negatives: Annotated[
        float | None,
        typer.Option(
            help="Discriminator, periodic grids: fraction of the negatives that are the true next day with the "
            "large scales of a day 2-10 days away (docs/training.md). [default: 0]"
        ),
    ] = None,
    large_scale_cutoff: Annotated[
        int | None,
        typer.Option(help="Discriminator: largest wavenumber |kx|, |ky| of the large scales. [default: 4]"),
    ] = None,
    area_weighted: Annotated[
        bool | None,
        typer.Option(
            "--area-weighted/--no-area-weighted",
            help="IDM/VDM on lat-lon grids: weight the loss by cos(lat). [default: on]",
        ),
    ] = None,
    day_of_year: Annotated[
        bool | None,
        typer.Option(
            "--day-of-year/--no-day-of-year", help="Condition the model on the target day's day of year. [default: off]"
        ),
    ] = None,
    amp: Annotated[bool | None, typer.Option("--amp/--no-amp", help="bf16 mixed precision (CUDA only).")] = None,
    device: Device = "auto",
    threads: Threads = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Train a model; re-running the same command resumes from the last checkpoint.

    Writes OUT/model.safetensors (the checkpoint), OUT/metrics.jsonl, metrics.csv and loss.png.
    Multi-GPU or multi-process: torchrun --nproc_per_node N -m climdiff train ...
    """
    configure_threads(threads)
    flags = {
        "preset": preset,
        "steps": steps,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "warmup_steps": warmup_steps,
        "ema_decay": ema_decay,
        "checkpoint_every": checkpoint_every,
        "val_every": val_every,
        "seed": seed,
        "crop": crop,
        "disc_sigma_max": disc_sigma_max,
        "negatives": negatives,
        "foreign_changes": foreign_changes,
        "large_scale_negatives": large_scale_negatives,
        "large_scale_cutoff": large_scale_cutoff,
        "amp": amp,
        "area_weighted": area_weighted,
        "day_of_year": day_of_year,
    }
    file_values = read_config_file(config) if config is not None else {}
    cfg = resolve_config(kind.value, file_values, flags)
    run = train_model(cfg, data, out, device=device, overwrite=overwrite, quiet=quiet, command=command_line())
    typer.echo(f"trained {kind.value}: checkpoint {run / 'model.safetensors'}")

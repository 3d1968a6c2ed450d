"""The training loop shared by the IDM, the discriminator and the VDM.

A run writes one directory:

* ``run.json`` - kind ``training-run``, the configuration that identifies it (training settings
  and the identity of the data store), completeness and the last validation metrics;
* ``model.safetensors`` - the checkpoint (:mod:`climdiff.checkpoint`): trained weights and the
  EMA weights used for sampling, with normalisation, grid, variable and provenance; rewritten at
  every checkpoint interval so a partly trained model can be tried;
* ``state.safetensors`` - everything needed to continue (weights, EMA, optimiser, step), written
  atomically at the same interval;
* ``metrics.jsonl`` / ``metrics.csv`` / ``loss.png``.

Resume follows the rule of :mod:`climdiff.resume`. Because each example's randomness is seeded by
(seed, step, position) and batches by (seed, epoch), a resumed run continues exactly as an
uninterrupted one would: same batches, same noise, same weights.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from climdiff.checkpoint import describe_checkpoint, save_checkpoint
from climdiff.data.transforms import normalization_entry
from climdiff.errors import ClimdiffError
from climdiff.models.padding import check_grid_shape
from climdiff.models.presets import backbone_settings, build_model, config_for
from climdiff.models.unet import count_parameters
from climdiff.process_group import (
    World,
    check_batch,
    init_world,
    local_device,
    shutdown,
)
from climdiff.progress import ProgressReporter
from climdiff.resume import OutputHeader, claim_output, read_json_header, write_json_header
from climdiff.runtime import resolve_device
from climdiff.train.config import TrainConfig
from climdiff.train.ema import EMA
from climdiff.train.metrics import MetricsLog
from climdiff.train.state import load_state, save_state
from climdiff.train.tasks import Task, make_task, sample_generator

RUN_KIND = "training-run"
RUN_FILE = "run.json"
STATE_FILE = "state.safetensors"
CHECKPOINT_FILE = "model.safetensors"


def read_run_header(out: Path) -> OutputHeader | None:
    """What a training run directory says about itself, or None if it is not one."""
    return read_json_header(Path(out) / RUN_FILE)


def describe_run(out: Path) -> dict[str, Any]:
    """What `climdiff info` shows about a training run: its record and its (verified) checkpoint."""
    return {
        "run": json.loads((Path(out) / RUN_FILE).read_text()),
        "checkpoint": describe_checkpoint(Path(out) / CHECKPOINT_FILE),
    }


def _write_run(out: Path, config: dict[str, Any], complete: bool, **extra: Any) -> None:
    write_json_header(out / RUN_FILE, RUN_KIND, config, complete, **extra)


@functools.lru_cache(maxsize=2)
def _epoch_order(seed: int, epoch: int, n_examples: int) -> torch.Tensor:
    """The epoch's seeded permutation of the examples (computed once per epoch)."""
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
    return torch.randperm(n_examples, generator=generator)


def _batch_indices(config: TrainConfig, step: int, steps_per_epoch: int, n_examples: int) -> list[int]:
    """The global batch of ``step``: a slice of the epoch's seeded permutation."""
    epoch, position = divmod(step, steps_per_epoch)
    start = position * config.batch_size
    return _epoch_order(config.seed, epoch, n_examples)[start : start + config.batch_size].tolist()


def _checkpoint_meta(
    task: Task, config: TrainConfig, data: Path, step: int, total: int, command: str
) -> dict[str, Any]:
    frames = task.train_frames
    return {
        "normalization": normalization_entry(frames.transform, frames.variable, frames.stats),
        "grid": frames.grid,
        "variable": {"name": frames.variable, "units": frames.units},
        "calendar": frames.calendar,
        "provenance": {
            "data": str(Path(data).resolve()),
            "data_config": frames.store_config,
            "train": config.to_dict(),
            "step": step,
            "steps": total,
            "command": command,
        },
    }


def train_model(
    config: TrainConfig,
    data: Path,
    out: Path,
    *,
    device: str = "auto",
    overwrite: bool = False,
    quiet: bool = False,
    command: str = "",
    after_checkpoint: Callable[[int], None] | None = None,
) -> Path:
    """Train (or resume, or finish) one model; returns the run directory.

    ``after_checkpoint`` is called with the step after every checkpoint (tests use it to stop a
    run at a known point).
    """
    out = Path(out)
    target_device = resolve_device(device)
    world = init_world(target_device)
    dev = local_device(target_device, world)
    try:
        task = make_task(config, data)
        plan = _plan(task, config, world)  # every refusal comes before anything is written
        identity = {"train": config.identity(), "data": task.train_frames.store_config}
        resume = False
        if world.is_main:
            resume = claim_output(
                out,
                kind=RUN_KIND,
                config=identity,
                overwrite=overwrite,
                header=read_run_header(out),
                noun="training run",
            )
            out.mkdir(exist_ok=True)
            if not resume:
                _write_run(out, identity, complete=False)
        world.barrier()
        return _fit(task, config, plan, identity, data, out, dev, world, quiet, command, after_checkpoint)
    finally:
        shutdown(world)


@dataclass(frozen=True)
class _Plan:
    """What a run's settings and data imply, worked out (and refused) before the run writes anything."""

    local_batch: int
    steps_per_epoch: int
    total: int
    model_cfg: dict[str, Any]


def _plan(task: Task, config: TrainConfig, world: World) -> _Plan:
    local_batch = check_batch(config.batch_size, world)
    n_examples = len(task.train_set)
    steps_per_epoch = n_examples // config.batch_size
    if steps_per_epoch == 0:
        raise ClimdiffError(
            f"the training split has {n_examples} examples, fewer than one batch of {config.batch_size}"
        )
    grid = task.train_frames.shape[-2:]
    if config.crop is not None and config.crop > min(grid):
        raise ClimdiffError(f"crop {config.crop} is larger than the {' x '.join(map(str, grid))} grid")
    total = config.steps if config.steps is not None else config.epochs * steps_per_epoch
    model_cfg = config_for(
        config.kind,
        config.preset,
        channels=task.train_frames.channels,
        padding=task.train_frames.grid["kind"],
        **{**task.model_settings(), **config.model},
    )
    backbone = backbone_settings(model_cfg)
    try:
        check_grid_shape(grid, len(backbone["channel_mult"]), backbone["padding"])
    except ValueError as err:
        raise ClimdiffError(str(err)) from None
    return _Plan(local_batch, steps_per_epoch, total, model_cfg)


def _fit(
    task: Task,
    config: TrainConfig,
    plan: _Plan,
    identity: dict[str, Any],
    data: Path,
    out: Path,
    device: torch.device,
    world: World,
    quiet: bool,
    command: str,
    after_checkpoint: Callable[[int], None] | None,
) -> Path:
    local_batch, steps_per_epoch, total = plan.local_batch, plan.steps_per_epoch, plan.total
    n_examples = len(task.train_set)
    torch.manual_seed(config.seed)
    raw = build_model(config.kind, plan.model_cfg).to(device)
    ema = EMA(raw, config.ema_decay)
    optimizer = torch.optim.AdamW(raw.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    log = MetricsLog(out)
    step = 0
    if (out / STATE_FILE).exists():
        state = load_state(out / STATE_FILE)
        raw.load_state_dict(state["model"])
        ema.model.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
    if world.is_main:
        log.truncate(step)
    model: nn.Module = DistributedDataParallel(raw) if world.size > 1 else raw
    amp = config.amp and device.type == "cuda"

    last_metrics: dict[str, Any] = {}
    running, running_n, t_log = 0.0, 0, time.perf_counter()
    with ProgressReporter(
        f"train {config.kind} ({count_parameters(raw) / 1e6:.2f} M params)",
        total,
        unit="steps",
        rate_label="steps/s",
        quiet=quiet or not world.is_main,
        completed=step,
    ) as progress:
        while step < total:
            model.train()
            epoch = step // steps_per_epoch
            task.set_epoch(epoch)
            indices = _batch_indices(config, step, steps_per_epoch, n_examples)
            mine = slice(world.rank * local_batch, (world.rank + 1) * local_batch)
            batch = task.batch("train", indices[mine]).to(device)
            generators = [sample_generator(config.seed, step, p) for p in range(config.batch_size)[mine]]
            for group in optimizer.param_groups:
                group["lr"] = config.lr * min(1.0, (step + 1) / max(config.warmup_steps, 1))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = task.losses(model, batch, generators).mean()
            if not torch.isfinite(loss.detach()):
                raise ClimdiffError(f"training diverged at step {step} (loss {float(loss)}); try a smaller lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(raw.parameters(), config.grad_clip)
            optimizer.step()
            ema.update(raw, step)
            step += 1
            running += loss.detach().item()
            running_n += 1

            validate_now = step % config.val_every == 0 or step == total
            if step % config.log_every == 0 or validate_now:
                elapsed = time.perf_counter() - t_log
                record = {
                    "step": step,
                    "epoch": epoch,
                    "train_loss": world.mean(running / running_n, device),
                    "lr": optimizer.param_groups[0]["lr"],
                    "steps_per_s": running_n / elapsed,
                }
                if validate_now:
                    if world.is_main:
                        last_metrics = task.validate(ema.model, device)
                        record.update(last_metrics)
                    world.barrier()
                if world.is_main:
                    log.append(record)
                progress.advance(running_n, rate=running_n / elapsed)
                running, running_n, t_log = 0.0, 0, time.perf_counter()

            if step % config.checkpoint_every == 0 or step == total:
                if world.is_main:
                    save_checkpoint(
                        out / CHECKPOINT_FILE,
                        raw,
                        _checkpoint_meta(task, config, data, step, total, command),
                        ema=ema.model,
                    )
                    save_state(
                        out / STATE_FILE,
                        {
                            "model": raw.state_dict(),
                            "ema": ema.model.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "step": step,
                        },
                    )
                    log.render()
                world.barrier()
                if after_checkpoint is not None:
                    after_checkpoint(step)

    if world.is_main:
        _write_run(out, identity, complete=True, steps=total, parameters=count_parameters(raw), validation=last_metrics)
    return out

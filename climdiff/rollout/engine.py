"""`climdiff emulate`: the autoregressive rollout, one new day per sampling call.

Each member is an independent chain: day n+1 is drawn by the EDM sampler, guided by the
discriminator conditioned on days n and n-1 (or by the VDM conditioned on them), starting from
two initial days. Members are batched; each has its own generator, so a member's days do not
depend on the batch size or on which members share its batch. Days are buffered one time chunk
at a time and written with the member's resume state (:mod:`climdiff.rollout.writer`): memory
does not grow with the run length, and re-running an interrupted command continues bit for bit.

Stability: every drawn day is checked for non-finite values and for values beyond
``blowup_factor`` times the largest excursion of the training data; a failing day is drawn
again with fresh noise up to ``max_redraws`` times, after which the member stops (its later
days stay NaN). Every event is recorded per member in the store. The day loop itself is
:mod:`climdiff.rollout.blocks`, shared with forecast mode; what draws a day is a
:mod:`~climdiff.rollout.steppers` day stepper.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cftime
import torch

from climdiff import __version__
from climdiff.bundle import Bundle
from climdiff.data.transforms import describe, transform_from_normalization
from climdiff.errors import ClimdiffError
from climdiff.metadata import field_attrs, grid_coordinates
from climdiff.process_group import init_world, local_device, shutdown
from climdiff.progress import ProgressReporter
from climdiff.resume import claim_output
from climdiff.rollout.blocks import Block, BlockRules, run_blocks
from climdiff.rollout.calendar import add_days, parse_date, time_units
from climdiff.rollout.policy import chains_per_call
from climdiff.rollout.steppers import DayStepper, day_stepper
from climdiff.rollout.writer import (
    EMULATION_KIND,
    MEAN_PERIODS,
    EmulationStore,
    MemberState,
    StoreLayout,
)
from climdiff.runtime import resolve_device
from climdiff.sampling.config import SamplerConfig
from climdiff.seeding import keyed_generator
from climdiff.zarr_io import read_header


@dataclass(frozen=True)
class EmulateConfig:
    """Everything that identifies an emulation (compared on resume), but the batch size."""

    days: int
    members: int = 1
    seed: int = 0
    start: str | None = None
    time_chunk: int = 365
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    max_redraws: int = 3
    blowup_factor: float = 3.0
    device: str = "cpu"
    zarr_format: int = 3
    means: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ClimdiffError(f"the run must have at least one day, got {self.days}")
        if self.members < 1:
            raise ClimdiffError(f"--members must be positive, got {self.members}")
        if self.time_chunk < 1 or self.max_redraws < 0 or self.blowup_factor <= 1:
            raise ClimdiffError("need --time-chunk >= 1, max_redraws >= 0 and blowup_factor > 1")
        if self.zarr_format not in (2, 3):
            raise ClimdiffError(f"--zarr-format must be 2 or 3, got {self.zarr_format}")
        unknown = sorted(set(self.means) - set(MEAN_PERIODS))
        if unknown:
            raise ClimdiffError(f"unknown --means {', '.join(unknown)} (choose from {', '.join(MEAN_PERIODS)})")

    def identity(self, bundle: Bundle) -> dict[str, Any]:
        out = asdict(self)
        out["sampler"] = self.sampler.to_dict()
        if not self.means:  # identities of runs without means read as before the option existed
            del out["means"]
        out["bundle_sha256"] = bundle.meta["bundle_sha256"]
        return out


@dataclass
class EmulationResult:
    path: Path
    days: int
    members: int
    stopped: dict[int, int]
    redraws: dict[int, int]


def value_limit(bundle: Bundle, factor: float) -> float:
    """Largest acceptable |value| in model space: factor x the training data's largest excursion."""
    return factor * transform_from_normalization(bundle.meta["normalization"]).excursion()


def store_layout(bundle: Bundle, zarr_format: int) -> StoreLayout:
    """The bundle's field, grid (coordinates in domain units) and calendar, as stores lay them out."""
    coords, coord_attrs = grid_coordinates(bundle.meta["grid"])
    variable = bundle.meta["variable"]
    return StoreLayout(
        variable=variable["name"],
        variable_attrs={
            **field_attrs(variable),
            "climdiff_transform": describe(transform_from_normalization(bundle.meta["normalization"])),
        },
        calendar=bundle.meta["calendar"],
        coords=coords,
        coord_attrs=coord_attrs,
        frame_shape=tuple(bundle.initial_state.shape[1:]),
        zarr_format=zarr_format,
    )


def first_day(bundle: Bundle, start: str | None) -> cftime.datetime:
    """The date of the first generated day: ``start``, or the day after the initial state."""
    calendar = bundle.meta["calendar"]
    if start:
        return parse_date(start, calendar)
    return add_days(parse_date(bundle.initial_dates[-1][:10], calendar), 1)


def provenance(bundle: Bundle, config: EmulateConfig, command: str, stepper: DayStepper, ranks: int) -> dict[str, Any]:
    """Global attributes every rollout store carries: what made it, with which settings."""
    return {
        "title": f"climdiff emulation ({bundle.meta['mode']}) with bundle {bundle.meta['name']}",
        "Conventions": "CF-1.10",
        "history": command,
        "bundle_sha256": bundle.meta["bundle_sha256"],
        "sampler": config.sampler.to_dict(),
        "guidance_lambda": config.sampler.guidance,
        "seed": config.seed,
        "climdiff_version": __version__,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "guidance_thread": stepper.guidance_thread,
        "device": str(stepper.device),
        "ranks": ranks,
    }


def _create_store(
    bundle: Bundle,
    out: Path,
    config: EmulateConfig,
    identity: dict[str, Any],
    command: str,
    stepper: DayStepper,
    world_size: int,
) -> EmulationStore:
    return EmulationStore.create(
        out,
        store_layout(bundle, config.zarr_format),
        config=identity,
        members=config.members,
        days=config.days,
        time_units=time_units(first_day(bundle, config.start)),
        time_chunk=config.time_chunk,
        attrs={**provenance(bundle, config, command, stepper, world_size), "initial_dates": bundle.initial_dates},
    )


def emulate(
    bundle: Bundle,
    out: Path,
    config: EmulateConfig,
    *,
    batch: int | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    command: str = "",
    after_commit: Callable[[int], None] | None = None,
    concurrent_guide: bool = False,
) -> EmulationResult:
    """Run (or resume, or refuse) an emulation into ``out``; ``after_commit`` gets the lowest
    committed day count after every block (tests stop runs with it); ``concurrent_guide`` runs
    the guidance on a thread of its own (:class:`~climdiff.rollout.steppers.GuidedStepper`). Any
    bundle rolls out: guided, unguided or VDM (:func:`~climdiff.rollout.steppers.day_stepper`).

    Under torchrun each rank takes the members ``m`` with ``m % world_size == rank``: rank 0
    creates the store, then every rank writes its own members' chunks (disjoint files), and
    rank 0 completes the store once all are done.
    """
    out = Path(out)
    world = init_world(resolve_device(config.device))
    device = local_device(resolve_device(config.device), world)
    try:
        if tuple(bundle.initial_state.shape[1:2]) != (1,):
            raise ClimdiffError("emulate writes one variable per bundle; this bundle has several channels")
        batch = chains_per_call(config.members, batch)
        identity = config.identity(bundle)
        stepper = day_stepper(bundle, config.sampler, device, guide_thread=concurrent_guide)
        if world.is_main:
            header = read_header(out)
            if not claim_output(out, kind=EMULATION_KIND, config=identity, overwrite=overwrite, header=header):
                _create_store(bundle, out, config, identity, command, stepper, world.size)
        world.barrier()
        store = EmulationStore.open(out, bundle.meta["variable"]["name"], tuple(bundle.initial_state.shape[1:]))
        mine = [m for m in range(config.members) if m % world.size == world.rank]
        _run_members(bundle, store, config, stepper, mine, batch, quiet or not world.is_main, after_commit)
        world.barrier()
        redraws = {m: int(v) for m, v in enumerate(store.group["redraws"][:]) if v}
        stopped = {m: int(v) for m, v in enumerate(store.group["stopped_day"][:]) if v >= 0}
        if world.is_main:
            for period in config.means:
                store.write_means(period)
            store.finish(stopped_members=len(stopped), total_redraws=sum(redraws.values()))
        world.barrier()
        return EmulationResult(out, config.days, config.members, stopped, redraws)
    finally:
        shutdown(world)


def _run_members(
    bundle: Bundle,
    store: EmulationStore,
    config: EmulateConfig,
    stepper: DayStepper,
    members: list[int],
    batch: int,
    quiet: bool,
    after_commit: Callable[[int], None] | None,
) -> None:
    """Advance ``members`` to the end, block by block (a block = the members furthest behind, up to
    the end of their time chunk)."""
    transform = transform_from_normalization(bundle.meta["normalization"])
    initial = transform.forward(bundle.initial_state)
    states = {m: store.load_state(m) or MemberState(initial.clone(), keyed_generator(config.seed, m)) for m in members}
    rules = BlockRules(batch, value_limit(bundle, config.blowup_factor), config.max_redraws, transform)
    done = sum(s.days_done for s in states.values())
    with ProgressReporter(
        f"emulate {len(members)} member(s)",
        config.days * len(members),
        unit="member-days",
        rate_label="SYPD",
        quiet=quiet,
        completed=done,
    ) as progress:
        commit = None if after_commit is None else lambda: after_commit(min(s.days_done for s in states.values()))
        blocks = member_blocks(states, config.days, config.time_chunk, first_day(bundle, config.start))
        run_blocks(stepper, blocks, store, rules, progress, commit)


def member_blocks(
    states: dict[int, MemberState], days: int, time_chunk: int, origin: cftime.datetime
) -> Iterator[Block]:
    """The members furthest behind, from where they stand to the end of that time chunk, until all
    are done (made as the loop goes: each block starts where the previous ones left the states);
    every member's day 0 falls on ``origin``."""
    while True:
        todo = [m for m in states if states[m].days_done < days]
        if not todo:
            return
        first = min(states[m].days_done for m in todo)
        cohort = [m for m in todo if states[m].days_done == first]
        stop = min(days, (first // time_chunk + 1) * time_chunk)
        yield Block(cohort, [states[m] for m in cohort], first, stop, [origin] * len(cohort))

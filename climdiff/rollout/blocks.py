"""The block loop every rollout runs: chains advanced together over a range of days, then written.

A *block* is a set of chains (emulation members, or forecast (start, member) pairs) that all stand at
day ``first`` and advance to day ``stop``. Each day, the running chains are drawn in batches of at
most ``batch`` by a :class:`~climdiff.rollout.steppers.DayStepper`, every drawn day is checked for
blow-up (:func:`draw_checked`), and the block's days (physical units) go to the store in one piece,
with the chains' resume states, through :class:`~climdiff.rollout.writer.RolloutWriter`. Emulation and
forecast mode differ only in which blocks they make and how their store files them.

Each chain also carries the date of its day index 0 (``Block.origins``), from which the loop gives a
date-conditioned stepper (``needs_date``) the year fraction of every day it draws.

Batches are cut from the block's chains in order before stopped chains are left out, so a chain's
batch-mates do not change when another chain stops (the layout a resumed run repeats).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cftime
import numpy as np
import torch

from climdiff.data.seasons import year_fraction
from climdiff.data.transforms import Transform
from climdiff.progress import ProgressReporter
from climdiff.rollout.steppers import DayStepper
from climdiff.rollout.writer import MemberState, RolloutWriter


@dataclass
class Block:
    """Chains ``chains`` (their states in the same order) to advance from day ``first`` to ``stop``;
    ``origins[i]`` is the date of chain i's day 0 (day ``d`` falls ``d`` days later)."""

    chains: Sequence[Any]  # keys the store files the chains under (members; forecast (start, member) pairs)
    states: list[MemberState]
    first: int
    stop: int
    origins: Sequence[cftime.datetime]

    def year_fractions(self, chains: Sequence[int], day: int) -> torch.Tensor:
        """The year fraction of day ``day`` of each of the block's chains ``chains`` (positions)."""
        step = datetime.timedelta(days=day)
        return torch.from_numpy(year_fraction([self.origins[i] + step for i in chains]))


@dataclass(frozen=True)
class BlockRules:
    """How blocks are drawn: chains per sampling call, the blow-up check, the model-to-physical transform."""

    batch: int
    limit: float
    max_redraws: int
    transform: Transform


def run_blocks(
    stepper: DayStepper,
    blocks: Iterable[Block],
    writer: RolloutWriter,
    rules: BlockRules,
    progress: ProgressReporter,
    after_block: Callable[[], None] | None = None,
) -> None:
    """Advance and write every block in turn (``blocks`` may be made lazily from the states the previous
    blocks left); ``after_block`` runs once each block is on disk."""
    for block in blocks:
        writer.write_chains(block.chains, block.first, advance(stepper, block, rules, progress), block.states)
        if after_block is not None:
            after_block()


def advance(stepper: DayStepper, block: Block, rules: BlockRules, progress: ProgressReporter) -> np.ndarray:
    """The block's days ``(chains, stop - first, H, W)`` in physical units (NaN after a chain stops);
    its states end at ``stop``."""
    states = block.states
    frame = tuple(states[0].last.shape[2:])
    values = np.full((len(states), block.stop - block.first, *frame), np.nan, dtype=np.float32)
    for day in range(block.first, block.stop):
        t0 = time.perf_counter()
        for lo in range(0, len(states), rules.batch):
            running = [i for i in range(lo, min(lo + rules.batch, len(states))) if not states[i].stopped]
            if running:
                doy = block.year_fractions(running, day) if stepper.needs_date else None
                new = draw_checked(stepper, [states[i] for i in running], day, rules.limit, rules.max_redraws, doy)
                for i, x in zip(running, new, strict=True):
                    if x is not None:
                        values[i, day - block.first] = rules.transform.inverse(x[0]).numpy()
        # simulated chain-years per wall-clock day (shown where the reporter has a rate label)
        progress.advance(len(states), rate=len(states) / 365.0 / (time.perf_counter() - t0) * 86400.0)
    for state in states:
        state.days_done = block.stop
    return values


def draw_checked(
    stepper: DayStepper,
    states: list[MemberState],
    day: int,
    limit: float,
    max_redraws: int,
    doy: torch.Tensor | None = None,
) -> list[torch.Tensor | None]:
    """One day (C, H, W) for each chain (at year fractions ``doy``, for a stepper that needs the
    date), drawn again with fresh noise while it fails the stability check; a chain that still
    fails after ``max_redraws`` stops (None)."""
    result: list[torch.Tensor | None] = [None] * len(states)
    pending = list(range(len(states)))
    for attempt in range(max_redraws + 1):
        if attempt > 0:
            for i in pending:
                states[i].redraws += 1
        dates = None if doy is None else doy[pending]
        x = stepper(torch.stack([states[i].last for i in pending]), [states[i].generator for i in pending], dates)
        ok = torch.isfinite(x).flatten(1).all(1) & (x.abs().flatten(1).amax(1) <= limit)
        for j, i in enumerate(pending):
            if bool(ok[j]):
                result[i] = x[j]
                states[i].last = torch.stack([states[i].last[1], x[j]])
        pending = [i for j, i in enumerate(pending) if not bool(ok[j])]
        if not pending:
            break
    for i in pending:
        states[i].stopped_day = day
    return result

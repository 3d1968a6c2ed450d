"""The resumable producer behind every `climdiff data` generator: a solver run into a training store.

A generator (the turbulence solver, the lat-lon moisture model) supplies a :class:`Simulation`:
something that advances a model, emits one stored frame at a time and round-trips its whole
state through arrays. This module owns everything else, once:

* the resume rule (:func:`climdiff.resume.claim_output`) and the store's creation or reopening;
* a discarded spin-up, then frames, committed one Zarr time chunk at a time (chunks aligned, so
  every chunk file is written once); after each commit the source's state plus the step and
  frame counters are saved atomically (see :mod:`climdiff.data.store`), so an interrupted run
  resumes exactly where it stopped and gives, bit for bit, the store an uninterrupted run gives;
* a blow-up check after every frame that keeps every committed frame;
* the progress bar, and the training statistics and split written at completion.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from climdiff.data.splits import split_counts
from climdiff.data.statistics import field_statistics
from climdiff.data.store import TRAINING_KIND, AppendableStore, TimeVariable
from climdiff.errors import ClimdiffError, SolverError
from climdiff.metadata import COUNTER_DTYPE
from climdiff.progress import ProgressReporter
from climdiff.resume import claim_output
from climdiff.zarr_io import read_header

CALENDAR = "noleap"
TIME_UNITS = "days since 0001-01-01 00:00:00"


def day_time_variable() -> TimeVariable:
    """The ``time`` coordinate of a training store: frame ``n`` is day ``n`` of a noleap calendar."""
    return TimeVariable(
        "time",
        dtype=COUNTER_DTYPE,
        attrs={"standard_name": "time", "units": TIME_UNITS, "calendar": CALENDAR, "axis": "T"},
    )


class Simulation(Protocol):
    """A model that a :func:`produce_store` run drives."""

    def spin_up(self, step: int, steps: int) -> None:
        """Advance ``steps`` time steps, from time step ``step``, whose output is discarded."""

    def next_frame(self, frame: int, step: int) -> dict[str, np.ndarray]:
        """Advance to the next stored frame (number ``frame``, ending at time step ``step``) and return
        the values of every time-dimensioned array of the store for it."""

    def failure(self, step: int) -> str | None:
        """Why the current state is unusable, or None when it is healthy.

        Phrased to follow "the solver blew up", e.g. "(non-finite vorticity) at step 9; try a smaller --dt".
        """

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The whole model state (random generator included), enough to continue bit for bit."""


@dataclass(frozen=True)
class Production:
    """The shape of a run: frames, steps between frames, discarded spin-up, chunking and split."""

    variable: str
    frames: int
    steps_per_frame: int
    spinup_steps: int
    chunk: int
    split: tuple[float, float, float]
    split_block: int = 1  # split boundaries on multiples of this many frames (see split_counts)

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ClimdiffError(f"the number of frames must be positive, got {self.frames}")
        if self.chunk < 1:
            raise ClimdiffError(f"--chunk must be positive, got {self.chunk}")
        split_counts(self.frames, self.split)  # validates the fractions

    @property
    def total_steps(self) -> int:
        return self.spinup_steps + self.frames * self.steps_per_frame


def run_generator(seed: int, arrays: dict[str, np.ndarray] | None) -> torch.Generator:
    """A run's CPU random generator: seeded afresh, or as saved (``arrays["rng"]``) at the last commit."""
    generator = torch.Generator(device="cpu")
    if arrays is None:
        return generator.manual_seed(seed)
    generator.set_state(torch.from_numpy(arrays["rng"]))
    return generator


def runtime_attrs() -> dict[str, Any]:
    """Store attributes that bit-identical resume depends on (checked by :func:`produce_store`)."""
    return {"torch_version": torch.__version__, "threads": torch.get_num_threads()}


def produce_store(
    out: Path,
    *,
    config: dict[str, Any],
    production: Production,
    create: Callable[[Path], AppendableStore],
    source: Callable[[dict[str, np.ndarray] | None], Simulation],
    label: str,
    overwrite: bool = False,
    quiet: bool = False,
    after_commit: Callable[[int], None] | None = None,
) -> Path:
    """Write (or resume, or finish) a training store at ``out``.

    ``config`` identifies the output (compared on resume); ``create`` makes the empty store (its
    attributes should include :func:`runtime_attrs`); ``source`` builds the model from a saved
    state, or from its seed when given None. ``after_commit`` is called with the number of
    committed frames after every chunk; tests use it to interrupt a run at a known point.
    """
    out = Path(out)
    resume = claim_output(out, kind=TRAINING_KIND, config=config, overwrite=overwrite, header=read_header(out))
    if resume:
        store = AppendableStore.open(out)
        _warn_if_not_bit_reproducible(store)
    else:
        store = create(out)

    arrays = store.load_state()
    step = frames = 0
    if arrays is not None:
        step, frames = int(arrays.pop("step")), int(arrays.pop("frames"))
    model = source(arrays)
    store.truncate(frames)

    with ProgressReporter(
        label, production.total_steps, unit="steps", rate_label="steps/s", quiet=quiet, completed=step
    ) as progress:
        run = _Run(model, production, store, progress, step, frames)
        run.spin_up()
        run.produce_frames(after_commit)

    _finalize(store, production)
    return out


def _warn_if_not_bit_reproducible(store: AppendableStore) -> None:
    """Bit-identical resume needs the same thread count and torch version as the first run."""
    attrs = store.group.attrs
    current = runtime_attrs()
    started = (attrs.get("threads"), attrs.get("torch_version"))
    now = (current["threads"], current["torch_version"])
    if started != now:
        warnings.warn(
            f"resuming with {now[0]} threads and torch {now[1]} where the store was started with "
            f"{started[0]} threads and torch {started[1]}: frames agree to float tolerance, not bit for bit",
            stacklevel=3,
        )


@dataclass
class _Run:
    """Advances the source and commits to the store: spin-up first, then frames."""

    model: Simulation
    production: Production
    store: AppendableStore
    progress: ProgressReporter
    step: int
    frames: int

    def _commit_state(self) -> None:
        self.store.save_state(
            {**self.model.state_arrays(), "step": np.int64(self.step), "frames": np.int64(self.frames)}
        )

    def _check(self) -> None:
        problem = self.model.failure(self.step)
        if problem is not None:
            raise SolverError(
                f"the solver blew up {problem}. The {len(self.store)} frames already in {self.store.path} are "
                "kept (use --overwrite to start again with other settings)"
            )

    def spin_up(self) -> None:
        """Discarded spin-up, committed at the same cadence as frames so it is resumable too."""
        p = self.production
        commit_every = p.chunk * p.steps_per_frame
        while self.step < p.spinup_steps:
            n = min(commit_every, p.spinup_steps - self.step)
            t0 = time.perf_counter()
            self.model.spin_up(self.step, n)
            self.step += n
            self._check()
            self._commit_state()
            self.progress.advance(n, rate=n / (time.perf_counter() - t0))

    def produce_frames(self, after_commit: Callable[[int], None] | None) -> None:
        """Frames, one Zarr time chunk per commit (chunks aligned, so each file is written once)."""
        p = self.production
        while self.frames < p.frames:
            n_frames = min(p.chunk - self.frames % p.chunk, p.frames - self.frames)
            t0 = time.perf_counter()
            records = []
            for _ in range(n_frames):
                self.step += p.steps_per_frame
                records.append(self.model.next_frame(self.frames, self.step))
                self._check()
                self.frames += 1
            self.store.append({name: np.stack([r[name] for r in records]) for name in records[0]})
            self._commit_state()
            steps = n_frames * p.steps_per_frame
            self.progress.advance(steps, rate=steps / (time.perf_counter() - t0))
            if after_commit is not None:
                after_commit(self.frames)


def _finalize(store: AppendableStore, production: Production) -> None:
    """Training statistics and split, then mark complete (idempotent if interrupted)."""
    counts = split_counts(production.frames, production.split, production.split_block)
    stats = field_statistics(store.path, production.variable, stop=counts["train"][1])
    store.update_meta(complete=True, split=counts, stats={production.variable: stats})
    store.drop_state()

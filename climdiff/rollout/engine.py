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
days stay NaN). Every event is recorded per member in the store.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cftime
import numpy as np
import torch

from climdiff import __version__
from climdiff.bundle import Bundle
from climdiff.data.transforms import describe, transform_from_normalization
from climdiff.errors import ClimdiffError
from climdiff.metadata import field_attrs, grid_coordinates
from climdiff.models.conditioning import conditioning
from climdiff.process_group import init_world, local_device, shutdown
from climdiff.progress import ProgressReporter
from climdiff.resume import claim_output
from climdiff.rollout.calendar import add_days, parse_date, time_units
from climdiff.rollout.policy import chains_per_call
from climdiff.rollout.writer import (
    EMULATION_KIND,
    MEAN_PERIODS,
    EmulationStore,
    MemberState,
    StoreLayout,
)
from climdiff.runtime import resolve_device
from climdiff.sampling.config import SamplerConfig
from climdiff.sampling.edm import edm_sample
from climdiff.sampling.guidance import discriminator_guide
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


class DaySampler:
    """Draws day n+1 for a batch of members from their last two days (model space).

    On the CPU the networks run as TorchScript traces, one per input shape (made on first use):
    for the small default model a batch-1 call is dominated by Python's per-operation overhead,
    which the trace removes (1.5x for the IDM, 1.3x for the discriminator's forward and
    backward). The traces run with TorchScript's graph optimisation off: the optimising
    executor switches graphs after its first profiled calls, so a resumed run (whose first
    calls fall on other days) would not be bit-identical to an uninterrupted one. They run the
    same operations as the eager networks and agree with them (tests check both).
    ``trace=False`` keeps the networks eager, and so does any model that cannot be traced
    (with a warning).

    ``concurrent=True`` runs the discriminator's guidance on a second thread while the IDM runs
    on this one (:func:`~climdiff.sampling.edm.edm_sample`): with one intra-op thread each, the
    two networks of a guided step occupy two cores, with results identical to sequential runs.
    CPU only: on a GPU both would queue on one stream anyway.
    """

    def __init__(self, bundle: Bundle, sampler: SamplerConfig, device: torch.device, trace: bool | None = None,
                 concurrent: bool = False) -> None:  # fmt: skip
        self.models = {kind: model.to(device).eval() for kind, model in bundle.models.items()}
        self.sampler = sampler
        self.device = device
        self.trace = device.type == "cpu" if trace is None else trace
        self._traced: dict[tuple[str, tuple[int, ...]], Callable[..., torch.Tensor]] = {}
        use_pool = concurrent and device.type == "cpu" and sampler.guidance > 0 and "vdm" not in self.models
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="climdiff-guide") if use_pool else None
        if sampler.guidance > 0 and "disc" not in self.models:
            raise ClimdiffError("guidance needs a discriminator, and this bundle has none (use --guidance 0)")

    @property
    def guidance_thread(self) -> bool:
        """Whether the guidance runs on a thread of its own (recorded in the store)."""
        return self.executor is not None

    def network(self, kind: str, *inputs: torch.Tensor) -> Callable[..., torch.Tensor]:
        """The model ``kind`` for inputs of these shapes: traced once per shape, else eager."""
        model = self.models[kind]
        if not self.trace:
            return model
        key = (kind, *(tuple(t.shape) for t in inputs))
        if key not in self._traced:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the tracer's notes on shape checks baked in per shape
                    self._traced[key] = torch.jit.trace(model, inputs, check_trace=False)
            except Exception as err:  # noqa: BLE001 - any model the tracer cannot handle runs eagerly
                warnings.warn(f"running the {kind} eagerly: it could not be traced ({err})", stacklevel=2)
                self.trace = False
                return model
        return self._traced[key]

    def __call__(self, last: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        last = last.to(self.device)
        cond = conditioning(previous=last[:, 0], current=last[:, 1])
        x0, s0 = last[:, 1], torch.ones(len(last), device=self.device)
        if "vdm" in self.models:
            with torch.no_grad():
                vdm = self.network("vdm", x0, s0, cond)
            denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = lambda x, s: vdm(x, s, cond)  # noqa: E731
        else:
            with torch.no_grad():
                idm = self.network("idm", x0, s0)
            denoiser = lambda x, s: idm(x, s)  # noqa: E731
        guide = None
        if self.sampler.guidance > 0:
            logit_grad = discriminator_guide(self.network("disc", x0, s0, cond), cond, self.sampler.logit_clip)

            def guide(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
                with torch.jit.optimized_execution(False):  # a thread-local flag: set it on the guide's thread too
                    return logit_grad(x, s)

        with torch.no_grad(), torch.jit.optimized_execution(False):
            return edm_sample(denoiser, last[:, 1].shape, generators, self.sampler, guide, device=self.device,
                              executor=self.executor).cpu()  # fmt: skip


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


def provenance(bundle: Bundle, config: EmulateConfig, command: str, device: torch.device, ranks: int,
               concurrent_guide: bool) -> dict[str, Any]:  # fmt: skip
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
        "guidance_thread": concurrent_guide,
        "device": str(device),
        "ranks": ranks,
    }


def _create_store(bundle: Bundle, out: Path, config: EmulateConfig, identity: dict[str, Any], command: str,
                  device: torch.device, world_size: int, concurrent_guide: bool) -> EmulationStore:  # fmt: skip
    return EmulationStore.create(
        out,
        store_layout(bundle, config.zarr_format),
        config=identity,
        members=config.members,
        days=config.days,
        time_units=time_units(first_day(bundle, config.start)),
        time_chunk=config.time_chunk,
        attrs={**provenance(bundle, config, command, device, world_size, concurrent_guide),
               "initial_dates": bundle.initial_dates},  # fmt: skip
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
    the guidance on a thread of its own (:class:`DaySampler`).

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
        sample = DaySampler(bundle, config.sampler, device, concurrent=concurrent_guide)
        if world.is_main:
            header = read_header(out)
            if not claim_output(out, kind=EMULATION_KIND, config=identity, overwrite=overwrite, header=header):
                _create_store(bundle, out, config, identity, command, device, world.size, sample.guidance_thread)
        world.barrier()
        store = EmulationStore.open(out, bundle.meta["variable"]["name"], tuple(bundle.initial_state.shape[1:]))
        mine = [m for m in range(config.members) if m % world.size == world.rank]
        _run_members(bundle, store, config, sample, mine, batch, quiet or not world.is_main, after_commit)
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
    sample: DaySampler,
    members: list[int],
    batch: int,
    quiet: bool,
    after_commit: Callable[[int], None] | None,
) -> None:
    """Advance ``members`` to the end, block by block (a block = one time chunk)."""
    transform = transform_from_normalization(bundle.meta["normalization"])
    initial = transform.forward(bundle.initial_state)
    states = {m: store.load_state(m) or MemberState(initial.clone(), keyed_generator(config.seed, m)) for m in members}
    limit = value_limit(bundle, config.blowup_factor)
    frame = tuple(bundle.initial_state.shape[2:])
    done = sum(s.days_done for s in states.values())
    with ProgressReporter(
        f"emulate {len(members)} member(s)", config.days * len(members), unit="member-days",
        rate_label="SYPD", quiet=quiet, completed=done,
    ) as progress:  # fmt: skip
        while True:
            todo = [m for m in members if states[m].days_done < config.days]
            if not todo:
                break
            first = min(states[m].days_done for m in todo)
            cohort = [m for m in todo if states[m].days_done == first]
            stop = min(config.days, (first // config.time_chunk + 1) * config.time_chunk)
            block = np.full((len(cohort), stop - first, *frame), np.nan, dtype=np.float32)
            for day in range(first, stop):
                t0 = time.perf_counter()
                for lo in range(0, len(cohort), batch):
                    running = [m for m in cohort[lo : lo + batch] if not states[m].stopped]
                    if running:
                        new = draw_checked(sample, [states[m] for m in running], day, limit, config.max_redraws)
                        for m, x in zip(running, new, strict=True):
                            if x is not None:
                                block[cohort.index(m), day - first] = transform.inverse(x[0]).numpy()
                # simulated member-years per wall-clock day
                progress.advance(len(cohort), rate=len(cohort) / 365.0 / (time.perf_counter() - t0) * 86400.0)
            for i, m in enumerate(cohort):
                states[m].days_done = stop
                store.write_block(m, first, block[i], states[m])
            if after_commit is not None:
                after_commit(min(s.days_done for s in states.values()))


def draw_checked(
    sample: DaySampler, states: list[MemberState], day: int, limit: float, max_redraws: int
) -> list[torch.Tensor | None]:
    """One day (C, H, W) for each member, drawn again with fresh noise while it fails the
    stability check; a member that still fails after ``max_redraws`` stops (None)."""
    result: list[torch.Tensor | None] = [None] * len(states)
    pending = list(range(len(states)))
    for attempt in range(max_redraws + 1):
        if attempt > 0:
            for i in pending:
                states[i].redraws += 1
        x = sample(torch.stack([states[i].last for i in pending]), [states[i].generator for i in pending])
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

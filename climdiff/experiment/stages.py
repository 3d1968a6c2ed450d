"""`climdiff experiment compare`: guided IDM, unguided IDM and VDM, trained, rolled out and
evaluated under one protocol, stage by stage.

Every stage writes its output through the resumable library function behind a command
(``train_model``, ``make_bundle``, ``emulate``, ``forecast``, ``evaluate``), into one folder::

    DIR/experiment.json               the protocol, and which stages are complete (with their wall time)
    DIR/runs/{idm,disc,vdm}/          training runs (absent for runs given with --idm/--disc/--vdm)
    DIR/bundles/{guided,unguided,vdm}.bundle
    DIR/forecasts/{method}.zarr       forecast ensembles from the test split
    DIR/rollouts/{method}.zarr        long runs from the start of the test split
    DIR/rollouts/{method}-century.zarr   century runs (guided and VDM)
    DIR/evaluation/{forecasts,climate,century}/   `climdiff evaluate` folders, against the test split
    DIR/report.md, DIR/results.json

A stage counts as done when ``experiment.json`` lists it or when its output says it is complete
(a kill between the two), and is then skipped; an unfinished stage is resumed by its library
function, which continues bit for bit. So re-running the same command after an interruption
continues where it stopped, and the numbers equal those of an uninterrupted run.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from climdiff.bundle import load_bundle, make_bundle, read_bundle_header
from climdiff.data.store import open_training_store
from climdiff.errors import ClimdiffError
from climdiff.evaluate.core import Settings
from climdiff.evaluate.runner import evaluate, read_evaluation_header
from climdiff.evaluate.temporal import LAGS
from climdiff.experiment.cost import require_trained_run
from climdiff.experiment.layout import FOLDERS, Layout
from climdiff.experiment.protocol import METHODS, CompareProtocol
from climdiff.experiment.report import write_report
from climdiff.models.presets import MODEL_KINDS
from climdiff.resume import claim_output, is_complete, read_json_header, remove_output, write_json_header
from climdiff.rollout.calendar import days_in_years
from climdiff.rollout.engine import EmulateConfig, emulate, first_day
from climdiff.rollout.forecast import forecast, plan_forecast, spread_starts
from climdiff.rollout.policy import chains_per_call, configure_sampling_threads
from climdiff.runtime import configure_threads
from climdiff.train.config import resolve_config
from climdiff.train.loop import read_run_header, train_model
from climdiff.zarr_io import read_header, store_meta

EXPERIMENT_KIND = "experiment-compare"
RECORD_FILE = "experiment.json"


@dataclass(frozen=True)
class Stage:
    """One resumable step: its name, whether its output is already complete, and what makes it."""

    name: str
    finished: Callable[[], bool]
    run: Callable[[], Any]


@dataclass(frozen=True)
class Context:
    """What every stage needs besides the protocol."""

    data: Path
    layout: Layout
    threads: int | None
    quiet: bool
    command: str

    @property
    def protocol(self) -> CompareProtocol:
        return self.layout.protocol


def _train(ctx: Context, kind: str) -> None:
    p = ctx.protocol
    flags = {"preset": p.preset, "steps": p.train_steps[kind], "seed": p.seed}
    configure_threads(ctx.threads)
    train_model(
        resolve_config(kind, {}, flags),
        ctx.data,
        ctx.layout.run(kind),
        device=p.device,
        quiet=ctx.quiet,
        command=ctx.command,
    )


def _bundle(ctx: Context, method: str) -> None:
    p, out = ctx.protocol, ctx.layout.bundle(method)
    if out.exists():  # a bundle cut short by a kill: it is ours and cheap to make again
        remove_output(out)
    models = {"vdm": ("vdm",), "unguided": ("idm",), "guided": ("idm", "disc")}[method]
    make_bundle(out, data=ctx.data, sampler=p.sampler(), name=method, **{k: ctx.layout.run(k) for k in models})


def _rollout_config(ctx: Context, bundle: Any, members: int, years: int | None, days: int | None) -> EmulateConfig:
    p = ctx.protocol
    length = days if days is not None else days_in_years(first_day(bundle, None), years)
    return EmulateConfig(
        days=length, members=members, seed=p.seed, time_chunk=p.time_chunk, sampler=bundle.sampler, device=p.device
    )


def _guide_thread(ctx: Context, bundle: Any, chains: int) -> bool:
    """Set the threads for sampling calls of ``chains`` frames; whether guidance gets its own."""
    return configure_sampling_threads(ctx.threads, chains, tuple(bundle.initial_state.shape[1:]))


def _long(ctx: Context, method: str, out: Path, members: int, years: int | None, days: int | None) -> None:
    bundle = load_bundle(ctx.layout.bundle(method))
    config = _rollout_config(ctx, bundle, members, years, days)
    concurrent = _guide_thread(ctx, bundle, members)
    result = emulate(bundle, out, config, quiet=ctx.quiet, command=ctx.command, concurrent_guide=concurrent)
    _warn_stopped(out, len(result.stopped), "member(s)")


def _forecast(ctx: Context, method: str) -> None:
    p = ctx.protocol
    bundle = load_bundle(ctx.layout.bundle(method))
    rollout = _rollout_config(ctx, bundle, p.members, None, p.leads)
    plan = plan_forecast(bundle, ctx.data, rollout, starts=p.starts, start_dates=None)
    concurrent = _guide_thread(ctx, bundle, chains_per_call(p.members, None, forecast=True))
    out = ctx.layout.forecast(method)
    result = forecast(bundle, ctx.data, out, plan, quiet=ctx.quiet, command=ctx.command, concurrent_guide=concurrent)
    _warn_stopped(out, result.stopped, "forecast member(s)")


def _warn_stopped(out: Path, stopped: int, what: str) -> None:
    """Blow-ups are results of the comparison (the report lists them), not errors: say so and go on."""
    if stopped:
        warnings.warn(f"{out.name}: {stopped} {what} blew up and stopped; their later days are NaN", stacklevel=2)


def _evaluate(ctx: Context, name: str, runs: dict[str, Path], metrics: list[str] | None) -> None:
    p = ctx.protocol
    evaluate(
        list(runs.values()),
        ctx.data,
        ctx.layout.evaluation(name),
        labels=list(runs),
        metrics=metrics,
        split="test",
        settings=Settings(block_days=p.block_days, n_resamples=p.resamples, seed=p.seed),
        quiet=ctx.quiet,
        command=ctx.command,
    )


def plan_stages(ctx: Context) -> list[Stage]:
    """Every stage of the protocol, in order: cheap and early results first."""
    p, layout = ctx.protocol, ctx.layout
    stages = [
        Stage(
            f"train-{kind}", lambda k=kind: is_complete(read_run_header(layout.run(k))), lambda k=kind: _train(ctx, k)
        )
        for kind in MODEL_KINDS
        if kind not in p.runs
    ]
    stages += [
        Stage(f"bundle-{m}", lambda m=m: is_complete(read_bundle_header(layout.bundle(m))), lambda m=m: _bundle(ctx, m))
        for m in METHODS
    ]
    stages += [
        Stage(f"forecast-{m}", lambda m=m: is_complete(read_header(layout.forecast(m))), lambda m=m: _forecast(ctx, m))
        for m in METHODS
    ]
    runs = (
        ("rollout", METHODS, layout.long, (p.long_members, p.long_years, p.long_days)),
        ("century", p.century, layout.century, (p.century_members, p.century_years, p.century_days)),
    )
    for prefix, methods, where, length in runs:
        stages += [
            Stage(
                f"{prefix}-{m}",
                lambda m=m, w=where: is_complete(read_header(w(m))),
                lambda m=m, w=where, n=length: _long(ctx, m, w(m), *n),
            )
            for m in methods
        ]
    stages += [
        Stage(
            f"evaluate-{name}",
            lambda n=name: is_complete(read_evaluation_header(layout.evaluation(n))),
            lambda n=name, e=entry: _evaluate(ctx, n, *e),
        )
        for name, entry in layout.evaluations().items()
    ]
    return stages


def check_data(protocol: CompareProtocol, data: Path) -> None:
    """Refuse, before anything is written, a store whose test split cannot hold the protocol's
    forecasts or evaluation (rather than after hours of training)."""
    reference = open_training_store(data)
    lo, hi = store_meta(reference.attrs)["split"]["test"]
    days = hi - lo
    if days <= max(LAGS) or days < protocol.block_days:
        raise ClimdiffError(
            f"the test split of {data} has {days} days; the evaluation needs more than {max(LAGS)} "
            f"and at least --block-days ({protocol.block_days})"
        )
    spread_starts(reference, protocol.starts, protocol.leads)
    if protocol.long_days is not None and protocol.long_days <= max(LAGS):
        raise ClimdiffError(
            f"--long-days must exceed {max(LAGS)} (the autocorrelation's lags), got {protocol.long_days}"
        )
    if protocol.long_days is not None and protocol.long_days < protocol.block_days:
        raise ClimdiffError(f"--long-days {protocol.long_days} is shorter than --block-days {protocol.block_days}")


def _write_record(out: Path, config: dict[str, Any], stages: dict[str, Any], complete: bool) -> None:
    write_json_header(out / RECORD_FILE, EXPERIMENT_KIND, config, complete, stages=stages)


def read_record(out: Path) -> dict[str, Any]:
    """The experiment's ``experiment.json``."""
    return json.loads((Path(out) / RECORD_FILE).read_text())


def stage_names(protocol: CompareProtocol) -> list[str]:
    """The names of the protocol's stages, in order (what --until accepts)."""
    ctx = Context(Path(), Layout(Path(), protocol), None, True, "")
    return [stage.name for stage in plan_stages(ctx)] + ["report"]


def run_compare(
    protocol: CompareProtocol,
    data: Path,
    out: Path,
    *,
    threads: int | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    command: str = "",
    until: str | None = None,
) -> bool:
    """Run (or continue) the comparison into ``out``; stop after the stage ``until`` if given.
    Returns whether the experiment is complete (its report written)."""
    out = Path(out)
    for kind, path in protocol.runs.items():
        require_trained_run(Path(path), kind)
    names = stage_names(protocol)
    if until is not None and until not in names:
        raise ClimdiffError(f"unknown stage {until!r} for --until (the stages: {', '.join(names)})")
    check_data(protocol, data)
    config = {**protocol.to_dict(), "data": str(Path(data).resolve())}
    header = read_json_header(out / RECORD_FILE)
    resume = claim_output(
        out, kind=EXPERIMENT_KIND, config=config, overwrite=overwrite, header=header, noun="experiment"
    )
    for folder in ("", *FOLDERS):
        (out / folder).mkdir(exist_ok=True)
    done: dict[str, Any] = read_record(out)["stages"] if resume else {}
    _write_record(out, config, done, complete=False)
    ctx = Context(Path(data).resolve(), Layout(out, protocol), threads, quiet, command)
    report = Stage("report", lambda: False, lambda: write_report(ctx.layout, read_record(out)["stages"], command))
    stages = [*plan_stages(ctx), report]

    def say(text: str) -> None:
        if not quiet:
            print(f"experiment: {text}", file=sys.stderr, flush=True)

    for number, stage in enumerate(stages, 1):
        title = f"stage {number}/{len(stages)} {stage.name}"
        if stage.name in done or stage.finished():
            say(f"{title}: done earlier, skipped")
            done.setdefault(stage.name, {"seconds": None})
        else:
            say(f"{title} ...")
            began = time.perf_counter()
            stage.run()
            done[stage.name] = {"seconds": round(time.perf_counter() - began, 3)}
            say(f"{title}: done in {done[stage.name]['seconds']:.1f} s")
        complete = stage is report
        _write_record(out, config, {s.name: done[s.name] for s in stages if s.name in done}, complete=complete)
        if stage.name == until and not complete:
            say(f"stopped after {until} as asked; re-run the command without --until to continue")
            return False
    return True

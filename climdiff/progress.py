"""Progress reporting for long commands.

A rich bar when stderr is a terminal; otherwise (batch jobs, pipes, CI) plain lines at a
bounded rate so logs stay readable; nothing at all with ``--quiet``. Progress goes to stderr
so stdout stays free for machine-readable output.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PLAIN_INTERVAL_S = 10.0


class ProgressReporter:
    """One task's progress: ``advance(n, rate=...)`` as work completes.

    ``rate_label`` names the throughput shown beside the bar (e.g. "steps/s"); the caller passes
    the current value with each advance because only it knows what a unit of work costs.
    """

    def __init__(
        self,
        description: str,
        total: int,
        *,
        unit: str,
        rate_label: str = "",
        quiet: bool = False,
        completed: int = 0,
        console: Console | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.rate_label = rate_label
        self.quiet = quiet
        self.completed = completed
        self._console = console or Console(stderr=True)
        self._rich: Progress | None = None
        self._task = None
        self._start = time.monotonic()
        self._start_completed = completed
        self._last_line = 0.0
        self._rate_text = ""

    def __enter__(self) -> ProgressReporter:
        if self.quiet:
            return self
        if self._console.is_terminal:
            self._rich = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(self.unit),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self._console,
            )
            self._rich.__enter__()
            self._task = self._rich.add_task(self.description, total=self.total, completed=self.completed, rate="")
        else:
            self._line(force=True)
        return self

    def advance(self, n: int = 1, *, rate: float | None = None) -> None:
        """Record ``n`` more units done; ``rate`` is shown as ``{rate:.3g} {rate_label}``."""
        self.completed += n
        text = f"{rate:.3g} {self.rate_label}" if rate is not None and self.rate_label else ""
        if self._rich is not None:
            self._rich.update(self._task, advance=n, rate=text)
        elif not self.quiet:
            self._rate_text = text
            self._line(force=self.completed >= self.total)

    def _eta(self) -> str:
        done = self.completed - self._start_completed
        elapsed = time.monotonic() - self._start
        if done <= 0 or self.completed >= self.total:
            return "-"
        seconds = elapsed / done * (self.total - self.completed)
        return time.strftime("%H:%M:%S", time.gmtime(seconds))

    def _line(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_line < PLAIN_INTERVAL_S:
            return
        self._last_line = now
        rate = self._rate_text
        print(
            f"{self.description}: {self.completed}/{self.total} {self.unit}"
            + (f", {rate}" if rate else "")
            + f", ETA {self._eta()}",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._rich is not None:
            self._rich.__exit__(exc_type, exc, tb)

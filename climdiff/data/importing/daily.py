"""Which day each time step belongs to, and the daily aggregate of its steps.

The rule (documented in docs/import.md):

* a value summed into daily totals (``--how sum``; precipitation amounts per step) covers the
  step *ending* at its time stamp, as ERA5's hourly accumulations do: the value stamped
  00:00 on 2 January is the last hour of 1 January. Those steps must line up with midnight
  (stamps on multiples of the step), else a step would straddle two days;
* a value averaged (``--how mean``: instantaneous fields, rates) belongs to the day of its
  time stamp;
* data that are already daily belong to the day of their stamp either way.

A day is kept only when all of its steps are present; incomplete days can only occur at the two
ends of the record (gaps inside are refused earlier) and are dropped with a warning.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from climdiff.data.importing.sources import DAY, Timeline
from climdiff.errors import ClimdiffError

SUM = "sum"
MEAN = "mean"


@dataclass(frozen=True)
class DayPlan:
    """Complete days (days since REFERENCE) and the first step of each; ``per_day`` steps a day."""

    days: np.ndarray  # int64, consecutive
    first_step: int  # index into the timeline of the first kept day's first step
    per_day: int
    period_ending: bool

    def steps(self, start: int, stop: int) -> slice:
        """The timeline's steps of days ``days[start:stop]``."""
        return slice(self.first_step + start * self.per_day, self.first_step + stop * self.per_day)


def plan_days(timeline: Timeline, how: str) -> DayPlan:
    """Assign steps to days (rule above) and keep the complete days."""
    step = timeline.step
    per_day = DAY // step
    period_ending = how == SUM and per_day > 1
    if period_ending and np.any(timeline.seconds % step):
        raise ClimdiffError(
            f"the {step} s accumulations are stamped off multiples of {step} s past midnight, so a step would "
            "straddle two days; cannot form daily totals"
        )
    day = (timeline.seconds - (step if period_ending else 0)) // DAY
    # the series is regular and gap-free, so only the first and last day can be incomplete
    head = int(np.searchsorted(day, day[0], side="right"))
    tail = int(day.size - np.searchsorted(day, day[-1], side="left"))
    start = 0 if head == per_day else head
    stop = day.size if tail == per_day else day.size - tail
    dropped = [timeline.date(int(timeline.seconds[i])) for i, n in ((0, head), (day.size - 1, tail)) if n != per_day]
    if dropped:
        warnings.warn(
            f"dropped incomplete day(s) at the ends of the record (steps stamped {', '.join(dropped)}): "
            f"a day needs all {per_day} steps",
            stacklevel=2,
        )
    if stop <= start:
        raise ClimdiffError(f"the inputs hold no complete day ({per_day} steps of {step} s each)")
    days = np.arange(day[start], day[start] + (stop - start) // per_day, dtype=np.int64)
    return DayPlan(days, start, per_day, period_ending)


def aggregate(values: np.ndarray, per_day: int, how: str) -> np.ndarray:
    """Daily sums or means of (days * per_day, ...) steps, in float64."""
    blocks = values.reshape(-1, per_day, *values.shape[1:]).astype(np.float64)
    return blocks.sum(axis=1) if how == SUM else blocks.mean(axis=1)

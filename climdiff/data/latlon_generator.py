"""`climdiff data latlon`: run the moist barotropic model into a store of daily global precipitation.

One stored frame is one calendar day (noleap): the model's precipitation summed over the day's
steps (mm, i.e. mm day-1), written as exact 2 x 2 area-weighted means of the model grid onto the
:class:`~climdiff.data.latlon.LatLonGrid` output grid. Frame ``n`` is day ``n`` after 0001-01-01;
the discarded spin-up precedes it, and the model's seasonal forcing follows the calendar, so the
first stored day is a 1 January. Beside the field, per-day global means of evaporation,
precipitation and water vapour and the budget residual let anyone check that the water budget
closes. The resumable writing is :mod:`climdiff.data.producer`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from climdiff.data.latlon import LatLonGrid
from climdiff.data.moist_barotropic import YEAR_DAYS, MoistBarotropicConfig, MoistBarotropicModel, SeasonalForcing
from climdiff.data.producer import (
    CALENDAR,
    Production,
    day_time_variable,
    produce_store,
    run_generator,
    runtime_attrs,
)
from climdiff.data.store import TRAINING_KIND, AppendableStore, TimeVariable
from climdiff.data.transforms import PRECIPITATION_OFFSET, PRECIPITATION_UNITS
from climdiff.errors import ClimdiffError
from climdiff.metadata import field_attrs

VARIABLE = "precipitation"
UNITS = PRECIPITATION_UNITS
TRANSFORM = PRECIPITATION_OFFSET  # the data transform these stores name (climdiff.data.transforms)
DIAGNOSTICS: dict[str, tuple[str, str]] = {
    # name: (long_name, units); global means are exact area-weighted means over the sphere
    "evaporation_mean": ("global mean evaporation over the day", UNITS),
    "precipitation_mean": ("global mean precipitation over the day", UNITS),
    "water_vapour_mean": ("global mean column water vapour at the end of the day", "mm"),
    "water_vapour_tendency": ("change of global mean column water vapour over the day", UNITS),
    "budget_residual": ("water_vapour_tendency - (evaporation_mean - precipitation_mean)", UNITS),
    "kinetic_energy": ("global mean kinetic energy per unit mass of the rotational flow, end of day", "m2 s-2"),
}


@dataclass(frozen=True)
class LatLonRun:
    """Everything that identifies a lat-lon store (compared on resume)."""

    model: MoistBarotropicConfig = field(default_factory=MoistBarotropicConfig)
    days: int = 30 * YEAR_DAYS
    spinup_days: int = YEAR_DAYS
    seed: int = 0
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    chunk: int = 73  # five chunks a year

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ClimdiffError(f"the run must store at least one day, got {self.days}")
        if self.spinup_days < 0:
            raise ClimdiffError(f"--spinup-days must be non-negative, got {self.spinup_days}")
        _ = self.production  # building it validates chunk and split

    @property
    def grid(self) -> LatLonGrid:
        return LatLonGrid(self.model.n_lat, self.model.n_lon)

    @property
    def production(self) -> Production:
        spd = self.model.steps_per_day
        return Production(VARIABLE, self.days, spd, self.spinup_days * spd, self.chunk, self.split, YEAR_DAYS)

    def identity(self) -> dict[str, Any]:
        """The configuration stored in (and compared against) the output."""
        out = asdict(self)
        out["model"] = self.model.to_dict()
        out["split"] = list(self.split)
        return out


class _LatLonSimulation:
    """The model, its state and its random generator as a :class:`~climdiff.data.producer.Simulation`."""

    def __init__(self, model: MoistBarotropicModel, run: LatLonRun, arrays: dict[str, np.ndarray] | None) -> None:
        self.model = model
        self.run = run
        self.generator = run_generator(run.seed, arrays)
        if arrays is None:
            self.state = model.initial_state(self.generator, self._day_of_year(0))
        else:
            self.state = {name: torch.from_numpy(arrays[name]) for name in ("zeta", "chi", "q")}

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {name: value.numpy() for name, value in self.state.items()}
        return {**arrays, "rng": self.generator.get_state().numpy()}

    def _day_of_year(self, step: int) -> int:
        """Calendar day of the year (0 = 1 January) of the model day holding time step ``step``."""
        return (step // self.run.model.steps_per_day - self.run.spinup_days) % YEAR_DAYS

    def _day(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the day that starts at time step ``step``; return its evaporation and precipitation (mm)."""
        forcing: SeasonalForcing = self.model.seasonal_forcing(self._day_of_year(step))
        evaporation = torch.zeros_like(self.state["q"])
        precipitation = torch.zeros_like(self.state["q"])
        for _ in range(self.run.model.steps_per_day):
            totals = self.model.step(self.state, forcing, self.generator)
            evaporation += totals.evaporation
            precipitation += totals.precipitation
        return evaporation, precipitation

    def spin_up(self, step: int, steps: int) -> None:
        for day_start in range(step, step + steps, self.run.model.steps_per_day):
            self._day(day_start)

    def failure(self, step: int) -> str | None:
        if all(bool(torch.isfinite(torch.view_as_real(v) if v.is_complex() else v).all()) for v in self.state.values()):
            return None
        day = step // self.run.model.steps_per_day
        return f"(non-finite state) at step {step} (model day {day}); try a larger --steps-per-day"

    def next_frame(self, frame: int, step: int) -> dict[str, np.ndarray]:
        model = self.model
        water_before = model.area_mean(self.state["q"])
        evaporation, precipitation = self._day(step - self.run.model.steps_per_day)
        water_after = model.area_mean(self.state["q"])
        e_mean, p_mean = model.area_mean(evaporation), model.area_mean(precipitation)
        tendency = water_after - water_before  # mm over one day
        return {
            "time": np.int64(frame),
            VARIABLE: model.coarsen(precipitation).to(torch.float32).numpy(),
            "evaporation_mean": np.float64(e_mean),
            "precipitation_mean": np.float64(p_mean),
            "water_vapour_mean": np.float64(water_after),
            "water_vapour_tendency": np.float64(tendency),
            "budget_residual": np.float64(tendency - (e_mean - p_mean)),
            "kinetic_energy": np.float64(model.kinetic_energy(self.state["zeta"])),
        }


def _layout(run: LatLonRun) -> list[TimeVariable]:
    grid = run.grid
    variables = [
        day_time_variable(),
        TimeVariable(
            VARIABLE,
            dims=("lat", "lon"),
            shape=grid.shape,
            attrs=field_attrs({"name": VARIABLE, "units": UNITS}),
        ),
    ]
    variables += [
        TimeVariable(name, dtype="float64", attrs={"long_name": long, "units": units})
        for name, (long, units) in DIAGNOSTICS.items()
    ]
    return variables


def _create_store(out: Path, run: LatLonRun, command: str) -> AppendableStore:
    grid = run.grid
    model = run.model
    return AppendableStore.create(
        out,
        kind=TRAINING_KIND,
        config=run.identity(),
        attrs={
            "title": "Daily precipitation of a moist barotropic model on the sphere, climdiff training data",
            "Conventions": "CF-1.10",
            "source": (
                f"climdiff moist barotropic model (T{model.truncation} vorticity, finite-volume water vapour on "
                f"{model.model_shape[0]} x {model.model_shape[1]} cells, {model.steps_per_day} steps a day)"
            ),
            "history": command,
            **runtime_attrs(),
        },
        coords=grid.coordinates(),
        variables=_layout(run),
        time_chunk=run.chunk,
        meta={"variable": VARIABLE, "units": UNITS, "calendar": CALENDAR, "grid": grid.meta(), "transform": TRANSFORM},
    )


def generate_latlon(
    out: Path,
    run: LatLonRun,
    *,
    overwrite: bool = False,
    quiet: bool = False,
    command: str = "",
    after_commit: Callable[[int], None] | None = None,
) -> Path:
    """Write (or resume, or finish) a lat-lon precipitation training store at ``out`` (see :func:`produce_store`)."""
    model = MoistBarotropicModel(run.model)
    return produce_store(
        Path(out),
        config=run.identity(),
        production=run.production,
        create=lambda path: _create_store(path, run, command),
        source=lambda arrays: _LatLonSimulation(model, run, arrays),
        label=f"lat-lon {run.model.n_lat}x{run.model.n_lon}",
        overwrite=overwrite,
        quiet=quiet,
        after_commit=after_commit,
    )

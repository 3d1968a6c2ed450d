"""`climdiff data turbulence`: run the forced 2-D turbulence solver into a training store.

One saved frame is called a "day" (the time step of the emulator): it is taken every
``every`` solver steps after a spin-up of ``spinup`` time units is discarded. The chunked,
resumable writing (bit-identical after an interruption) is :mod:`climdiff.data.producer`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from climdiff.data.navier_stokes import ForcedTurbulence, TurbulenceConfig
from climdiff.data.producer import (
    CALENDAR,
    Production,
    day_time_variable,
    produce_store,
    run_generator,
    runtime_attrs,
)
from climdiff.data.store import TRAINING_KIND, AppendableStore, Coordinate, TimeVariable
from climdiff.errors import ClimdiffError
from climdiff.metadata import field_attrs, grid_coordinates
from climdiff.runtime import require_memory, resolve_device, resolve_dtype

VARIABLE = "vorticity"
DIAGNOSTICS: dict[str, tuple[str, str]] = {
    # name: (long_name, units) - rates are per unit area, in solver units
    "energy": ("kinetic energy per unit area at the frame", "1"),
    "enstrophy": ("enstrophy per unit area at the frame", "1"),
    "injection": ("energy injection rate by the forcing, mean over the interval", "1"),
    "drag": ("energy loss rate to linear drag, mean over the interval", "1"),
    "dissipation": ("energy loss rate to hyperviscosity, mean over the interval", "1"),
    "dEdt": ("energy tendency (E_end - E_start) / interval", "1"),
    "budget_residual": ("dEdt - (injection - drag - dissipation)", "1"),
}


# Full-grid arrays the solver holds at once (spectral state, RK stages, FFT work, forcing, diagnostics),
# measured from the peak memory of 256^2 and 512^2 runs in float64 (about 530 bytes per grid point).
SOLVER_ARRAYS = 72


@dataclass(frozen=True)
class TurbulenceRun:
    """Everything that identifies a turbulence store (compared on resume)."""

    solver: TurbulenceConfig = field(default_factory=TurbulenceConfig)
    frames: int = 10_000
    every: int = 4
    spinup: float = 50.0
    seed: int = 0
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    chunk: int = 32
    device: str = "cpu"
    dtype: str = "float64"

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ClimdiffError(f"--frames must be positive, got {self.frames}")
        if self.every < 1:
            raise ClimdiffError(f"--every must be positive, got {self.every}")
        if self.spinup < 0:
            raise ClimdiffError(f"--spinup must be non-negative, got {self.spinup}")
        _ = self.production  # building it validates chunk and split

    @property
    def spinup_steps(self) -> int:
        return math.ceil(self.spinup / self.solver.dt - 1e-9)

    @property
    def production(self) -> Production:
        return Production(VARIABLE, self.frames, self.every, self.spinup_steps, self.chunk, self.split)

    @property
    def memory_bytes(self) -> int:
        """Memory the solver and one chunk of frames take: about SOLVER_ARRAYS full grids in the solver's
        precision, plus the chunk in float32."""
        points = self.solver.size**2
        return points * (SOLVER_ARRAYS * resolve_dtype(self.dtype).itemsize + 4 * self.chunk)

    def identity(self) -> dict[str, Any]:
        """The configuration stored in (and compared against) the output."""
        out = asdict(self)
        out["solver"] = self.solver.to_dict()
        out["split"] = list(self.split)
        return out


def _grid(run: TurbulenceRun) -> dict[str, Any]:
    """The grid description stores and bundles carry: the periodic square of side 2 pi."""
    return {"kind": "periodic", "dims": ["y", "x"], "shape": [run.solver.size] * 2, "length": 2 * math.pi}


def _layout(run: TurbulenceRun, solver: ForcedTurbulence) -> tuple[list[Coordinate], list[TimeVariable]]:
    n = run.solver.size
    k, _ = solver.energy_spectrum(torch.zeros((n, n // 2 + 1), dtype=solver.grid.cdtype, device=solver.grid.device))
    positions, position_attrs = grid_coordinates(_grid(run))
    coords = [
        *(Coordinate(dim, values, position_attrs[dim]) for dim, values in positions.items()),
        Coordinate(
            "wavenumber",
            k.cpu().numpy(),
            {"long_name": "isotropic wavenumber shell |k| (fundamental = 1)", "units": "1"},
        ),
    ]
    coordinates_attr = {"coordinates": "model_time"}
    variables = [
        day_time_variable(),
        TimeVariable(
            "model_time",
            dtype="float64",
            attrs={"long_name": "solver time at the frame (spin-up included)", "units": "1"},
        ),
        TimeVariable(
            VARIABLE,
            dims=("y", "x"),
            shape=(n, n),
            attrs={
                **field_attrs({"name": VARIABLE, "units": "1"}),
                "comment": "nondimensional: domain side 2*pi, solver time unit",
                **coordinates_attr,
            },
        ),
        TimeVariable(
            "energy_spectrum",
            dims=("wavenumber",),
            shape=(len(k),),
            dtype="float64",
            attrs={
                "long_name": "isotropic kinetic energy spectrum (shell sums; sum over shells = energy)",
                "units": "1",
                **coordinates_attr,
            },
        ),
    ]
    variables += [
        TimeVariable(name, dtype="float64", attrs={"long_name": long, "units": units, **coordinates_attr})
        for name, (long, units) in DIAGNOSTICS.items()
    ]
    return coords, variables


class _TurbulenceSimulation:
    """The solver and its random generator as a :class:`~climdiff.data.producer.Simulation`."""

    def __init__(self, solver: ForcedTurbulence, run: TurbulenceRun, arrays: dict[str, np.ndarray] | None) -> None:
        self.solver = solver
        self.run = run
        self.generator = run_generator(run.seed, arrays)
        if arrays is None:
            self.zeta_hat = solver.initial_state(self.generator)
        else:
            self.zeta_hat = torch.from_numpy(arrays["zeta_hat"]).to(solver.grid.device)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"zeta_hat": self.zeta_hat.cpu().numpy(), "rng": self.generator.get_state().numpy()}

    def _advance(self, steps: int) -> list[Any]:
        """Take ``steps`` forced steps; return their budgets (tensors, no device sync)."""
        budgets = []
        for _ in range(steps):
            forcing = self.solver.draw_forcing(self.generator)
            self.zeta_hat, budget = self.solver.step(self.zeta_hat, forcing)
            budgets.append(budget)
        return budgets

    def spin_up(self, step: int, steps: int) -> None:
        self._advance(steps)

    def failure(self, step: int) -> str | None:
        if bool(torch.isfinite(torch.view_as_real(self.zeta_hat)).all()):
            return None
        return f"(non-finite vorticity) at step {step}, t = {step * self.run.solver.dt:.4g}; try a smaller --dt"

    def next_frame(self, frame: int, step: int) -> dict[str, np.ndarray]:
        """The stored values of the frame after ``every`` more steps, from the interval's step budgets."""
        budgets = self._advance(self.run.every)
        solver = self.solver
        interval = self.run.every * self.run.solver.dt
        injection = float(torch.stack([b.injection for b in budgets]).mean())
        drag = float(torch.stack([b.drag for b in budgets]).mean())
        dissipation = float(torch.stack([b.dissipation for b in budgets]).mean())
        d_e_dt = float(budgets[-1].energy_after - budgets[0].energy_before) / interval
        _, spectrum = solver.energy_spectrum(self.zeta_hat)
        return {
            "time": np.int64(frame),
            "model_time": np.float64(step * self.run.solver.dt),
            VARIABLE: solver.vorticity(self.zeta_hat).to(torch.float32).cpu().numpy(),
            "energy_spectrum": spectrum.to(torch.float64).cpu().numpy(),
            "energy": np.float64(budgets[-1].energy_after),
            "enstrophy": np.float64(solver.enstrophy(self.zeta_hat)),
            "injection": np.float64(injection),
            "drag": np.float64(drag),
            "dissipation": np.float64(dissipation),
            "dEdt": np.float64(d_e_dt),
            "budget_residual": np.float64(d_e_dt - (injection - drag - dissipation)),
        }


def generate_turbulence(
    out: Path,
    run: TurbulenceRun,
    *,
    overwrite: bool = False,
    quiet: bool = False,
    command: str = "",
    after_commit: Callable[[int], None] | None = None,
) -> Path:
    """Write (or resume, or finish) a turbulence training store at ``out`` (see :func:`produce_store`)."""
    require_memory(run.memory_bytes, f"a {run.solver.size}x{run.solver.size} turbulence run")
    solver = ForcedTurbulence(run.solver, device=resolve_device(run.device), dtype=resolve_dtype(run.dtype))
    return produce_store(
        Path(out),
        config=run.identity(),
        production=run.production,
        create=lambda path: _create_store(path, run, solver, command),
        source=lambda arrays: _TurbulenceSimulation(solver, run, arrays),
        label=f"turbulence {run.solver.size}x{run.solver.size}",
        overwrite=overwrite,
        quiet=quiet,
        after_commit=after_commit,
    )


def _create_store(out: Path, run: TurbulenceRun, solver: ForcedTurbulence, command: str) -> AppendableStore:
    coords, variables = _layout(run, solver)
    return AppendableStore.create(
        out,
        kind=TRAINING_KIND,
        config=run.identity(),
        attrs={
            "title": "Forced 2-D turbulence (vorticity), climdiff training data",
            "Conventions": "CF-1.10",
            "source": "climdiff pseudo-spectral Navier-Stokes solver (ETDRK4)",
            "history": command,
            "frame_interval_steps": run.every,
            "frame_interval_time": run.every * run.solver.dt,
            "resolved_nu": run.solver.resolved_nu(),
            **runtime_attrs(),
        },
        coords=coords,
        variables=variables,
        time_chunk=run.chunk,
        meta={
            "variable": VARIABLE,
            "units": "1",
            "calendar": CALENDAR,
            "grid": _grid(run),
        },
    )

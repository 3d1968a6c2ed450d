"""`climdiff data turbulence`: run the forced 2-D turbulence solver into a training store.

One saved frame is called a "day" (the time step of the emulator): it is taken every
``every`` solver steps after a spin-up of ``spinup`` time units is discarded. Frames are
buffered one Zarr time chunk at a time, so memory does not grow with the run length, and the
solver state plus the random generator are committed after every chunk (see
:mod:`climdiff.data.store`), so an interrupted run resumes exactly where it stopped and gives,
bit for bit, the store an uninterrupted run gives.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from climdiff.data.navier_stokes import ForcedTurbulence, TurbulenceConfig
from climdiff.data.splits import split_counts
from climdiff.data.statistics import field_statistics
from climdiff.data.store import (
    TRAINING_KIND,
    AppendableStore,
    Coordinate,
    TimeVariable,
)
from climdiff.errors import ClimdiffError, SolverError
from climdiff.progress import ProgressReporter
from climdiff.resume import claim_output
from climdiff.runtime import require_memory, resolve_device, resolve_dtype
from climdiff.zarr_io import read_header

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
CALENDAR = "noleap"
TIME_UNITS = "days since 0001-01-01 00:00:00"


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
        if self.chunk < 1:
            raise ClimdiffError(f"--chunk must be positive, got {self.chunk}")
        split_counts(self.frames, self.split)  # validates the fractions

    @property
    def spinup_steps(self) -> int:
        return math.ceil(self.spinup / self.solver.dt - 1e-9)

    @property
    def total_steps(self) -> int:
        return self.spinup_steps + self.frames * self.every

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


def _layout(run: TurbulenceRun, solver: ForcedTurbulence) -> tuple[list[Coordinate], list[TimeVariable]]:
    n = run.solver.size
    positions = np.arange(n, dtype=np.float64) * (2 * math.pi / n)
    k, _ = solver.energy_spectrum(torch.zeros((n, n // 2 + 1), dtype=solver.grid.cdtype, device=solver.grid.device))
    coords = [
        Coordinate("y", positions, {"long_name": "y position", "units": "1", "axis": "Y"}),
        Coordinate("x", positions, {"long_name": "x position", "units": "1", "axis": "X"}),
        Coordinate(
            "wavenumber",
            k.cpu().numpy(),
            {"long_name": "isotropic wavenumber shell |k| (fundamental = 1)", "units": "1"},
        ),
    ]
    coordinates_attr = {"coordinates": "model_time"}
    variables = [
        TimeVariable(
            "time",
            dtype="int64",
            attrs={"standard_name": "time", "units": TIME_UNITS, "calendar": CALENDAR, "axis": "T"},
        ),
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
                "long_name": "relative vorticity",
                "units": "1",
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


@dataclass
class _SolverState:
    """What is committed after every chunk: enough to continue bit for bit."""

    zeta_hat: torch.Tensor
    generator: torch.Generator
    step: int
    frames: int

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "zeta_hat": self.zeta_hat.cpu().numpy(),
            "rng": self.generator.get_state().numpy(),
            "step": np.int64(self.step),
            "frames": np.int64(self.frames),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], device: torch.device) -> _SolverState:
        generator = torch.Generator(device="cpu")
        generator.set_state(torch.from_numpy(arrays["rng"]))
        return cls(
            zeta_hat=torch.from_numpy(arrays["zeta_hat"]).to(device),
            generator=generator,
            step=int(arrays["step"]),
            frames=int(arrays["frames"]),
        )


def generate_turbulence(
    out: Path,
    run: TurbulenceRun,
    *,
    overwrite: bool = False,
    quiet: bool = False,
    command: str = "",
    after_commit: Callable[[int], None] | None = None,
) -> Path:
    """Write (or resume, or finish) a turbulence training store at ``out``.

    ``after_commit`` is called with the number of committed frames after every chunk; tests use
    it to interrupt a run at a known point.
    """
    out = Path(out)
    device = resolve_device(run.device)
    dtype = resolve_dtype(run.dtype)
    require_memory(run.memory_bytes, f"a {run.solver.size}x{run.solver.size} turbulence run")
    resume = claim_output(
        out, kind=TRAINING_KIND, config=run.identity(), overwrite=overwrite, header=read_header(out)
    )
    solver = ForcedTurbulence(run.solver, device=device, dtype=dtype)
    if resume:
        store = AppendableStore.open(out)
        _warn_if_not_bit_reproducible(store)
    else:
        store = _create_store(out, run, solver, command)

    arrays = store.load_state()
    if arrays is None:
        generator = torch.Generator(device="cpu").manual_seed(run.seed)
        state = _SolverState(solver.initial_state(generator), generator, step=0, frames=0)
    else:
        state = _SolverState.from_arrays(arrays, device)
    store.truncate(state.frames)

    with ProgressReporter(
        f"turbulence {run.solver.size}x{run.solver.size}",
        run.total_steps,
        unit="steps",
        rate_label="steps/s",
        quiet=quiet,
        completed=state.step,
    ) as progress:
        producer = _Producer(solver, run, state, store, progress)
        producer.spin_up()
        producer.produce_frames(after_commit)

    _finalize(store, run)
    return out


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
            "torch_version": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        coords=coords,
        variables=variables,
        time_chunk=run.chunk,
        meta={
            "variable": VARIABLE,
            "units": "1",
            "calendar": CALENDAR,
            "grid": {"kind": "periodic", "dims": ["y", "x"], "shape": [run.solver.size] * 2, "length": 2 * math.pi},
        },
    )


def _warn_if_not_bit_reproducible(store: AppendableStore) -> None:
    """Bit-identical resume needs the same thread count and torch version as the first run."""
    attrs = store.group.attrs
    started = (attrs.get("threads"), attrs.get("torch_version"))
    now = (torch.get_num_threads(), torch.__version__)
    if started != now:
        warnings.warn(
            f"resuming with {now[0]} threads and torch {now[1]} where the store was started with "
            f"{started[0]} threads and torch {started[1]}: frames agree to float tolerance, not bit for bit",
            stacklevel=3,
        )


@dataclass
class _Producer:
    """Advances the solver and commits to the store: spin-up first, then frames."""

    solver: ForcedTurbulence
    run: TurbulenceRun
    state: _SolverState
    store: AppendableStore
    progress: ProgressReporter

    def _advance(self, steps: int) -> list[Any]:
        """Take ``steps`` forced steps; return their budgets (tensors, no device sync)."""
        budgets = []
        for _ in range(steps):
            forcing = self.solver.draw_forcing(self.state.generator)
            self.state.zeta_hat, budget = self.solver.step(self.state.zeta_hat, forcing)
            budgets.append(budget)
        self.state.step += steps
        return budgets

    def _check_finite(self) -> None:
        if not bool(torch.isfinite(torch.view_as_real(self.state.zeta_hat)).all()):
            t = self.state.step * self.run.solver.dt
            raise SolverError(
                f"the solver blew up (non-finite vorticity) at step {self.state.step}, t = {t:.4g}; "
                f"try a smaller --dt. The {len(self.store)} frames already in {self.store.path} are kept "
                "(use --overwrite to start again with other settings)"
            )

    def spin_up(self) -> None:
        """Discarded spin-up, committed at the same cadence as frames so it is resumable too."""
        commit_every = self.run.chunk * self.run.every
        while self.state.step < self.run.spinup_steps:
            n = min(commit_every, self.run.spinup_steps - self.state.step)
            t0 = time.perf_counter()
            self._advance(n)
            self._check_finite()
            self.store.save_state(self.state.to_arrays())
            self.progress.advance(n, rate=n / (time.perf_counter() - t0))

    def produce_frames(self, after_commit: Callable[[int], None] | None) -> None:
        """Frames, one Zarr time chunk per commit (chunks aligned, so each file is written once)."""
        run, state = self.run, self.state
        while state.frames < run.frames:
            n_frames = min(run.chunk - state.frames % run.chunk, run.frames - state.frames)
            t0 = time.perf_counter()
            records = []
            for _ in range(n_frames):
                budgets = self._advance(run.every)
                self._check_finite()
                records.append(self._frame_record(budgets))
                state.frames += 1
            self.store.append({name: np.stack([r[name] for r in records]) for name in records[0]})
            self.store.save_state(state.to_arrays())
            steps = n_frames * run.every
            self.progress.advance(steps, rate=steps / (time.perf_counter() - t0))
            if after_commit is not None:
                after_commit(state.frames)

    def _frame_record(self, budgets: list[Any]) -> dict[str, np.ndarray]:
        """The stored values of the frame at the current state, from the interval's step budgets."""
        solver, state = self.solver, self.state
        interval = self.run.every * self.run.solver.dt
        injection = float(torch.stack([b.injection for b in budgets]).mean())
        drag = float(torch.stack([b.drag for b in budgets]).mean())
        dissipation = float(torch.stack([b.dissipation for b in budgets]).mean())
        d_e_dt = float(budgets[-1].energy_after - budgets[0].energy_before) / interval
        _, spectrum = solver.energy_spectrum(state.zeta_hat)
        return {
            "time": np.int64(state.frames),
            "model_time": np.float64(state.step * self.run.solver.dt),
            VARIABLE: solver.vorticity(state.zeta_hat).to(torch.float32).cpu().numpy(),
            "energy_spectrum": spectrum.to(torch.float64).cpu().numpy(),
            "energy": np.float64(budgets[-1].energy_after),
            "enstrophy": np.float64(solver.enstrophy(state.zeta_hat)),
            "injection": np.float64(injection),
            "drag": np.float64(drag),
            "dissipation": np.float64(dissipation),
            "dEdt": np.float64(d_e_dt),
            "budget_residual": np.float64(d_e_dt - (injection - drag - dissipation)),
        }


def _finalize(store: AppendableStore, run: TurbulenceRun) -> None:
    """Training statistics and split, then mark complete (idempotent if interrupted)."""
    counts = split_counts(run.frames, run.split)
    stats = field_statistics(store.path, VARIABLE, stop=counts["train"][1])
    store.update_meta(complete=True, split=counts, stats={VARIABLE: stats})
    store.drop_state()

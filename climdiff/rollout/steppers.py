"""Day steppers: what draws day n+1 of a batch of chains from their last two days (model space).

The rollout engine needs one thing of a model: :class:`DayStepper`. Three kinds implement it:

* :class:`GuidedStepper`: the IDM, guided by the discriminator conditioned on days n and n-1;
* :class:`UnguidedStepper`: the IDM alone (the ablation, or a bundle without a discriminator);
* :class:`VDMStepper`: the video diffusion baseline, the conditional model D(x; sigma, days n, n-1)
  sampled without guidance.

All draw through :func:`~climdiff.sampling.edm.edm_sample` with one generator per chain, so a chain's
days do not depend on which chains share its batch, and every kind rolls out through the same engine,
stores and resume (:mod:`climdiff.rollout.blocks`). :func:`day_stepper` picks the kind for a bundle.

On the CPU the networks run as TorchScript traces, one per input shape (made on first use): for the
small default model a batch-1 call is dominated by Python's per-operation overhead, which the trace
removes (1.5x for the IDM, 1.3x for the discriminator's forward and backward). The traces run with
TorchScript's graph optimisation off: the optimising executor switches graphs after its first profiled
calls, so a resumed run (whose first calls fall on other days) would not be bit-identical to an
uninterrupted one. They run the same operations as the eager networks and agree with them (tests check
both). ``trace=False`` keeps the networks eager, and so does any model that cannot be traced (with a
warning).

Networks trained with ``--day-of-year`` also take the date of the day being drawn (its year fraction,
:func:`climdiff.data.seasons.year_fraction`): the block loop passes it when ``needs_date`` is set, and
each stepper hands it to the networks that take it, named ``doy`` as in the networks' own signatures.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import torch

from climdiff.bundle import Bundle
from climdiff.errors import ClimdiffError
from climdiff.models.conditioning import conditioning
from climdiff.sampling.config import SamplerConfig
from climdiff.sampling.edm import Denoiser, Guide, edm_sample
from climdiff.sampling.guidance import discriminator_guide


class DayStepper(Protocol):
    """Draws day n+1 for a batch of chains."""

    device: torch.device
    needs_date: bool

    @property
    def guidance_thread(self) -> bool:
        """Whether the guidance runs on a thread of its own (recorded in stores)."""
        ...

    def __call__(
        self, last: torch.Tensor, generators: Sequence[torch.Generator], doy: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``last`` (B, 2, C, H, W), oldest day first -> day n+1 (B, C, H, W) on the CPU; chain i
        draws its noise from ``generators[i]``; ``doy`` (B,) is the year fraction of each chain's day
        n+1, required when ``needs_date``."""
        ...


class TracedStepper:
    """What every stepper shares: the bundle's networks on ``device``, traced per input shape, and
    the sampling call; subclasses say what denoises (and guides) given the last two days."""

    def __init__(self, bundle: Bundle, sampler: SamplerConfig, device: torch.device, trace: bool | None = None) -> None:
        self.models = {kind: model.to(device).eval() for kind, model in bundle.models.items()}
        self.sampler = sampler
        self.device = device
        self.trace = device.type == "cpu" if trace is None else trace
        self._traced: dict[tuple[object, ...], Callable[..., torch.Tensor]] = {}
        self.dated = frozenset(kind for kind, takes in bundle.meta.get("day_of_year", {}).items() if takes)
        self.needs_date = bool(self.dated & set(self.models))

    @property
    def guidance_thread(self) -> bool:
        return False

    def network(self, kind: str, **inputs: torch.Tensor) -> Callable[..., torch.Tensor]:
        """The model ``kind`` for inputs of these names (in the order of its ``forward``) and shapes:
        traced once per shape, else eager. Named inputs let a trace skip an argument the model leaves
        at its default (the IDM's ``cond`` when it takes ``doy``)."""
        model = self.models[kind]
        if not self.trace:
            return model
        key = (kind, *((name, tuple(t.shape)) for name, t in inputs.items()))
        if key not in self._traced:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the tracer's notes on shape checks baked in per shape
                    self._traced[key] = torch.jit.trace(model, example_kwarg_inputs=inputs, check_trace=False)
            except Exception as err:  # noqa: BLE001 - any model the tracer cannot handle runs eagerly
                warnings.warn(f"running the {kind} eagerly: it could not be traced ({err})", stacklevel=2)
                self.trace = False
                return model
        return self._traced[key]

    def models_for(self, last: torch.Tensor, doy: torch.Tensor | None) -> tuple[Denoiser, Guide | None]:
        """The denoiser (and guide) for chains whose last two days are ``last`` and whose new days
        fall at year fractions ``doy`` (both on the device). Denoisers are traced without autograd,
        the discriminator with it (its gradient guides)."""
        raise NotImplementedError

    def __call__(
        self, last: torch.Tensor, generators: Sequence[torch.Generator], doy: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.needs_date and doy is None:
            raise ValueError(f"this bundle's {' and '.join(sorted(self.dated))} need the date of the day drawn (doy)")
        last = last.to(self.device)
        doy = None if doy is None else doy.to(self.device, torch.float32)
        denoiser, guide = self.models_for(last, doy)
        with torch.no_grad(), torch.jit.optimized_execution(False):
            return edm_sample(denoiser, last[:, 1].shape, generators, self.sampler, guide, device=self.device).cpu()

    def date_of(self, kind: str, doy: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """``{"doy": doy}`` for a network that takes the date, else nothing."""
        return {"doy": doy} if kind in self.dated and doy is not None else {}

    @staticmethod
    def probe(last: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x, sigma, cond) of the shapes the networks see, to trace them with."""
        cond = conditioning(previous=last[:, 0], current=last[:, 1])
        return last[:, 1], torch.ones(len(last), device=last.device), cond


class UnguidedStepper(TracedStepper):
    """The IDM alone: each day is drawn from the image model, whatever the days before it."""

    def models_for(self, last: torch.Tensor, doy: torch.Tensor | None) -> tuple[Denoiser, Guide | None]:
        x0, s0, _ = self.probe(last)
        date = self.date_of("idm", doy)
        with torch.no_grad():
            idm = self.network("idm", x=x0, sigma=s0, **date)
        return (lambda x, s: idm(x=x, sigma=s, **date)), None


class GuidedStepper(UnguidedStepper):
    """The IDM guided by the discriminator conditioned on the last two days.

    ``guide_thread=True`` runs the guidance on a second thread while the IDM runs on this one: with
    one intra-op thread each, the two networks of a guided step occupy two cores, with results
    identical to sequential runs. CPU only: on a GPU both would queue on one stream anyway.
    """

    def __init__(
        self,
        bundle: Bundle,
        sampler: SamplerConfig,
        device: torch.device,
        trace: bool | None = None,
        guide_thread: bool = False,
    ) -> None:
        if "disc" not in bundle.models:
            raise ClimdiffError("guidance needs a discriminator, and this bundle has none (use --guidance 0)")
        super().__init__(bundle, sampler, device, trace)
        use_pool = guide_thread and device.type == "cpu"
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="climdiff-guide") if use_pool else None

    @property
    def guidance_thread(self) -> bool:
        return self.executor is not None

    def models_for(self, last: torch.Tensor, doy: torch.Tensor | None) -> tuple[Denoiser, Guide | None]:
        denoiser, _ = super().models_for(last, doy)
        x0, s0, cond = self.probe(last)
        date = self.date_of("disc", doy)
        disc = self.network("disc", candidate=x0, sigma=s0, cond=cond, **date)
        return denoiser, discriminator_guide(disc, cond, self.sampler, self.executor, date.get("doy"))


class VDMStepper(TracedStepper):
    """The video diffusion baseline: D(x; sigma, days n and n-1), sampled without guidance."""

    def models_for(self, last: torch.Tensor, doy: torch.Tensor | None) -> tuple[Denoiser, Guide | None]:
        x0, s0, cond = self.probe(last)
        date = self.date_of("vdm", doy)
        with torch.no_grad():
            vdm = self.network("vdm", x=x0, sigma=s0, cond=cond, **date)
        return (lambda x, s: vdm(x=x, sigma=s, cond=cond, **date)), None


def day_stepper(
    bundle: Bundle,
    sampler: SamplerConfig,
    device: torch.device,
    *,
    trace: bool | None = None,
    guide_thread: bool = False,
) -> DayStepper:
    """The stepper for ``bundle``'s models and ``sampler``'s guidance strength; ``guide_thread``
    puts the guidance on a thread of its own where there is guidance, on a CPU."""
    if "vdm" in bundle.models:
        if sampler.guidance > 0:
            raise ClimdiffError("a VDM bundle samples without guidance (use --guidance 0)")
        return VDMStepper(bundle, sampler, device, trace)
    if sampler.guidance > 0:
        return GuidedStepper(bundle, sampler, device, trace, guide_thread)
    return UnguidedStepper(bundle, sampler, device, trace)

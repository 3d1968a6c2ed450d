"""Embedded models shipped inside the package, so `climdiff emulate` works on a fresh install.

Each is a bundle directory (see :mod:`climdiff.bundle`) made with climdiff's own pipeline by a
script in ``scripts/`` (``make_latlon_model.sh``, ``make_default_model.sh`` for the guided ones,
``make_vdm_model.sh`` for the video diffusion baselines); it is read-only: tuning writes a new
bundle elsewhere.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from climdiff.bundle import read_bundle_meta
from climdiff.errors import ClimdiffError

DEFAULT_MODEL = "latlon32"


def available_models() -> list[str]:
    """Names of the embedded bundles."""
    root = files(__name__)
    return sorted(p.name.removesuffix(".bundle") for p in root.iterdir() if p.name.endswith(".bundle"))


def embedded_bundle(name: str = DEFAULT_MODEL) -> Path:
    """Path of an embedded bundle by name; a clear error listing the names otherwise."""
    path = Path(str(files(__name__) / f"{name}.bundle"))
    if not (path / "bundle.json").is_file():
        names = ", ".join(available_models()) or "none"
        raise ClimdiffError(f"no embedded model named {name!r} (available: {names})")
    return path


def bundle_path(spec: str) -> Path:
    """A bundle given as a path, or by the name of an embedded model."""
    return Path(spec) if Path(spec).exists() else embedded_bundle(spec)


METHODS = {"guided": "guided image diffusion", "unguided": "image diffusion", "vdm": "video diffusion"}


def sampler_summary(mode: str, sampler: dict[str, Any]) -> str:
    """The method and its sampler in a few words; lambda only where a discriminator guides, the
    solver only where it is not EDM's Heun."""
    solver = sampler.get("solver", "heun")
    text = f"{METHODS.get(mode, mode)}, {sampler.get('steps', '?')} {'' if solver == 'heun' else solver + ' '}steps"
    return f"{text}, lambda {sampler.get('guidance', '?')}" if mode == "guided" else text


def model_summaries() -> list[dict[str, Any]]:
    """What `climdiff emulate --list-models` shows of each embedded bundle (read from its
    bundle.json; the networks are not loaded)."""
    rows = []
    for name in available_models():
        meta = read_bundle_meta(embedded_bundle(name)) or {}
        grid, variable, sampler = meta.get("grid", {}), meta.get("variable", {}), meta.get("sampler", {})
        rows.append(
            {
                "name": name,
                "default": name == DEFAULT_MODEL,
                "grid": f"{grid.get('kind', '?')} {' x '.join(map(str, grid.get('shape', [])))}",
                "variable": f"{variable.get('name', '?')} ({variable.get('units', '?')})",
                "calendar": meta.get("calendar", "?"),
                "dated": sorted(kind for kind, takes in meta.get("day_of_year", {}).items() if takes),
                "sampler": sampler_summary(meta.get("mode", "?"), sampler),
            }
        )
    return rows

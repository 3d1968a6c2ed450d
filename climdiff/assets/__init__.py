"""Embedded models shipped inside the package, so `climdiff emulate` works on a fresh install.

Each is a bundle directory (see :mod:`climdiff.bundle`) made by ``scripts/make_default_model.sh``
with climdiff's own pipeline; it is read-only: tuning writes a new bundle elsewhere.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from climdiff.errors import ClimdiffError

DEFAULT_MODEL = "turbulence32"


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

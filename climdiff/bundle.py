"""Bundles: everything `climdiff emulate` loads, in one directory (docs/architecture.md, "Conventions").

A bundle holds the image diffusion model and its discriminator (or a VDM), copied as verified
checkpoints, the initial state (two consecutive days in physical units, with their dates), and
``bundle.json``: the data transform, grid, variable, calendar, sampler settings including the
guidance strength, and a sha256 of every file plus one over the whole bundle. Loading checks
every hash, so a bundle cannot be half-copied or edited unnoticed. Tuning (other sampler
settings) writes a new bundle; embedded bundles are never modified.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cftime
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from climdiff import __version__
from climdiff.atomic import atomic_write, atomic_write_bytes
from climdiff.checkpoint import describe_checkpoint, file_sha256, load_checkpoint
from climdiff.data.store import open_training_store
from climdiff.errors import ClimdiffError
from climdiff.finite import require_finite
from climdiff.models.presets import conditions_on_day_of_year
from climdiff.resume import OutputHeader, claim_output
from climdiff.sampling.config import SamplerConfig
from climdiff.zarr_io import store_meta

BUNDLE_KIND = "bundle"
BUNDLE_FILE = "bundle.json"
INITIAL_STATE_FILE = "initial_state.safetensors"
FORMAT_VERSION = 1
# What must agree between the models of one bundle (checkpoint header keys).
SHARED_KEYS = ("grid", "variable", "normalization", "calendar", "padding")


class BundleError(ClimdiffError):
    """A bundle is missing, incomplete, modified, or its parts do not fit together."""


@dataclass
class Bundle:
    """A loaded, verified bundle."""

    path: Path
    meta: dict[str, Any]
    models: dict[str, nn.Module]
    initial_state: torch.Tensor
    initial_dates: list[str]
    sampler: SamplerConfig

    @property
    def kind(self) -> str:
        """'guided' (IDM + discriminator), 'unguided' (IDM alone) or 'vdm'."""
        return self.meta["mode"]


def resolve_checkpoint(path: Path) -> Path:
    """A training-run directory stands for its checkpoint."""
    path = Path(path)
    return path / "model.safetensors" if path.is_dir() else path


def read_bundle_meta(path: Path) -> dict[str, Any] | None:
    """A bundle's ``bundle.json`` as it stands (not verified, networks not loaded), or None."""
    try:
        meta = json.loads((Path(path) / BUNDLE_FILE).read_text())
        return meta if meta.get("kind") == BUNDLE_KIND else None
    except Exception:  # not a bundle
        return None


# The settings a bundle is identified by and hashed over, stored once at the top of bundle.json.
SETTINGS_KEYS = ("mode", "sampler", *SHARED_KEYS, "initial_dates")


# Settings added later: hashed only when present, so bundles written before them still verify.
OPTIONAL_SETTINGS_KEYS = ("day_of_year", "tuning")


def _settings(meta: dict[str, Any]) -> dict[str, Any]:
    optional = {key: meta[key] for key in OPTIONAL_SETTINGS_KEYS if key in meta}
    return {**{key: meta.get(key) for key in SETTINGS_KEYS}, **optional}


def _bundle_digest(files: dict[str, str], settings: dict[str, Any]) -> str:
    text = json.dumps({"files": files, "settings": settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# Statistics of the same data computed on two hosts differ in the last bits (a mean of 1.0038e-11
# against 1.0035e-11 for a field of std 1.88, a store regenerated on an AVX-512 host): models trained on
# either fit together. Real differences of data are orders of magnitude larger.
STATISTICS_REL_TOL = 1e-6
STATISTICS_ABS_TOL = 1e-12


def descriptions_agree(a: Any, b: Any) -> bool:
    """Equal (numbers to float round-off), or for descriptions (dicts) equal on every entry both
    give: a model written before an entry was added (e.g. the training min/max) still fits."""
    if isinstance(a, dict) and isinstance(b, dict):
        return all(descriptions_agree(a[k], b[k]) for k in set(a) & set(b))
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=STATISTICS_REL_TOL, abs_tol=STATISTICS_ABS_TOL)
    return a == b


def _check_compatible(headers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The shared description of the models' data; refuse models made for different data."""
    names = list(headers)
    first = headers[names[0]]
    for name in names[1:]:
        for key in SHARED_KEYS:
            if not descriptions_agree(headers[name].get(key), first.get(key)):
                raise BundleError(
                    f"the {names[0]} and the {name} were trained for different data ({key} differs: "
                    f"{first.get(key)} vs {headers[name].get(key)})"
                )
    return {key: first.get(key) for key in SHARED_KEYS}


def make_bundle(
    out: Path,
    *,
    data: Path,
    idm: Path | None = None,
    disc: Path | None = None,
    vdm: Path | None = None,
    sampler: SamplerConfig | None = None,
    name: str | None = None,
    start_index: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Assemble a bundle from checkpoints (or run directories) and a training store.

    The initial state is two consecutive days of ``data``: by default the first two of its test
    split (so an emulation continues where the held-out data begin), else ``start_index``.
    """
    out = Path(out)
    if vdm is not None and (idm is not None or disc is not None):
        raise BundleError("a bundle holds either an IDM (with or without a discriminator) or a VDM, not both")
    if disc is not None and idm is None:
        raise BundleError("a discriminator guides an IDM: give --idm too")
    if vdm is None and idm is None:
        raise BundleError("a bundle needs --idm (with --disc for guidance) or --vdm")
    parts = {kind: resolve_checkpoint(p) for kind, p in (("idm", idm), ("disc", disc), ("vdm", vdm)) if p is not None}
    headers = {}
    for kind, path in parts.items():
        if not path.exists():
            raise BundleError(f"{kind} checkpoint {path} does not exist")
        headers[kind] = describe_checkpoint(path)
        if headers[kind]["kind"] != kind:
            raise BundleError(f"{path} holds a {headers[kind]['kind']} model, not a {kind}")
    shared = _check_compatible(headers)
    sampler = sampler or SamplerConfig()
    if "disc" not in parts:  # nothing to guide with
        sampler = sampler.replace(guidance=0.0)
    frames, dates = _initial_state(Path(data), shared, start_index)
    settings = {
        "mode": "vdm" if "vdm" in parts else ("guided" if "disc" in parts else "unguided"),
        "sampler": sampler.to_dict(),
        **shared,
        "initial_dates": dates,
        # which models take the generated day's date (doy, the year fraction) in the bundle's calendar
        "day_of_year": {kind: conditions_on_day_of_year(header["model"]) for kind, header in headers.items()},
    }
    claim_output(
        out, kind=BUNDLE_KIND, config=settings, overwrite=overwrite, header=read_bundle_header(out), noun="bundle"
    )
    out.mkdir(exist_ok=True)
    files = {}
    for kind, path in parts.items():
        target = out / f"{kind}.safetensors"
        atomic_write(target, lambda tmp, src=path: shutil.copyfile(src, tmp))
        files[target.name] = file_sha256(target)
    state = out / INITIAL_STATE_FILE
    atomic_write(state, lambda tmp: save_file({"frames": frames}, str(tmp), metadata={"dates": json.dumps(dates)}))
    files[state.name] = file_sha256(state)
    models = {
        "models": {kind: f"{kind}.safetensors" for kind in parts},
        "parameters": {kind: headers[kind]["parameters"] for kind in parts},
        "provenance": {kind: headers[kind].get("provenance") for kind in parts},
    }
    return _write_meta(out, name or out.stem, models, files, settings)


def _write_meta(out: Path, name: str, models: dict[str, Any], files: dict[str, str], settings: dict[str, Any]) -> Path:
    """Write ``bundle.json`` last (a bundle is complete once it exists), hashed over files and settings;
    ``models`` describes the networks (file names, parameter counts, provenance)."""
    meta = {
        "kind": BUNDLE_KIND,
        "format_version": FORMAT_VERSION,
        "name": name,
        "climdiff_version": __version__,
        **models,
        **settings,
        "files": files,
        "bundle_sha256": _bundle_digest(files, settings),
        "complete": True,
    }
    atomic_write_bytes(out / BUNDLE_FILE, json.dumps(meta, indent=2).encode())
    return out


def derive_bundle(
    source: Bundle,
    out: Path,
    *,
    sampler: SamplerConfig,
    tuning: dict[str, Any],
    name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """A new bundle at ``out``: ``source``'s models and initial state with other sampler settings and
    the record of how they were chosen (``tuning``, shown by `climdiff info` and hashed like every
    setting). The source, embedded or not, is never modified."""
    out = Path(out)
    settings = {**_settings(source.meta), "sampler": sampler.to_dict(), "tuning": tuning}
    claim_output(
        out, kind=BUNDLE_KIND, config=settings, overwrite=overwrite, header=read_bundle_header(out), noun="bundle"
    )
    out.mkdir(exist_ok=True)
    for file in source.meta["files"]:
        atomic_write(out / file, lambda tmp, src=source.path / file: shutil.copyfile(src, tmp))
    models = {key: source.meta[key] for key in ("models", "parameters", "provenance") if key in source.meta}
    return _write_meta(out, name or out.stem, models, dict(source.meta["files"]), settings)


def read_bundle_header(out: Path) -> OutputHeader | None:
    """What a bundle directory says about itself, or None if it is not one."""
    meta = read_bundle_meta(out)
    if meta is None:
        return None
    return OutputHeader(kind=BUNDLE_KIND, config=_settings(meta), complete=bool(meta.get("complete")))


def _initial_state(data: Path, shared: dict[str, Any], start_index: int | None) -> tuple[torch.Tensor, list[str]]:
    """Two consecutive days (physical units, oldest first) and their dates."""
    ds = open_training_store(data)
    meta = store_meta(ds.attrs)
    if meta["grid"] != shared["grid"] or meta["variable"] != shared["variable"]["name"]:
        raise BundleError(f"{data} holds other data than the models were trained on (grid or variable differs)")
    first = meta["split"]["test"][0] if start_index is None else start_index
    if not 0 <= first <= ds.sizes["time"] - 2:
        raise BundleError(f"initial state index {first} is outside {data} (time length {ds.sizes['time']})")
    field = ds[meta["variable"]].isel(time=slice(first, first + 2))
    values = torch.from_numpy(np.ascontiguousarray(field.values, dtype=np.float32))
    require_finite(values, f"{meta['variable']} in {data}", axis="time", offset=first)
    frames = values[:, None] if values.ndim == 3 else values
    dates = [t.isoformat() if isinstance(t, cftime.datetime) else str(t) for t in field["time"].values]
    return frames.contiguous(), dates


def load_bundle(path: Path, device: torch.device | str = "cpu") -> Bundle:
    """Load and verify a bundle; every problem is one clear :class:`BundleError`."""
    path = Path(path)
    if not path.exists():
        raise BundleError(f"bundle {path} does not exist")
    meta = read_bundle_meta(path)
    if meta is None:
        raise BundleError(f"{path} is not a climdiff bundle (no valid {BUNDLE_FILE})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise BundleError(
            f"{path} is bundle format {meta['format_version']}; this climdiff reads up to {FORMAT_VERSION}"
        )
    missing = [name for name in meta["files"] if not (path / name).exists()]
    if missing:
        raise BundleError(f"bundle {path} is incomplete: {', '.join(missing)} missing")
    for name, digest in meta["files"].items():
        if file_sha256(path / name) != digest:
            raise BundleError(f"bundle {path} was modified: {name} does not match its hash")
    if _bundle_digest(meta["files"], _settings(meta)) != meta["bundle_sha256"]:
        raise BundleError(f"bundle {path} was modified: bundle.json does not match its hash")
    models = {}
    for kind, name in meta["models"].items():
        models[kind], _ = load_checkpoint(path / name, expected_kind=kind, device=device)
        models[kind].requires_grad_(False)
    with safe_open(str(path / INITIAL_STATE_FILE), framework="pt") as fh:
        frames = fh.get_tensor("frames")
        dates = json.loads(fh.metadata()["dates"])
    require_finite(frames, f"the initial state of bundle {path}", axis="day")
    return Bundle(path, meta, models, frames, dates, SamplerConfig.from_dict(meta["sampler"]))


def describe_bundle(path: Path) -> dict[str, Any]:
    """What `climdiff info` shows about a bundle (after verifying it)."""
    bundle = load_bundle(path)
    keys = (
        "name",
        "mode",
        "climdiff_version",
        "grid",
        "variable",
        "calendar",
        "normalization",
        "sampler",
        "day_of_year",
        "initial_dates",
        "parameters",
        "bundle_sha256",
    )
    summary = {"path": str(Path(path).resolve()), "kind": BUNDLE_KIND, **{k: bundle.meta.get(k) for k in keys}}
    if "tuning" in bundle.meta:  # how a tuned bundle's sampler settings were chosen (climdiff tune-guidance)
        summary["tuning"] = bundle.meta["tuning"]
    return summary

"""Safe, versioned checkpoints: one ``.safetensors`` file, weights plus JSON metadata.

Why safetensors: loading never unpickles, so a checkpoint from anywhere cannot run code; the
tensors are memory-mapped and typed. Everything else a model needs to be used correctly rides in
the file's safetensors metadata as ONE JSON string under the key ``"climdiff"``:

=================  ==========================================================================
key                content
=================  ==========================================================================
format_version     int, :data:`FORMAT_VERSION`; readers refuse newer versions
kind               "idm", "disc" or "vdm"
model              the configuration dict that :func:`climdiff.models.build_model` rebuilds from
                   (includes sigma_data)
padding            the network's padding kind ("periodic", "latlon", "zeros"), from ``model``
weights_sha256     sha256 over the tensors (names, dtypes, shapes, bytes; see
                   :func:`weights_sha256`), checked on every load
tensors            {"model": true, "ema": bool}: which weight sets the file holds
written_by         {"climdiff": version, "torch": version, "created": UTC ISO time}
normalization      caller's: data transform and its statistics (e.g. mean/std or min/max, c)
grid               caller's: {"kind": "periodic"|"latlon", "shape": [H, W], coordinate summary}
variable           caller's: {"name": ..., "units": ...}
calendar           caller's: e.g. "standard", "noleap", or null for the turbulence case
provenance         caller's: training data store, epochs, steps, seed, command line, ...
=================  ==========================================================================

The first seven keys are written by :func:`save_checkpoint` (values passed in ``meta`` under them
are replaced, except that a different ``kind`` is an error); the others are the caller's, stored
as given (any JSON). A grid kind that contradicts the padding (periodic data with lat-lon padding
or vice versa) is refused on save and on load.

Tensors: the weights being trained are stored as ``model.<state-dict key>``; the exponential
moving average used for sampling, if given, as ``ema.<state-dict key>`` with exactly the same keys.
:func:`load_checkpoint` loads the EMA weights when present (what sampling wants) unless
``weights="model"`` (what resuming training wants).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import safetensors
import safetensors.torch
import torch
from torch import nn

from climdiff import __version__
from climdiff.atomic import atomic_write_bytes
from climdiff.errors import ClimdiffError
from climdiff.models.presets import MODEL_KINDS, build_model, model_config
from climdiff.models.unet import count_parameters
from climdiff.resume import OutputHeader

FORMAT_VERSION = 1
CHECKPOINT_KIND = "checkpoint"
METADATA_KEY = "climdiff"
WEIGHT_SETS = ("model", "ema")
_WRITTEN_KEYS = ("format_version", "kind", "model", "padding", "weights_sha256", "tensors", "written_by")
_GRID_PADDING_CONFLICTS = {("periodic", "latlon"), ("latlon", "periodic")}

PathLike = str | os.PathLike[str]


class CheckpointError(ClimdiffError):
    """A checkpoint is missing, unreadable, modified, of the wrong kind, too new, or does not fit
    its own configuration."""


def weights_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over tensors in name order: name, dtype, shape and raw bytes of each.

    Independent of the file layout, so it identifies the weights themselves (bundle hashes use it).
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


def file_sha256(path: PathLike) -> str:
    """sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _state_dict(source: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    items = source.state_dict() if isinstance(source, nn.Module) else source
    # A private contiguous copy: safetensors refuses tensors that share memory (model and EMA may).
    return {k: v.detach().to("cpu", memory_format=torch.contiguous_format, copy=True) for k, v in items.items()}


def _check_grid_padding(header: Mapping[str, Any]) -> None:
    grid = header.get("grid")
    if grid is None:
        return
    if not isinstance(grid, Mapping) or grid.get("kind") not in ("periodic", "latlon"):
        raise CheckpointError(f"checkpoint grid must be a dict with kind 'periodic' or 'latlon', got {grid!r}")
    if (grid["kind"], header["padding"]) in _GRID_PADDING_CONFLICTS:
        raise CheckpointError(f"a {grid['kind']} grid cannot use a network with {header['padding']} padding")


def save_checkpoint(
    path: PathLike,
    model: nn.Module,
    meta: Mapping[str, Any] | None = None,
    ema: nn.Module | Mapping[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Write ``model`` (and optionally its EMA weights) with ``meta`` to ``path``, atomically.

    Returns the full metadata header as stored. ``ema`` is a module or state dict with exactly
    the model's keys and shapes.
    """
    kind, config = model_config(model)
    meta = dict(meta or {})
    if meta.get("kind", kind) != kind:
        raise CheckpointError(f"metadata says kind {meta['kind']!r} but the model is a {kind}")
    weights = {f"model.{k}": v for k, v in _state_dict(model).items()}
    if ema is not None:
        ema_state = _state_dict(ema)
        mismatch = _state_mismatch({k[len("model.") :]: v.shape for k, v in weights.items()}, ema_state)
        if mismatch:
            raise CheckpointError(f"EMA weights do not match the model: {mismatch}")
        weights.update({f"ema.{k}": v for k, v in ema_state.items()})
    padding = config["backbone"]["padding"] if "backbone" in config else config["padding"]
    header = {
        **meta,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "model": config,
        "padding": padding,
        "weights_sha256": weights_sha256(weights),
        "tensors": {"model": True, "ema": ema is not None},
        "written_by": {
            "climdiff": __version__,
            "torch": torch.__version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
    }
    _check_grid_padding(header)
    try:
        text = json.dumps(header, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint metadata is not plain JSON: {exc}") from None
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(path), safetensors.torch.save(weights, metadata={METADATA_KEY: text}))
    return json.loads(text)


def _read(path: PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Header and tensors of a checkpoint, after the checks that need no model: present, readable,
    a climdiff file, a format this version reads, a known kind, weights matching their hash."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (safetensors.SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {reason}") from None
    if METADATA_KEY not in metadata:
        raise CheckpointError(
            f"{path} is a safetensors file but not a climdiff checkpoint (no '{METADATA_KEY}' metadata)"
        )
    try:
        header = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: checkpoint metadata is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or not all(key in header for key in _WRITTEN_KEYS):
        raise CheckpointError(f"{path}: checkpoint metadata lacks required keys {', '.join(_WRITTEN_KEYS)}")
    version = header["format_version"]
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: invalid checkpoint format_version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version}, newer than the {FORMAT_VERSION} this climdiff reads; upgrade climdiff"
        )
    if header["kind"] not in MODEL_KINDS:
        raise CheckpointError(f"{path}: unknown model kind {header['kind']!r}")
    if weights_sha256(tensors) != header["weights_sha256"]:
        raise CheckpointError(f"{path}: weights do not match their recorded sha256 (file modified or corrupt)")
    return header, tensors


def _state_mismatch(expected: Mapping[str, torch.Size], stored: Mapping[str, torch.Tensor]) -> str:
    """One-line summary of how ``stored`` differs from the expected keys and shapes ('' if it fits)."""

    def first(names: list[str]) -> str:
        return ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")

    problems = []
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(stored) if tuple(stored[k].shape) != tuple(expected[k]))
    if missing:
        problems.append(f"missing {first(missing)}")
    if unexpected:
        problems.append(f"unexpected {first(unexpected)}")
    if reshaped:
        problems.append(f"wrong shape {first(reshaped)}")
    return "; ".join(problems)


def _weights(header: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], which: str) -> dict[str, torch.Tensor]:
    """The state dict of one weight set; ``which="auto"`` is EMA when stored, else the model's."""
    if which == "auto":
        which = "ema" if header["tensors"].get("ema") else "model"
    if which not in WEIGHT_SETS:
        raise ValueError(f"weights must be 'auto', 'model' or 'ema', got {which!r}")
    prefix = f"{which}."
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not state:
        raise CheckpointError(f"checkpoint holds no {which} weights")
    return state


def _build(path: PathLike, header: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Rebuild the configured model (on the current default device) and check ``state`` fits it."""
    _check_grid_padding(header)
    try:
        model = build_model(header["kind"], header["model"])
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: model configuration cannot be built: {exc}") from None
    mismatch = _state_mismatch({k: v.shape for k, v in model.state_dict().items()}, state)
    if mismatch:
        raise CheckpointError(f"{path}: weights do not fit the stored {header['kind']} configuration: {mismatch}")
    return model


def load_checkpoint(
    path: PathLike,
    expected_kind: str | None = None,
    weights: Literal["auto", "model", "ema"] = "auto",
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint`; returns (model in eval mode, header).

    Raises :class:`CheckpointError` with a one-line message for a missing, truncated or modified
    file, a kind other than ``expected_kind``, a newer format, or weights that do not fit the
    stored configuration.
    """
    header, tensors = _read(path)
    if expected_kind is not None and header["kind"] != expected_kind:
        raise CheckpointError(f"{path} holds a model of kind {header['kind']!r}, but {expected_kind!r} was expected")
    state = _weights(header, tensors, weights)
    model = _build(path, header, state)
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), header


def read_checkpoint_header(path: PathLike) -> OutputHeader | None:
    """What a file says about itself if it is a climdiff checkpoint (its metadata only, no tensors
    read or checked), else None: a cheap test for `climdiff info`, which then verifies it fully."""
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {})[METADATA_KEY])
    except (safetensors.SafetensorError, OSError, ValueError, KeyError):
        return None
    return OutputHeader(kind=CHECKPOINT_KIND, config=meta if isinstance(meta, dict) else {}, complete=True)


def describe_checkpoint(path: PathLike) -> dict[str, Any]:
    """Everything ``climdiff info`` shows about a checkpoint, after validating it fully (without
    allocating the model: it is built on the meta device to check shapes)."""
    header, tensors = _read(path)
    state = _weights(header, tensors, "model")
    with torch.device("meta"):
        model = _build(path, header, state)
    return {
        "path": str(Path(path).resolve()),
        "file_bytes": Path(path).stat().st_size,
        "file_sha256": file_sha256(path),
        "parameters": count_parameters(model),
        **header,
    }

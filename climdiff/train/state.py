"""Training state (weights, EMA, optimiser, counters) saved without pickle.

A nested structure of tensors and plain values is split into a flat ``{name: tensor}`` map,
stored as safetensors, and a JSON skeleton that says where each tensor goes and keeps the
types JSON would lose (integer dictionary keys, tuples). One file, written atomically, so a kill
at any moment leaves the previous state or the new one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from climdiff.atomic import atomic_write
from climdiff.errors import ClimdiffError

META_KEY = "climdiff-train-state"


def _flatten(obj: Any, name: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[name] = obj.detach().cpu().contiguous()
        return {"tensor": name}
    if isinstance(obj, dict):
        return {"dict": [[key, _flatten(value, f"{name}/{key}", tensors)] for key, value in obj.items()]}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_flatten(value, f"{name}/{i}", tensors) for i, value in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    raise TypeError(f"cannot store {type(obj).__name__} in a training state")


def _unflatten(node: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Any:
    ((kind, body),) = node.items()
    if kind == "tensor":
        return tensors[body]
    if kind == "dict":
        return {key: _unflatten(value, tensors) for key, value in body}
    if kind == "list":
        return [_unflatten(value, tensors) for value in body]
    if kind == "tuple":
        return tuple(_unflatten(value, tensors) for value in body)
    return body


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (nested dicts/lists of tensors and plain values) atomically."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, "", tensors)
    metadata = {META_KEY: json.dumps(skeleton)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_state(path: Path) -> dict[str, Any]:
    """Read a state written by :func:`save_state`."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            skeleton = json.loads(fh.metadata()[META_KEY])
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}
    except Exception as err:
        raise ClimdiffError(f"cannot read training state {path}: {err}") from err
    return _unflatten(skeleton, tensors)

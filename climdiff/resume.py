"""The one resume rule every command follows (docs/architecture.md, "Conventions").

Re-running a command on an incomplete output whose stored configuration matches continues it;
a complete output, or one made with another configuration, is refused unless ``--overwrite``.
``--overwrite`` only ever deletes something climdiff itself wrote: a foreign directory is
refused whatever the flags, so a typo in ``--out`` cannot remove a user's data.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from climdiff import __version__
from climdiff.atomic import atomic_write_bytes
from climdiff.errors import StoreError


@dataclass(frozen=True)
class OutputHeader:
    """What an existing output says about itself: its kind, configuration and completeness."""

    kind: str
    config: dict[str, Any]
    complete: bool


def is_complete(header: OutputHeader | None) -> bool:
    """Whether an output exists and is complete (``header`` as any ``read_*header`` returns it):
    what decides that a resumable stage is done."""
    return header is not None and header.complete


def read_json_header(file: Path) -> OutputHeader | None:
    """The header of a directory output kept in a JSON file (``kind``, ``config``, ``complete``),
    or None when ``file`` is missing, unreadable or not such a header."""
    try:
        meta = json.loads(Path(file).read_text())
        return OutputHeader(kind=meta["kind"], config=meta.get("config", {}), complete=bool(meta.get("complete")))
    except (OSError, ValueError, KeyError, TypeError):  # not ours, or unreadable
        return None


def write_json_header(file: Path, kind: str, config: dict[str, Any], complete: bool, **extra: Any) -> None:
    """Write the header :func:`read_json_header` reads (plus ``extra`` entries), atomically: a
    resumed command never meets half a header."""
    header = {"kind": kind, "climdiff_version": __version__, "config": config, "complete": complete, **extra}
    atomic_write_bytes(Path(file), json.dumps(header, indent=2).encode())


def canonical(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration as it reads back from JSON (tuples become lists), for comparison."""
    return json.loads(json.dumps(config, sort_keys=True))


def without_added_defaults(values: dict[str, Any], added: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the settings in ``added`` (name -> default) that hold their default: a
    setting introduced after outputs were first written stays out of their identity until it is
    used, so those outputs still resume."""
    return {k: v for k, v in values.items() if k not in added or v != added[k]}


def config_differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Names of top-level settings that differ between two configurations."""
    a, b = canonical(stored), canonical(wanted)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def check_parent_writable(path: Path) -> None:
    """Refuse early, with a clear message, an output whose folder is missing or read-only."""
    parent = path.absolute().parent
    if not parent.is_dir():
        raise StoreError(f"cannot create {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"cannot create {path}: folder {parent} is not writable")


def remove_output(path: Path) -> None:
    """Delete an output that climdiff wrote (directory store or single file)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def claim_output(
    path: Path,
    *,
    kind: str,
    config: dict[str, Any],
    overwrite: bool,
    header: OutputHeader | None,
    noun: str = "store",
) -> bool:
    """Decide whether to start ``path`` afresh (False) or resume it (True), or refuse.

    ``header`` is what the existing output at ``path`` says about itself, or None when there is
    nothing readable there (the caller reads it; this function only applies the rule).
    """
    if not path.exists() and not path.is_symlink():
        check_parent_writable(path)
        return False
    if header is None:
        if path.is_dir() and not any(path.iterdir()):
            return False
        raise StoreError(
            f"{path} exists and is not a climdiff {noun}; refusing to touch it (choose another output path)"
        )
    if overwrite:
        remove_output(path)
        check_parent_writable(path)
        return False
    if header.kind != kind:
        raise StoreError(
            f"{path} is a climdiff {header.kind} {noun}, not a {kind} one; "
            "use --overwrite to replace it or choose another output path"
        )
    differences = config_differences(header.config, config)
    if differences:
        raise StoreError(
            f"{path} was made with another configuration (differs in: {', '.join(differences)}); "
            "use --overwrite to replace it or choose another output path"
        )
    if header.complete:
        raise StoreError(f"{path} is already complete; use --overwrite to make it again")
    return True

"""A full disk reported as one line: which output, how much it needs, how much is free.

Every writer commits in resumable steps (DESIGN.md section 3), so a command that runs out of space
has lost nothing: the user frees space and re-runs the same command. Only the message is ours.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from climdiff.errors import ClimdiffError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def human_size(nbytes: float) -> str:
    """Bytes in the largest binary unit that keeps the number at least 1 (e.g. '3.2 GiB')."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= factor:
            return f"{nbytes / factor:.1f} {unit}"
    return f"{int(nbytes)} B"


def free_space(path: Path) -> int:
    """Bytes free on the file system that holds ``path`` (or its nearest existing folder)."""
    folder = Path(path).absolute()
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


@contextmanager
def reporting_full_disk(out: Path, needed_bytes: int) -> Iterator[None]:
    """Turn "no space left on device" (or an exceeded quota) while writing ``out`` into a
    :class:`ClimdiffError` naming the output, the space it needs in all (``needed_bytes``, an
    uncompressed upper bound) and the space free now."""
    try:
        yield
    except OSError as err:
        if err.errno not in NO_SPACE:
            raise
        raise ClimdiffError(
            f"no space left on the device writing {out} (it needs up to {human_size(needed_bytes)} in all, "
            f"{human_size(free_space(out))} is free); free some space and re-run the same command to resume"
        ) from None

"""`climdiff info`: describe any climdiff output.

Every output kind has one header reader (what a path says about itself, or None) and one
``describe`` (docs/architecture.md, "Describing outputs"); this command only tries the readers in
turn and renders the description of the first that recognises the path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from climdiff.bundle import BUNDLE_KIND, describe_bundle, read_bundle_header
from climdiff.checkpoint import CHECKPOINT_KIND, describe_checkpoint, read_checkpoint_header
from climdiff.cli.common import Json, print_summary
from climdiff.data.info import describe_training_store
from climdiff.errors import ClimdiffError
from climdiff.evaluate.runner import EVALUATION_KIND, describe_evaluation, read_evaluation_header
from climdiff.resume import OutputHeader
from climdiff.rollout.info import describe_rollout_store
from climdiff.train.loop import RUN_KIND, describe_run, read_run_header
from climdiff.zarr_io import EMULATION_KIND, FORECAST_KIND, TRAINING_KIND, read_header

HEADER_READERS: tuple[Callable[[Path], OutputHeader | None], ...] = (
    read_bundle_header,
    read_run_header,
    read_checkpoint_header,
    read_header,
    read_evaluation_header,
)
DESCRIBE: dict[str, Callable[[Path], dict[str, Any]]] = {
    BUNDLE_KIND: describe_bundle,
    RUN_KIND: describe_run,
    CHECKPOINT_KIND: describe_checkpoint,
    TRAINING_KIND: describe_training_store,
    EMULATION_KIND: describe_rollout_store,
    FORECAST_KIND: describe_rollout_store,
    EVALUATION_KIND: describe_evaluation,
}


def describe_output(path: Path) -> dict[str, Any]:
    """The description of whatever climdiff output ``path`` is; one clear error if it is none."""
    if not path.exists():
        raise ClimdiffError(f"{path} does not exist")
    for read in HEADER_READERS:
        header = read(path)
        if header is not None and header.kind in DESCRIBE:
            return DESCRIBE[header.kind](path)
    raise ClimdiffError(f"{path} is not a climdiff store, checkpoint, training run, bundle or evaluation")


def info(
    path: Annotated[Path, typer.Argument(help="A store, checkpoint, training-run directory, bundle or evaluation.")],
    as_json: Json = False,
) -> None:
    """Describe any climdiff output: store, checkpoint, training run, bundle or evaluation."""
    print_summary(str(path), describe_output(path), as_json)

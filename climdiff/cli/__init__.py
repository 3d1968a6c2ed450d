"""The `climdiff` command: a thin shell over library functions.

Every command validates its input and calls the library; user errors
(:class:`~climdiff.errors.ClimdiffError`) become one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Annotated

import typer

from climdiff import __version__
from climdiff.cli import data, experiment
from climdiff.cli.bundle import bundle
from climdiff.cli.emulate import emulate
from climdiff.cli.evaluate import evaluate
from climdiff.cli.export import export
from climdiff.cli.info import info
from climdiff.cli.train import train
from climdiff.cli.tune import tune_guidance_command
from climdiff.diskspace import NO_SPACE
from climdiff.errors import ClimdiffError

app = typer.Typer(
    name="climdiff",
    help="Discriminator-guided diffusion emulator of time-consistent daily fields.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(experiment.app, name="experiment")
app.command()(train)
app.command()(bundle)
app.command()(emulate)
app.command()(evaluate)
app.command()(info)
app.command()(export)
app.command("tune-guidance")(tune_guidance_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"climdiff {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """climdiff: data -> train -> emulate -> evaluate."""


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file=None, line=None
) -> None:  # noqa: ANN001
    print(f"climdiff: warning: {message}", file=sys.stderr)


INTERRUPTED = 130  # the shell's status for a command ended by SIGINT (128 + 2)


def _quiet_abandoned_writes() -> None:
    """After Ctrl-C, zarr's event-loop thread may still hold the chunk writes the interrupt cut
    short; at exit asyncio reports them (cancelled, or failing on the closed loop) with tracebacks,
    through its logger or as 'exception ignored'. Those writes were never committed, and resuming
    redoes them, so the reports are noise after the one line that says how to resume."""
    logging.getLogger("asyncio").disabled = True
    sys.unraisablehook = lambda _: None


def main() -> None:
    """Entry point: run the app, turning user errors and interrupts into clean exits."""
    warnings.showwarning = _show_warning  # one line per warning, no source excerpt
    try:
        # typer turns Ctrl-C into Exit(130) and, outside standalone mode, returns that code
        code = app(standalone_mode=False)
    except ClimdiffError as err:
        print(f"climdiff: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        code = INTERRUPTED
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except OSError as err:  # a full disk in a writer that does not estimate its size itself
        if err.errno not in NO_SPACE:
            raise
        print(
            f"climdiff: error: no space left on the device writing {err.filename}; "
            "free some space and re-run the same command to resume",
            file=sys.stderr,
        )
        sys.exit(ClimdiffError.exit_code)
    except typer.TyperException as err:  # usage errors: bad option values, unknown commands
        show = getattr(err, "show", None)
        if show is not None:
            show()
        else:
            print(f"climdiff: error: {err}", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 2))
    if code == INTERRUPTED:
        _quiet_abandoned_writes()
        print(
            "climdiff: interrupted; everything committed so far is kept: re-run the same command to resume",
            file=sys.stderr,
        )
    if isinstance(code, int) and code:
        sys.exit(code)

"""User-facing errors.

Library code raises :class:`ClimdiffError` for anything the user can fix (bad input, a store
that does not match, a solver that blew up). The CLI turns it into one line on stderr and a
non-zero exit status; anything else is a bug and keeps its traceback.
"""


class ClimdiffError(Exception):
    """An error whose message is meant for the user, printed without a traceback."""

    exit_code: int = 2


class StoreError(ClimdiffError):
    """A store is missing, not a climdiff store, incomplete, or made with another configuration."""


class SolverError(ClimdiffError):
    """The numerical solver produced non-finite values (usually: time step too large)."""

    exit_code = 3

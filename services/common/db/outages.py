"""What a database failure means to a stream: an outage waits, a bug does not.

Every store wraps its statements in `database_outage`, so an unreachable database, a lost
connection, a statement timeout, or a schema that is not there yet (the migration Job still
running, `triggerline migrate` not run) becomes `TransientFailure`: the message is held and
tried again, and readiness says why. Any other error (a constraint the caller did not expect,
a bad statement) goes on as it is, to be dead-lettered and fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import OperationalError, ProgrammingError

from services.common.errors import TransientFailure

UNDEFINED_TABLE = (
    "42P01"  # PostgreSQL's SQLSTATE; SQLite says "no such table" as an OperationalError
)


@contextmanager
def database_outage(what: str) -> Iterator[None]:
    """Run the block; an outage of the `what` database raises `TransientFailure`."""
    try:
        yield
    except OperationalError as exc:
        raise TransientFailure(f"{what} database unavailable: {exc.orig}") from exc
    except ProgrammingError as exc:
        if getattr(exc.orig, "sqlstate", None) != UNDEFINED_TABLE:
            raise
        raise TransientFailure(
            f"{what} database has no schema yet (run `triggerline migrate`): {exc.orig}"
        ) from exc

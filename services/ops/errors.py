"""The error an operator command reports in one line: a bad argument, changing nothing."""

from __future__ import annotations

from services.common.errors import TriggerlineError


class OperatorError(TriggerlineError):
    """An argument or input file the command cannot act on; nothing has been changed.

    `triggerline` prints it as one line on stderr and exits with status 2, like a usage error.
    """

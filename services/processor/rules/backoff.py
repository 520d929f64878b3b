"""How long to wait before retrying a dependency that failed transiently."""

from __future__ import annotations

from datetime import timedelta


def retry_delay(
    attempt: int, initial: timedelta, maximum: timedelta, hint: timedelta | None = None
) -> timedelta:
    """Exponential back-off: `initial * 2**(attempt-1)`, capped at `maximum`.

    A dependency's own hint (`retry_after`) wins when it is longer, still capped: waiting less
    than the dependency asked only adds load to something already failing.
    """
    exponent = min(max(attempt - 1, 0), 30)
    delay = min(initial * (1 << exponent), maximum)
    if hint is not None and hint > delay:
        delay = min(hint, maximum)
    return delay

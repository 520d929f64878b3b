"""Waiting by deadline: poll a condition until it holds, or fail naming what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T],
    deadline: float = 10.0,
    every: float = 0.05,
    what: str | Callable[[], str] = "the condition",
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """Call `check` every `every` seconds until it returns something truthy, and return that.

    When `deadline` seconds have passed, raise AssertionError naming `what` (what was awaited)
    and the last value `check` returned. A callable `what` is asked only then, so it can end
    with a service's latest log lines. Exceptions in `ignoring` mean "not yet" (a server still
    starting up) and show as the last value; any other exception ends the wait at once.
    """
    end = time.monotonic() + deadline
    while True:
        try:
            value = check()
        except ignoring as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if value:
                return value
            last = repr(value)
        if time.monotonic() >= end:
            described = what() if callable(what) else what
            raise AssertionError(f"waited {deadline:g} s (last: {last}) for {described}")
        time.sleep(every)

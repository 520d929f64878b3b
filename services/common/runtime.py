"""Process-wide interpreter settings that every long-running service applies the same way."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Exempt everything allocated during start-up from the cyclic garbage collector.

    A service's start-up heap (imported modules, faust, aiokafka, SQLAlchemy, compiled routes)
    lives as long as the process, yet every full collection walked all of it again: in the
    processor those collections paused the event loop for 57-107 ms each, a latency spike for
    every trigger in flight. Frozen objects are skipped from then on (a full collection took
    5-34 ms afterwards). Start-up garbage is collected first; a frozen object freed later by its
    reference count is freed as usual, only a cycle among frozen objects would stay. Returns how
    many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

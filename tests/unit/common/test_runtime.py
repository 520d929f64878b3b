"""The start-up heap freeze: what exists at start-up leaves the collector's reach, later
objects do not."""

from __future__ import annotations

import gc

from services.common.runtime import freeze_startup_heap


def _collected(item: object) -> bool:
    """Whether the cyclic collector still walks `item` (frozen objects are not listed)."""
    return any(candidate is item for candidate in gc.get_objects())


def test_objects_from_start_up_are_frozen_and_later_ones_are_not() -> None:
    at_start_up: dict[str, list[object]] = {"routes": []}
    assert _collected(at_start_up)
    try:
        frozen = freeze_startup_heap()
        later: dict[str, list[object]] = {"state": []}
        assert frozen == gc.get_freeze_count() > 0
        assert not _collected(at_start_up)
        assert _collected(later)
    finally:
        gc.unfreeze()
    assert _collected(at_start_up)

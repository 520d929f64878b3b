"""Idempotency keys, offset-gap arithmetic and retry back-off."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from services.common.backoff import backoff_delay
from services.processor.rules.keys import idempotency_key
from services.processor.rules.offsets import (
    held_back,
    next_commit,
    non_record_ranges,
    uncommitted_part,
)


def test_idempotency_key_is_deterministic_and_field_sensitive() -> None:
    key = idempotency_key("cart", "P1", "m1")
    assert key == hashlib.sha256(b"cart|P1|m1").hexdigest()
    assert key == idempotency_key("cart", "P1", "m1")
    others = {idempotency_key("cart", "P2", "m1"), idempotency_key("browse", "P1", "m1")}
    assert len({key, *others}) == 3


def test_non_record_ranges_between_and_after_records() -> None:
    # records 10, 11, marker 12, aborted 13-15, abort marker 16, record 17, marker 18
    assert non_record_ranges(10, 19, [10, 11, 17]) == [(12, 16), (18, 18)]


def test_non_record_ranges_when_fetch_held_only_markers() -> None:
    assert non_record_ranges(5, 9, []) == [(5, 8)]
    assert non_record_ranges(5, 5, []) == []
    assert non_record_ranges(5, 7, [5, 6]) == []


def test_commit_moves_over_adjacent_gaps_only() -> None:
    assert next_commit(12, [], [(12, 16), (18, 18)]) == 17
    assert next_commit(17, [], [(12, 16), (18, 18)]) == 17  # 17 is a record not yet done
    assert next_commit(18, [], [(18, 18), (19, 20)]) == 21
    assert next_commit(0, [], [(1, 3)]) == 0


def test_a_commit_runs_from_the_committed_offset_over_handled_records_and_gaps_only() -> None:
    assert next_commit(150, [150, 151, 152], []) == 153
    assert next_commit(150, [151, 152], []) == 150  # 150 not handled: faust would commit 153
    assert next_commit(0, [1, 2], []) == 0  # and at 0 faust skips its head check entirely
    assert next_commit(150, [150, 153], [(151, 152)]) == 154
    assert next_commit(150, [150, 152], [(155, 156)]) == 151
    assert next_commit(5, [7, 8], [(5, 6)]) == 9
    assert next_commit(0, [3], [(4, 4), (0, 2), (9, 12)]) == 5  # ranges in any order
    assert next_commit(10, [], [(0, 4), (8, 12)]) == 13  # from inside a range


def test_offset_zero_then_aborted_batch_still_commits() -> None:
    """faust #606: record 0, marker 1, aborted 2-4, marker 5, record 6 left faust stuck at 1."""
    gaps = non_record_ranges(0, 8, [0, 6])
    assert gaps == [(1, 5), (7, 7)]
    assert next_commit(1, [], gaps) == 6
    assert next_commit(7, [], gaps) == 8


def test_markers_fetched_after_the_commit_are_passed_from_the_committed_offset() -> None:
    # records up to 32 committed (next to read: 33); then marker 33 and an aborted tail to 42
    part = uncommitted_part(33, 42, committed=33)
    assert part == (33, 42)
    assert next_commit(33, [], [part]) == 43
    assert uncommitted_part(30, 42, committed=35) == (35, 42)
    assert uncommitted_part(30, 34, committed=35) is None
    assert uncommitted_part(3, 4, committed=None) == (3, 4)


def test_nothing_is_held_back_while_the_streams_flow() -> None:
    assert held_back({"raw-0": [5, 6]}, {"raw-0": 5}, True, lambda part: True) == {}


def test_agent_records_fetched_while_the_streams_stop_are_fetched_again() -> None:
    fetched = {"raw-0": [5, 6], "raw-1": [9], "changelog-0": [3, 4], "raw-2": []}
    positions = {"raw-0": 5, "raw-1": 7, "changelog-0": 3, "raw-2": 2}
    held = held_back(fetched, positions, False, lambda part: part.startswith("raw"))
    # raw-1 from 7: markers 7-8 are read again, so they are still seen as non-records
    assert held == {"raw-0": 5, "raw-1": 7}  # the changelog is restoring state: it passes


def test_records_are_fetched_again_from_the_earlier_of_position_and_first_record() -> None:
    # a seek back while the fetch waited: the position read before it is stale, start early
    assert held_back({"raw-0": [4, 5]}, {"raw-0": 9}, False, lambda part: True) == {"raw-0": 4}
    assert held_back({"raw-0": [4, 5]}, {}, False, lambda part: True) == {"raw-0": 4}


def test_backoff_doubles_is_capped_and_honours_longer_hints() -> None:
    first, cap = timedelta(milliseconds=200), timedelta(seconds=30)
    assert [backoff_delay(n, first, cap).total_seconds() for n in (1, 2, 3)] == [0.2, 0.4, 0.8]
    assert backoff_delay(50, first, cap) == cap
    assert backoff_delay(1, first, cap, 0.0) == first / 2
    assert backoff_delay(1, first, cap, retry_after=timedelta(seconds=5)) == timedelta(seconds=5)
    # a Retry-After hint is a floor, even above the cap: retrying sooner only adds load
    assert backoff_delay(1, first, cap, retry_after=timedelta(hours=1)) == timedelta(hours=1)

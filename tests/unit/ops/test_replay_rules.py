"""Rewind targets and re-drive routing."""

from __future__ import annotations

import pytest

from services.ops.rules.replay import (
    PartitionMove,
    describe_plan,
    redrive_destination,
    redrive_headers,
    rewind_target,
)


@pytest.mark.parametrize(
    ("mode", "by_time", "offset", "expected"),
    [
        ("earliest", None, None, 10),
        ("latest", None, None, 50),
        ("datetime", 30, None, 30),
        ("datetime", -1, None, 50),  # after the last record: start at the end
        ("offset", None, 5, 10),  # below what the log still holds: clamped
        ("offset", None, 70, 50),
        ("offset", None, 25, 25),
    ],
)
def test_rewind_target(mode: str, by_time: int | None, offset: int | None, expected: int) -> None:
    assert rewind_target(mode, 10, 50, by_time, offset) == expected


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        rewind_target("yesterday", 0, 1)


def test_plan_counts_replayed_records() -> None:
    moves = [PartitionMove(0, 40, 10, 10, 50), PartitionMove(1, None, 0, 0, 5)]
    assert moves[0].replayed == 30 and moves[1].replayed == 0
    assert "total replayed: 30" in describe_plan("g", "t", moves)


def test_dead_letters_go_back_only_to_allowed_topics() -> None:
    assert redrive_destination({"x-original-topic": "triggers.raw"}, {"triggers.raw"}) == (
        "triggers.raw"
    )
    assert redrive_destination({"x-original-topic": "pipeline:triggers"}, {"triggers.raw"}) is None
    assert redrive_destination({}, {"triggers.raw"}) is None


def test_redrive_headers_drop_the_error_and_count_the_redrives() -> None:
    headers = [
        ("message-id", b"m1"),
        ("x-original-topic", b"triggers.raw"),
        ("x-error-reason", b"no_profile"),
        ("x-redrive-count", b"2"),
    ]
    again = dict(redrive_headers(headers))
    assert again["message-id"] == b"m1" and "x-error-reason" not in again
    assert again["x-redrive-count"] == b"3"

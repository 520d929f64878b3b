"""Rewind targets and plans, moments, and re-drive routing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.ops.errors import OperatorError
from services.ops.rules.moments import parse_moment
from services.ops.rules.replay import (
    PartitionMove,
    RewindRequest,
    describe_plan,
    parse_offsets,
    partitions_to_move,
    plan_partition,
    qualified_topic,
    redrive_destination,
    redrive_headers,
    rewind_target,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("mode", "by_time", "offset", "expected"),
    [
        ("earliest", None, None, 10),
        ("latest", None, None, 50),
        ("datetime", 30, None, 30),
        ("datetime", -1, None, 50),  # after the last record: start at the end
        ("datetime", 3, None, 10),  # before what the log still holds: clamped
        ("offset", None, 25, 25),
        ("offset", None, 10, 10),
        ("offset", None, 50, 50),
    ],
)
def test_rewind_target(mode: str, by_time: int | None, offset: int | None, expected: int) -> None:
    assert rewind_target(mode, 10, 50, by_time, offset) == expected


@pytest.mark.parametrize("offset", [5, 51, -1])
def test_an_explicit_offset_outside_the_log_is_refused(offset: int) -> None:
    with pytest.raises(OperatorError, match=r"out of range: the partition holds offsets 10\.\.50"):
        rewind_target("offset", 10, 50, None, offset)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        rewind_target("yesterday", 0, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0:123,1:456", {0: 123, 1: 456}),
        (" 3:0 ", {3: 0}),
        ("0:1, 2:5", {0: 1, 2: 5}),
    ],
)
def test_parse_offsets(text: str, expected: dict[int, int]) -> None:
    assert parse_offsets(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0=1", "is not PARTITION:OFFSET"),
        ("0:", "is not PARTITION:OFFSET"),
        ("a:1", "is not PARTITION:OFFSET"),
        ("0:-1", "is not PARTITION:OFFSET"),
        ("0:1,0:2", "names partition 0 twice"),
    ],
)
def test_bad_offsets_are_refused(text: str, message: str) -> None:
    with pytest.raises(OperatorError, match=message):
        parse_offsets(text)


@pytest.mark.parametrize(
    ("request_", "committed", "by_time", "target"),
    [
        (RewindRequest("offsets", offsets={1: 20}), 40, None, 20),
        (RewindRequest("offset", offset=15), None, None, 15),
        (RewindRequest("datetime", when=NOW), 40, 33, 33),
        (RewindRequest("earliest"), 40, None, 10),
    ],
)
def test_plan_partition(
    request_: RewindRequest, committed: int | None, by_time: int | None, target: int
) -> None:
    move = plan_partition("triggers.raw", 1, committed, 10, 50, request_, by_time)
    assert (move.topic, move.partition, move.target) == ("triggers.raw", 1, target)


def test_plan_partition_names_topic_and_partition_when_refusing() -> None:
    with pytest.raises(
        OperatorError, match=r"triggers\.raw partition 1: offset 99 is out of range"
    ):
        plan_partition("triggers.raw", 1, 0, 0, 50, RewindRequest("offsets", offsets={1: 99}))


def test_offsets_move_only_the_named_partitions_which_must_exist() -> None:
    request = RewindRequest("offsets", offsets={2: 1, 0: 5})
    assert partitions_to_move(request, "t", [0, 1, 2]) == [0, 2]
    assert partitions_to_move(RewindRequest("earliest"), "t", [1, 0]) == [0, 1]
    with pytest.raises(OperatorError, match="t has no partition 2"):
        partitions_to_move(request, "t", [0, 1])


def test_plan_counts_replayed_records_and_names_a_new_group() -> None:
    moves = [PartitionMove(0, 40, 10, 10, 50), PartitionMove(1, None, 0, 0, 5)]
    assert moves[0].replayed == 30 and moves[1].replayed == 0
    text = describe_plan("g", "t", moves, RewindRequest("earliest"), new_group="g2")
    assert "total to reprocess: 30" in text and "into new group g2 (group g is left alone)" in text
    assert "partition    current     target  to reprocess" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - timedelta(hours=2)),
        ("90m", NOW - timedelta(minutes=90)),
        ("0s", NOW),
        ("2026-11-28T10:00:00Z", datetime(2026, 11, 28, 10, tzinfo=UTC)),
        ("2026-11-28T11:00:00+01:00", datetime(2026, 11, 28, 10, tzinfo=UTC)),
        ("2026-11-28T10:00:00", datetime(2026, 11, 28, 10, tzinfo=UTC)),  # UTC unless given
    ],
)
def test_parse_moment(text: str, expected: datetime) -> None:
    assert parse_moment(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-28T13:00:00Z", "is in the future"),
        ("tomorrow", "neither a duration"),
        ("-2h", "neither a duration"),
    ],
)
def test_bad_moments_are_refused(text: str, message: str) -> None:
    with pytest.raises(OperatorError, match=message):
        parse_moment(text, NOW, "--since")


@pytest.mark.parametrize(
    ("name", "prefix", "expected"),
    [
        ("triggers.raw", "", "triggers.raw"),
        ("triggers.raw", "staging.", "staging.triggers.raw"),
        ("staging.triggers.raw", "staging.", "staging.triggers.raw"),
    ],
)
def test_topics_are_named_in_the_environments_namespace(
    name: str, prefix: str, expected: str
) -> None:
    assert qualified_topic(name, prefix) == expected


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

"""The fetcher's pure decisions: flushing, partition ownership, envelope validation."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from services.common.errors import InvalidInput
from services.fetcher.envelopes import Sync, parse_envelope
from services.fetcher.rules.flush import FlushLimits, flush_due
from services.fetcher.rules.partitions import replica_partitions, worker_partitions

LIMITS = FlushLimits(
    message_count=1000,
    period=timedelta(seconds=5),
    linger=timedelta(milliseconds=50),
    commit_interval=timedelta(0),  # pipelined's own cadence
)
MS = timedelta(milliseconds=1)
S = 1000 * MS


@pytest.mark.parametrize(
    ("pending", "since_first", "idle", "due"),
    [
        (0, 10 * S, 10 * S, False),  # nothing to commit
        (1000, 0 * S, 0 * S, True),  # pointerFlushMessageCount
        (999, 1 * S, timedelta(milliseconds=10), False),
        (1, 5 * S, timedelta(0), True),  # pointerFlushPeriodSec
        (1, 1 * S, timedelta(milliseconds=50), True),  # quiet upstream
    ],
)
def test_flush_due(pending: int, since_first: timedelta, idle: timedelta, due: bool) -> None:
    assert flush_due(pending, since_first, idle, LIMITS) is due


@pytest.mark.parametrize(
    ("period", "interval", "since_first", "due"),
    [
        (5 * S, 100 * MS, 99 * MS, False),
        (5 * S, 100 * MS, 100 * MS, True),  # a steady stream commits every interval
        (50 * MS, 100 * MS, 50 * MS, True),  # a shorter pointerFlushPeriodSec still wins
        (5 * S, 0 * MS, 4 * S, False),  # interval 0: only the period, as pipelined
    ],
)
def test_a_steady_stream_commits_at_the_interval_whatever_the_flush_period(
    period: timedelta, interval: timedelta, since_first: timedelta, due: bool
) -> None:
    limits = FlushLimits(1000, period, linger=50 * MS, commit_interval=interval)
    assert flush_due(10, since_first, idle=1 * MS, limits=limits) is due


def test_replicas_split_partitions_without_overlap() -> None:
    owned = [replica_partitions(15, r, 4) for r in range(4)]
    flat = sorted(p for group in owned for p in group)
    assert flat == list(range(15))
    with pytest.raises(ValueError):
        replica_partitions(15, 4, 4)


def test_workers_share_partitions_and_none_is_empty() -> None:
    assert worker_partitions([0, 1, 2, 3, 4, 5], 4) == [[0, 4], [1, 5], [2], [3]]
    assert worker_partitions([3], 4) == [[3]]


def test_sync_envelope() -> None:
    parsed = parse_envelope(b'{"envelopeType":"SYNC","syncMarker":"abc"}')
    assert parsed == Sync("abc")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not_json"),
        (b"[1,2]", "not_an_object"),
        (b'{"envelopeType":"PING"}', "unknown_envelope_type"),
        (b'{"envelopeType":"DATA","topic":"triggers","partition":1,"offset":2}', "missing_field"),
    ],
)
def test_malformed_envelopes_say_why(line: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_envelope(line)
    assert caught.value.reason == reason


def _envelope(header: dict[str, Any]) -> dict[str, Any]:
    """A small DATA envelope with the given pipeline header."""
    return {
        "envelopeType": "DATA",
        "topic": "triggers",
        "partition": 1,
        "offset": 2,
        "createTime": 1,
        "com.adobe.mcloud.pipeline.pipelineMessage": {
            "header": header,
            "com.adobe.mcloud.protocol.trigger": {
                "triggerId": "t",
                "triggerTimestamp": 1469164250100,
                "mcId": "1",
            },
        },
    }


def test_missing_message_id_is_invalid() -> None:
    envelope = _envelope({"messageType": "TRIGGER"})
    with pytest.raises(InvalidInput, match="messageId"):
        parse_envelope(json.dumps(envelope).encode())


@pytest.mark.parametrize(
    ("where", "field", "value"),
    [
        ("header", "properties", 5),
        ("header", "properties", "name=value"),
        ("com.adobe.mcloud.protocol.trigger", "triggerPath", 7),
        ("com.adobe.mcloud.protocol.trigger", "triggerPath", {"stateId": "1"}),
    ],
)
def test_a_list_field_of_another_type_is_invalid_not_a_crash(
    where: str, field: str, value: object
) -> None:
    """A TypeError here would stop the ingest worker instead of dead-lettering one envelope."""
    envelope = _envelope({"messageType": "TRIGGER", "messageId": "m-1"})
    envelope["com.adobe.mcloud.pipeline.pipelineMessage"][where][field] = value
    with pytest.raises(InvalidInput) as caught:
        parse_envelope(json.dumps(envelope).encode())
    assert caught.value.reason == "bad_field"
    assert field in str(caught.value)

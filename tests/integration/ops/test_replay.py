"""`triggerline replay` against the real broker: plans, refusals, rewinds and re-drives."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from services.cli import main as cli
from services.common.dlq import dead_letter_headers
from services.common.kafka import header
from services.common.settings import KafkaSettings
from services.ops.errors import OperatorError
from services.ops.redrive import redrive
from services.ops.rewind import GroupActive, apply_rewind, rewind_plan
from services.ops.rules.redrive import NOT_REDRIVABLE
from services.ops.rules.replay import RewindRequest


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )


def _consume_all(consumer: Consumer, topic: str, count: int) -> None:
    consumer.subscribe([topic])
    seen, end = 0, time.monotonic() + 30
    while seen < count and time.monotonic() < end:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            seen += 1
    assert seen == count
    consumer.commit(asynchronous=False)


def _read_and_leave(bootstrap: str, group: str, topic: str, count: int) -> None:
    """Commit a group at the end of `topic`, then leave it: a stopped group."""
    consumer = _consumer(bootstrap, group)
    _consume_all(consumer, topic, count)
    consumer.close()


def _committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    check = _consumer(bootstrap, group)
    try:
        found = check.committed([TopicPartition(topic, p) for p in range(partitions)], 10)
        return [tp.offset for tp in found]
    finally:
        check.close()


def test_rewind_shows_the_plan_refuses_a_live_group_then_applies(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    producer: Producer,
    group_id: str,
) -> None:
    topic = topic_factory("replay", partitions=3)
    for i in range(30):
        producer.produce(topic, key=str(i).encode(), value=b"v", partition=i % 3)
    producer.flush(10)
    live = _consumer(kafka_settings.bootstrap_servers, group_id)
    _consume_all(live, topic, 30)
    moves = rewind_plan(kafka_settings, group_id, [topic], RewindRequest("earliest"))
    assert [(m.committed, m.target) for m in moves] == [(10, 0)] * 3
    assert sum(m.replayed for m in moves) == 30
    with pytest.raises(GroupActive, match="live members rdkafka@"):
        apply_rewind(kafka_settings, group_id, moves)
    live.close()
    apply_rewind(kafka_settings, group_id, moves)
    assert _committed(kafka_settings.bootstrap_servers, group_id, topic, 3) == [0, 0, 0]


def test_rewind_by_duration_offsets_and_into_a_new_group(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    producer: Producer,
    group_id: str,
    unique: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = topic_factory("replay-time", partitions=2)
    now = int(time.time() * 1000)
    for partition in (0, 1):
        for i in range(10):  # two hours old
            producer.produce(
                topic, value=b"old", partition=partition, timestamp=now - 7_200_000 + i
            )
        for i in range(5):
            producer.produce(topic, value=b"new", partition=partition, timestamp=now - 60_000 + i)
    producer.flush(10)
    _read_and_leave(kafka_settings.bootstrap_servers, group_id, topic, 30)
    base = ["replay", "rewind", "--group", group_id, "--topic", topic]
    assert cli([*base, "--to-duration", "1h"]) == 0
    plan = capsys.readouterr().out
    assert "to reprocess" in plan and "total to reprocess: 10" in plan
    assert _committed(kafka_settings.bootstrap_servers, group_id, topic, 2) == [15, 15]
    assert cli([*base, "--to-offsets", "1:3", "--execute"]) == 0
    assert _committed(kafka_settings.bootstrap_servers, group_id, topic, 2) == [15, 3]
    fresh = f"fresh-{unique}"
    assert cli([*base, "--to-duration", "1h", "--to-new-group", fresh, "--execute"]) == 0
    assert "left alone" in capsys.readouterr().out
    assert _committed(kafka_settings.bootstrap_servers, fresh, topic, 2) == [10, 10]
    assert _committed(kafka_settings.bootstrap_servers, group_id, topic, 2) == [15, 3]
    # the new group now exists: copying into it again is refused
    assert cli([*base, "--to-earliest", "--to-new-group", fresh, "--execute"]) == 2
    assert "already has offsets" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--group", "{unknown}", "--to-earliest"], "is unknown on this cluster"),
        (["--group", "{group}", "--to-duration", "zz"], "neither a duration"),
        (["--group", "{group}", "--to-datetime", "{future}"], "is in the future"),
        (
            ["--group", "{group}", "--to-offsets", "0:999"],
            "partition 0: offset 999 is out of range",
        ),
        (["--group", "{group}", "--to-offsets", "7:1"], "has no partition 7"),
        (["--group", "{group}", "--to-offsets", "0=1"], "is not PARTITION:OFFSET"),
        (["--group", "{group}", "--to-offset", "-5"], "out of range"),
    ],
)
def test_a_bad_rewind_argument_is_one_line_and_changes_nothing(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    producer: Producer,
    group_id: str,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    topic = topic_factory("replay-bad", partitions=1)
    for _ in range(4):
        producer.produce(topic, value=b"v", partition=0)
    producer.flush(10)
    _read_and_leave(kafka_settings.bootstrap_servers, group_id, topic, 4)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    filled = [
        a.format(unknown=f"nobody-{group_id}", group=group_id, future=future) for a in arguments
    ]
    code = cli(["replay", "rewind", "--topic", topic, *filled, "--execute"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert _committed(kafka_settings.bootstrap_servers, group_id, topic, 1) == [4]


def _dead_letters(producer: Producer, dlq: str, original: str, reasons: list[str]) -> None:
    for i, reason in enumerate(reasons):
        headers = dead_letter_headers(
            service="processor",
            reason=reason,
            error=None,
            source_topic=original,
            source_partition=0,
            source_offset=i,
            original=[("message-id", f"m{i}".encode())],
        )
        producer.produce(dlq, key=f"k{i}".encode(), value=f"v{i}".encode(), headers=headers)
    producer.flush(10)


def test_redrive_sends_dead_letters_back_with_their_headers_once(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    producer: Producer,
    consume_until: Any,
    unique: str,
) -> None:
    dlq, original = topic_factory("dlq", partitions=1), topic_factory("orig", partitions=1)
    _dead_letters(producer, dlq, original, ["no_profile"] * 3)
    producer.produce(dlq, value=b"from upstream", headers=[("x-original-topic", b"pipeline:x")])
    producer.flush(10)
    group = f"redrive-{unique}"
    plan = redrive(kafka_settings, dlq, group=group, allowed={original})
    assert plan.tally.by_destination() == {original: 3, NOT_REDRIVABLE: 1}
    done = redrive(kafka_settings, dlq, execute=True, group=group, allowed={original})
    assert done.tally.by_destination()[original] == 3
    back = consume_until([original], 3, deadline=30, settle=1)
    assert sorted(m.value() for m in back.messages) == [b"v0", b"v1", b"v2"]
    assert {header(m.headers(), "x-redrive-count") for m in back.messages} == {"1"}
    assert {header(m.headers(), "message-id") for m in back.messages} == {"m0", "m1", "m2"}
    # a second run finds nothing new: the re-drive group committed past them
    again = redrive(kafka_settings, dlq, execute=True, group=group, allowed={original})
    assert again.tally.total == 0


def test_redrive_by_reason_resumes_after_a_crash_without_repeating_a_record(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    producer: Producer,
    consume_until: Any,
    unique: str,
) -> None:
    """A run killed half-way (no abort, no close) leaves an open transaction; the next run
    fences it, so its records never become visible, and resumes after the last commit."""
    dlq, original = topic_factory("dlq", partitions=2), topic_factory("orig", partitions=1)
    reasons = ["no_profile", "profile_gone"] * 10
    _dead_letters(producer, dlq, original, reasons)

    class Crash(BaseException):
        """Stands for kill -9: escapes every handler."""

    handled = 0

    def crash_half_way(count: int) -> None:
        nonlocal handled
        handled += count
        if handled == 13:
            raise Crash

    group = f"redrive-crash-{unique}"
    from services.ops.rules.redrive import RedriveFilter

    wanted = RedriveFilter(reasons=frozenset({"no_profile"}), spelling=("reason=no_profile",))
    with pytest.raises(Crash):
        redrive(
            kafka_settings, dlq, wanted=wanted, execute=True, group=group,
            allowed={original}, batch_size=4, progress=crash_half_way,
        )  # fmt: skip
    resumed = redrive(
        kafka_settings, dlq, wanted=wanted, execute=True, group=group, allowed={original},
        batch_size=4,
    )  # fmt: skip
    assert 0 < resumed.tally.total < 10
    back = consume_until([original], 10, deadline=30, settle=2)
    values = sorted(m.value() for m in back.messages)
    assert values == sorted(f"v{i}".encode() for i in range(0, 20, 2)), values
    with pytest.raises(OperatorError):
        redrive(kafka_settings, f"missing-{unique}", group=group, allowed={original})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--from", "triggers.raw"], "re-drive reads"),
        (["--from", "triggers.dlq", "--since", "2999-01-01T00:00:00Z"], "is in the future"),
        (["--from", "triggers.dlq", "--since", "1h", "--until", "2h"], "is not before --until"),
        (["--from", "triggers.dlq", "--batch-size", "0"], "at least 1"),
    ],
)
def test_a_bad_redrive_argument_is_one_line_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    assert cli(["replay", "redrive", *arguments, "--execute"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_outcomes_refuses_a_start_in_the_future(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["outcomes", "--since", "2999-01-01T00:00:00Z"]) == 2
    assert "is in the future" in capsys.readouterr().err

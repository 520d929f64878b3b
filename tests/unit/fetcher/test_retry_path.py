"""The retry path of a worker, against a recording producer: an envelope that cannot be written
waits (the stream goes on), is retried each period, is dead-lettered after the validity, and the
pointer names it while it waits, so a restart re-reads it without rewriting its successors."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from services.common.topics import topics
from services.fetcher.applier import Applier
from services.fetcher.envelopes import EnvelopeRules
from services.fetcher.ingest import IngestWorker
from services.fetcher.rules.cursor import Cursor
from services.fetcher.rules.flush import FlushLimits
from services.fetcher.rules.retry import RetryPolicy
from services.fetcher.status import FetcherStatus
from services.fetcher.transaction import IngestTransaction

SAMPLE = json.loads((Path(__file__).parents[2] / "fixtures" / "campaign_composed.json").read_text())
MESSAGE = "com.adobe.mcloud.pipeline.pipelineMessage"


class RecordingProducer:
    """What a transactional producer is asked to do, kept as (topic, key, value) rows."""

    def __init__(self, calls: list[str] | None = None) -> None:
        self.open: list[tuple[str, Any, bytes, Any]] = []
        self.committed: list[tuple[str, Any, bytes, Any]] = []
        self.calls = calls if calls is not None else []

    def init_transactions(self, _timeout: float = 0) -> None:
        self.calls.append("init_transactions")

    def begin_transaction(self) -> None:
        self.open = []

    def produce(self, topic: str, value: bytes, key: Any = None, headers: Any = None) -> None:
        self.open.append((topic, key, value, dict(headers or [])))

    def poll(self, _timeout: float = 0) -> int:
        return 0

    def commit_transaction(self, _timeout: float = 0) -> None:
        self.committed += self.open
        self.open = []


def envelope(offset: int) -> bytes:
    document = json.loads(json.dumps(SAMPLE))
    document["partition"], document["offset"] = 0, offset
    document[MESSAGE]["header"]["messageId"] = f"m-{offset}"
    return json.dumps(document).encode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("services.fetcher.applier.time.monotonic", clock)
    return clock


def worker(
    cursors: dict[int, Cursor], calls: list[str] | None = None
) -> tuple[IngestWorker, FetcherStatus]:
    """A worker whose producer was made and whose pointer (`cursors`) was read, in that order."""
    calls = calls if calls is not None else []

    def pointers() -> dict[int, Cursor]:
        calls.append("pointers")
        return cursors

    status = FetcherStatus("c", "host", 1000, 5000, 1, {})
    applier = Applier(
        name="triggers-w0",
        topic="triggers",
        partitions=[0],
        upstream_partitions=1,
        rules=EnvelopeRules(),
        policy=RetryPolicy(period=30, validity=300),
        max_retrying=1000,
        status=status,
    )
    made = IngestWorker(
        applier=applier,
        group="c",
        reset="earliest",
        pointers=pointers,
        upstream=None,  # type: ignore[arg-type]
        tokens=None,  # type: ignore[arg-type]
        producer_factory=lambda _id: RecordingProducer(calls),  # type: ignore[arg-type,return-value]
        transactional_id="t",
        limits=FlushLimits(),
        status=status,
        stop=threading.Event(),
    )
    made._new_producer()
    return made, status


def failing_for(batch: IngestTransaction, message_id: str, times: int) -> None:
    """The Avro encoder refuses one record `times` times (an input nobody foresaw)."""
    encode = batch._envelopes.encode
    left = [times]

    def flaky(record: dict[str, Any]) -> bytes:
        if record["pipelineMessage"]["header"]["messageId"] == message_id and left[0] > 0:
            left[0] -= 1
            raise ValueError("cannot encode")
        return encode(record)

    batch._envelopes = SimpleNamespace(encode=flaky)  # type: ignore[assignment]


def raw_offsets(producer: RecordingProducer) -> list[int]:
    """Upstream offsets of the records committed to triggers.raw, in order."""
    return [
        int(h["upstream-offset"])
        for t, _, _, h in producer.committed
        if t == topics().triggers_raw.name
    ]


def test_a_failing_envelope_waits_is_retried_and_the_stream_goes_on(clock: Clock) -> None:
    producer = RecordingProducer()
    ingest, status = worker({0: Cursor(0)})
    batch = ingest._transaction(producer)  # type: ignore[arg-type]
    failing_for(batch, "m-1", times=1)
    ingest.applier.handle([envelope(0), envelope(1), envelope(2)], batch)
    committed = batch.commit()
    assert committed[0] == Cursor(3, frozenset({1}))  # the pointer names the one waiting
    assert raw_offsets(producer) == [0, 2]  # the stream went on past the failing one
    assert status.snapshot()["agents"][0]["stats"]["current-retries"] == 1

    ingest._committed.update(committed)
    batch = ingest._transaction(producer)  # type: ignore[arg-type]
    clock.now += 29
    ingest.applier.retry_due(batch, clock.now)
    assert ingest.applier.pending  # not before retryPeriodSec
    clock.now += 1
    ingest.applier.retry_due(batch, clock.now)
    assert batch.commit()[0] == Cursor(3)  # written on retry: nothing waits any more
    assert raw_offsets(producer) == [0, 2, 1]
    assert status.snapshot()["agents"][0]["stats"]["current-retries"] == 0


def test_an_envelope_still_failing_after_the_validity_is_dead_lettered(clock: Clock) -> None:
    producer = RecordingProducer()
    ingest, status = worker({0: Cursor(0)})
    batch = ingest._transaction(producer)  # type: ignore[arg-type]
    failing_for(batch, "m-0", times=1000)
    ingest.applier.handle([envelope(0)], batch)
    for _ in range(10):  # every 30 s for 300 s
        clock.now += 30
        ingest.applier.retry_due(batch, clock.now)
    assert batch.commit()[0] == Cursor(1)
    dead = [row for row in producer.committed if row[0] == topics().triggers_dlq.name]
    assert len(dead) == 1 and dead[0][2] == envelope(0)
    assert dead[0][3]["x-error-reason"] == b"retries_exhausted"
    stats = status.snapshot()["agents"][0]["stats"]
    assert stats["trigger-discarded"] == 1 and stats["current-retries"] == 0


def test_a_restart_re_reads_the_waiting_envelope_and_skips_what_was_written(
    clock: Clock,
) -> None:
    producer = RecordingProducer()
    ingest, _ = worker({0: Cursor(3, frozenset({1}))})  # as committed before a crash
    assert ingest._request().assign == {0: 1}  # upstream resumes at the one waiting
    batch = ingest._transaction(producer)  # type: ignore[arg-type]
    ingest.applier.handle([envelope(1), envelope(2), envelope(3)], batch)
    assert batch.commit()[0] == Cursor(4)
    assert raw_offsets(producer) == [1, 3]  # 2 was written before the crash: not again


def test_the_pointer_is_read_only_once_the_producer_has_fenced_the_last_incarnation() -> None:
    """A commit of the killed incarnation may still be completing: init_transactions settles it,
    so a pointer read before it would resume too early and write those envelopes again."""
    calls: list[str] = []
    ingest, status = worker({0: Cursor(7), 5: Cursor(9)}, calls)
    assert calls == ["init_transactions", "pointers"]
    assert ingest._request().assign == {0: 7}  # only this worker's partitions
    assert status.pointers_read()

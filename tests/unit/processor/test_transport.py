"""The processor's fetch wrapper: what it hands faust while a rebalance is under way."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import aiokafka
import faust.streams
import pytest
from faust.transport.drivers import aiokafka as aiokafka_driver
from intervaltree import IntervalTree

from services.processor import transport
from services.processor.transport import ReadCommittedConsumerThread

RAW = "raw-0"
CHANGELOG = "changelog-0"


@dataclass
class FakeConsumer:
    """The few aiokafka consumer internals the wrapper reads, and `seek`."""

    positions: dict[str, int]
    seeks: list[tuple[str, int]] = field(default_factory=list)

    @property
    def _subscription(self) -> Any:
        states = {
            tp: SimpleNamespace(has_valid_position=True, position=p)
            for tp, p in self.positions.items()
        }
        assignment = SimpleNamespace(tps=set(states), state_value=states.__getitem__)
        return SimpleNamespace(subscription=SimpleNamespace(assignment=assignment))

    def assignment(self) -> set[str]:
        return set(self.positions)

    def seek(self, tp: str, offset: int) -> None:
        self.seeks.append((tp, offset))
        self.positions[tp] = offset


def fetch(
    consumer: FakeConsumer, returned: dict[str, list[int]], *, rebalancing: bool, flowing: bool
) -> tuple[Any, Any]:
    """One fetch through the wrapper; the fake fetch hands out `returned` and moves positions."""

    async def fetch_records(consumer: FakeConsumer, *args: Any, **kwargs: Any) -> Any:
        for tp, offsets in returned.items():
            consumer.positions[tp] = offsets[-1] + 1
        return {
            tp: [SimpleNamespace(offset=o) for o in offsets] for tp, offsets in returned.items()
        }

    thread = SimpleNamespace(
        _fetch_records=fetch_records,
        app=SimpleNamespace(
            rebalancing=rebalancing, flow_control=SimpleNamespace(is_active=lambda: flowing)
        ),
        consumer=SimpleNamespace(_is_changelog_tp=lambda tp: tp == CHANGELOG),
    )
    # The wrapper only reads the attributes stubbed above, so a namespace stands in for `self`.
    fetching = ReadCommittedConsumerThread._fetch_with_positions(
        cast(ReadCommittedConsumerThread, thread), consumer, set(returned)
    )
    result: tuple[Any, Any] = asyncio.run(fetching)
    return result


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "HOLD_BACK_PAUSE_S", 0.0)


def test_records_pass_and_spans_are_reported_while_the_streams_flow() -> None:
    consumer = FakeConsumer({RAW: 10})
    records, spans = fetch(consumer, {RAW: [11, 12]}, rebalancing=False, flowing=True)
    assert [r.offset for r in records[RAW]] == [11, 12]
    assert spans == {RAW: (10, 13)}
    assert consumer.seeks == []


@pytest.mark.parametrize(("rebalancing", "flowing"), [(True, True), (True, False), (False, False)])
def test_agent_records_wait_for_the_rebalance_to_end_and_are_fetched_again(
    rebalancing: bool, flowing: bool
) -> None:
    consumer = FakeConsumer({RAW: 10, CHANGELOG: 3})
    returned = {RAW: [11, 12], CHANGELOG: [3, 4]}
    records, spans = fetch(consumer, returned, rebalancing=rebalancing, flowing=flowing)
    assert RAW not in records and RAW not in spans  # no agent sees them, no gap is inferred
    assert consumer.seeks == [(RAW, 10)] and consumer.positions[RAW] == 10
    # the changelog restores state during the rebalance: it is never held back
    assert [r.offset for r in records[CHANGELOG]] == [3, 4]
    assert spans == {CHANGELOG: (3, 5)}


def test_the_worker_consumer_reads_committed_data_with_short_long_polls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both are set on aiokafka's consumer before it starts. Without them it would read the
    fetcher's aborted batches and park drained partitions for faust's 1.5 s long polls."""

    async def build() -> tuple[str, int]:
        # What faust's own thread builds: its settings, a consumer not started yet.
        built = aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", fetch_max_wait_ms=1500)
        monkeypatch.setattr(
            aiokafka_driver.AIOKafkaConsumerThread,
            "_create_worker_consumer",
            lambda self, transport: built,
        )
        thread = ReadCommittedConsumerThread.__new__(ReadCommittedConsumerThread)
        consumer = thread._create_worker_consumer(None)
        try:
            return consumer._isolation_level, consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    assert asyncio.run(build()) == (transport.READ_COMMITTED, transport.FETCH_MAX_WAIT_MS)
    assert transport.FETCH_MAX_WAIT_MS < 1500


@dataclass(eq=False)
class Record:
    """A consumed message as the ack reads it (hashable, like faust's)."""

    generation_id: int
    acked: bool = False
    tp: Any = field(default_factory=lambda: SimpleNamespace(topic="triggers.raw"))
    offset: int = 151


@pytest.mark.parametrize(("generation", "flowing"), [(1, True), (2, False)])
def test_an_ack_from_before_the_rebalance_or_during_it_is_not_progress(
    generation: int, flowing: bool
) -> None:
    """faust acks, unhandled, a record it skips for coming from an earlier generation; a
    commit counting it would pass a trigger no agent handled. It only stops being awaited."""
    message = Record(generation_id=generation)
    consumer = SimpleNamespace(
        app=SimpleNamespace(
            consumer_generation_id=2, flow_control=SimpleNamespace(is_active=lambda: flowing)
        ),
        _unacked_messages={message},
        _waiting_for_ack=None,
        _acked={},
    )
    counted = transport.TransactionalInputConsumer.ack(cast(Any, consumer), message)
    assert counted is False and message.acked
    assert consumer._unacked_messages == set() and consumer._acked == {}


def test_a_record_after_a_transaction_marker_is_not_passed_before_it_is_handled() -> None:
    """The chaos suite's stage-1 losses (seed 64): records 340-347 handled, a commit marker at
    348, record 349 still in an agent's hands (waiting out a database outage). faust's drain
    loop reports the jump 347 -> 349 as the gap 348-349; counted, the commit would pass 349."""
    tp = "raw-1"
    consumer = SimpleNamespace(
        _committed_offset={tp: 340},
        _start_position={},
        _gap=defaultdict(IntervalTree),
        _acked={tp: list(range(340, 348))},
        _acked_index={tp: set(range(340, 348))},
    )
    this = cast(Any, consumer)
    asyncio.run(transport.TransactionalInputConsumer._add_gap(this, tp, 348, 349))
    transport.TransactionalInputConsumer._add_non_records(this, tp, 348, 348)  # from positions
    assert transport.TransactionalInputConsumer._new_offset(this, tp) == 349
    assert consumer._acked[tp] == [] and consumer._acked_index[tp] == set()


def test_streams_acknowledge_through_the_consumer() -> None:
    """faust's Cython iterator would bypass `TransactionalInputConsumer.ack`."""
    assert faust.streams._CStreamIterator is None

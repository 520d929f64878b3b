"""The processor's faust transport: aiokafka reading `read_committed`, committing past markers.

Seven faust-streaming behaviours are corrected here, and nowhere else:

* Isolation. faust's aiokafka worker consumer reads `read_uncommitted` unless the app runs in
  exactly-once mode. `triggers.raw` is written in Kafka transactions by the fetcher, so a
  `read_uncommitted` reader would mail from a batch the fetcher aborted. We keep at-least-once
  processing and force `read_committed` on the worker consumer.
* Fetch long polls. aiokafka keeps one fetch in flight per broker. That fetch names only the
  partitions that had nothing buffered when it was sent. A partition drained while it is in
  flight is not fetched again until it returns. The broker parks the fetch until one of the
  partitions it names has data, for at most `fetch_max_wait_ms`, which faust sets to 1.5 s. A
  record could therefore wait a whole long poll on each of the processor's two hops: after a
  3 s stall at 1M/hour a worker could stay about 3 s behind for good. We cap the wait at
  FETCH_MAX_WAIT_MS: it then catches up within seconds, and an idle worker sends ten empty
  fetches a second.
* Offset gaps. Transactions leave offsets that hold no record for a `read_committed` reader
  (commit/abort markers, aborted records). faust commits "last acked record + 1" and bridges only
  the gaps it sees between two delivered records, so the trailing marker of every burst is never
  committed (lag stuck at 1 per partition) and, after an aborted batch that follows offset 0, no
  commit happens at all (faust-streaming #606). We record every non-record range from the fetch
  positions aiokafka reports, and let a commit move over such ranges. faust's gap bookkeeping
  also drops the committed offset itself from a gap, so markers fetched after everything before
  them was committed (a quiet partition, then an aborted batch) would hold the lag forever.
* Gaps that are records. faust's drain loop, seeing a delivered record that does not follow the
  previous one (a transaction marker between them, which our fetcher writes every 100 ms),
  registers the range up to and including the new record as a gap; a commit may then pass that
  record while an agent still holds it (say, waiting out a database outage), and a worker that
  dies then loses the trigger. Our gaps come from fetch positions only (`on_fetched`); faust's
  are ignored (`_add_gap`).
* Commit arithmetic. faust commits past the first run of acked offsets wherever it starts, so a
  record at the committed offset that is not handled yet is passed when the next one is acked
  (its head-gap test is off by one). And it acks, unhandled, every record it skips because the
  record was handed out before a rebalance. Either lets a commit pass a trigger no agent
  handled, which is lost when the partition next changes hands. Commits here run from the
  committed offset over handled records and known non-records only (`next_commit`), and an ack
  from an earlier generation, or during a rebalance, is not progress (`ack`).
* Inlined acks. faust's Cython stream iterator acknowledges without calling `Consumer.ack`, so
  the correction above would not see it: streams iterate in pure Python.
* Records fetched during a rebalance. After a rebalance faust resumes the stream partitions and
  seeks them to the committed offsets while its fetcher is already running (it reads the
  changelogs), and only then lets the streams flow. A record fetched in that window is dropped:
  skipped (and its skip acked) by a stream whose flow control is suspended, or cleared from the
  stream's queue when flow control resumes. The fetch position is past it, and faust's commit
  bookkeeping moves over it: a seek sets faust's read offset to the next offset to read, so the
  following record looks as if it came after a gap, and faust lets the first acked offset be one
  past the committed one. The trigger is lost with no outcome. Every partition that changes
  hands goes through this window, after a worker joins as after one dies. We hand the agents no
  record until the rebalance has ended and the streams flow; we seek back instead, so the record
  is fetched again then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import faust
import faust.streams
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from services.processor.rules.offsets import (
    held_back,
    next_commit,
    non_record_ranges,
    uncommitted_part,
)

log = logging.getLogger(__name__)

# faust's Cython stream iterator inlines the consumer's acknowledgement: it never calls
# `Consumer.ack`, so `TransactionalInputConsumer.ack` would not see it count, unhandled, the
# records it skips after a rebalance (seed 65 lost 4 triggers that no agent ever took, committed
# past while a processor was restarting). Streams iterate in pure Python instead, where every
# acknowledgement goes through the consumer.
faust.streams._CStreamIterator = None

READ_COMMITTED = "read_committed"
FETCH_MAX_WAIT_MS = 100

# (position before a fetch, position after it) per partition
FetchSpan = Mapping[Any, tuple[int, int]]

# How long the fetcher waits after holding records back: the streams resume within a moment of
# the seek, and fetching the same records again at once would only load the broker.
HOLD_BACK_PAUSE_S = 0.05


def _positions(consumer: Any) -> dict[Any, int]:
    """Fetch positions of the assigned partitions that have one (aiokafka internals, read-only)."""
    subscription = consumer._subscription.subscription
    assignment = subscription.assignment if subscription is not None else None
    if assignment is None:
        return {}
    positions = {}
    for tp in assignment.tps:
        state = assignment.state_value(tp)
        if state.has_valid_position:
            positions[tp] = state.position
    return positions


class ReadCommittedConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):  # type: ignore[misc]  # faust is untyped
    """The aiokafka consumer thread: committed data, short long polls, fetch positions."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka keeps the level and the wait it was built with until start(), which builds
        # the fetcher from them. Fail loudly if a new aiokafka moved them rather than silently
        # reading aborts or parking records for faust's 1.5 s.
        if getattr(consumer, "_isolation_level", None) not in (READ_COMMITTED, "read_uncommitted"):
            raise RuntimeError(
                "cannot set isolation_level=read_committed on this aiokafka version; "
                "pin aiokafka==0.14.0 or update services/processor/transport.py"
            )
        consumer._isolation_level = READ_COMMITTED
        if not isinstance(getattr(consumer, "_fetch_max_wait_ms", None), int):
            raise RuntimeError(
                "cannot set fetch_max_wait_ms on this aiokafka version; "
                "pin aiokafka==0.14.0 or update services/processor/transport.py"
            )
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    async def getmany(self, active_partitions: Any, timeout: float) -> Any:  # noqa: ASYNC109 - faust's signature
        consumer = self._ensure_consumer()
        records, spans = await self.call_thread(
            self._fetch_with_positions,
            consumer,
            active_partitions,
            timeout=timeout,
            max_records=consumer._max_poll_records,
        )
        await self.consumer.on_fetched(spans, records)
        return records

    async def _fetch_with_positions(
        self,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,  # noqa: ASYNC109 - passed through to aiokafka
        max_records: int | None = None,
    ) -> tuple[Any, FetchSpan]:
        # Runs on the consumer thread's loop, where positions only move as records are handed
        # out (or markers skipped), so before/after bracket exactly what this fetch consumed.
        before = _positions(consumer)
        records = await self._fetch_records(
            consumer, active_partitions, timeout=timeout, max_records=max_records
        )
        # Checked after the fetch, which may have waited for data while a rebalance started.
        # `rebalancing` is set on this thread as a rebalance begins and cleared on the event
        # loop only after the streams' flow control has resumed (and cleared their queues).
        app = self.app
        held = held_back(
            {tp: [record.offset for record in batch] for tp, batch in records.items()},
            before,
            not app.rebalancing and app.flow_control.is_active(),
            lambda tp: not self.consumer._is_changelog_tp(tp),
        )
        if held:
            assigned = consumer.assignment()
            for tp, offset in held.items():
                if tp in assigned:  # always, short of a bug: no await since the fetch
                    consumer.seek(tp, offset)
            records = {tp: batch for tp, batch in records.items() if tp not in held}
            log.debug("streams stopped: %d partitions will be fetched again", len(held))
        after = _positions(consumer)
        spans = {
            tp: (before[tp], end)
            for tp, end in after.items()
            if tp not in held and before.get(tp, end) < end
        }
        if held:
            await asyncio.sleep(HOLD_BACK_PAUSE_S)
        return records, spans


class TransactionalInputConsumer(aiokafka_driver.Consumer):  # type: ignore[misc]  # faust is untyped
    """faust's consumer, told where the non-record offsets are so its commits can pass them."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._fetch_position: dict[Any, int] = {}
        self._start_position: dict[Any, int] = {}

    def _new_consumer_thread(self) -> ReadCommittedConsumerThread:
        return ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_fetched(self, spans: FetchSpan, records: Mapping[Any, Any]) -> None:
        """Record the offsets a fetch skipped as gaps that commits may cross."""
        for tp, (start, end) in spans.items():
            previous = self._fetch_position.get(tp)
            self._fetch_position[tp] = end
            if previous is not None and previous != start:
                continue  # the position was moved (a seek) between fetches: infer nothing
            if not self.app.topics.acks_enabled_for(tp.topic):
                continue
            self._start_position.setdefault(tp, start)
            delivered = [record.offset for record in records.get(tp, ())]
            for first, last in non_record_ranges(start, end, delivered):
                self._add_non_records(tp, first, last)
            self._acked.setdefault(tp, [])  # the commit loop visits partitions in _acked only

    def _add_non_records(self, tp: Any, first: int, last: int) -> None:
        """Offsets `first`..`last` (inclusive) hold no record: a commit may pass them."""
        # faust's own version clamps one offset too far (see `uncommitted_part`).
        part = uncommitted_part(first, last, self._committed_offset[tp])
        if part is not None:
            gaps = self._gap[tp]
            gaps.addi(part[0], part[1] + 1)  # intervaltree intervals exclude their end
            gaps.merge_overlaps()

    async def _add_gap(self, _tp: Any, _offset_from: int, _offset_to: int) -> None:
        """Ignored: faust's drain loop calls this when two records it delivers are not adjacent,
        with the *second record's own offset* as the end of the range, so that record counted
        as a non-record and a commit could pass it before any agent handled it (lost if the
        worker then died: the chaos suite's stage-1 losses). `on_fetched` registers every
        non-record range exactly, from fetch positions."""

    def ack(self, message: Any) -> bool:
        """faust's ack, except for a record handed out before the latest rebalance or while it
        runs: faust skips such a record unhandled and acks it "so the lag does not grow", and an
        agent may finish one it took before. Counting either would let a commit pass a record
        that no agent of this generation handled; the rebalance seeks every partition back to
        its committed offset, so the record is read and handled again instead."""
        app = self.app
        if message.generation_id == app.consumer_generation_id and app.flow_control.is_active():
            acked: bool = super().ack(message)
            return acked
        with ack_lock:
            if not message.acked:
                message.acked = True
                self._unacked_messages.discard(message)  # nothing waits for it any more
                notify(self._waiting_for_ack)
        if log.isEnabledFor(logging.DEBUG):  # the trail of a record kept from a commit
            log.debug(
                "not counting the ack of %s:%s (generation %s, now %s): it is read again",
                message.tp.topic,
                message.offset,
                message.generation_id,
                app.consumer_generation_id,
            )
        return False

    def _new_offset(self, tp: Any) -> int | None:
        base = self._committed_offset[tp]
        if base is None:
            base = self._start_position.get(tp)
        if base is None:  # nothing fetched since the assignment: nothing acked either
            fallback: int | None = super()._new_offset(tp)
            return fallback
        acked = self._acked[tp]
        gaps = [(interval.begin, interval.end - 1) for interval in self._gap[tp]]
        moved = next_commit(base, acked, gaps)
        if moved == base:
            return None
        acked[:] = [offset for offset in acked if offset >= moved]
        self._acked_index[tp].difference_update([o for o in self._acked_index[tp] if o < moved])
        self._gap[tp].chop(0, moved)
        return moved

    async def _commit(self, offsets: Mapping[Any, int]) -> bool:
        if log.isEnabledFor(logging.DEBUG):  # which offsets moved: the trail a lost record leaves
            moved = {f"{tp.topic}:{tp.partition}": offset for tp, offset in offsets.items()}
            log.debug("committing %s", moved)
        committed: bool = await super()._commit(offsets)
        return committed

    def _forget(self, tps: Any) -> None:
        for tp in tps:
            self._fetch_position.pop(tp, None)
            self._start_position.pop(tp, None)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._forget(revoked)
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any, generation_id: int = 0) -> None:
        self._forget(assigned)  # faust seeks to the committed offsets: start over from there
        await super().on_partitions_assigned(assigned, generation_id)
        self._forget(assigned)


class Transport(aiokafka_driver.Transport):  # type: ignore[misc]  # faust is untyped
    Consumer = TransactionalInputConsumer


class ProcessorApp(faust.App):  # type: ignore[misc]  # faust is untyped
    """A faust App on the transport above."""

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)

"""One ingest transaction: the envelopes a worker read since its last commit, and their pointer.

Records go to Kafka as they are read, inside an open transaction; `commit` adds the pointer
records for every partition touched and commits all of it at once, so a reader of
`triggers.raw` (read_committed) and the next start of the worker see the same history.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from confluent_kafka import KafkaError, KafkaException, Producer

from services.common.dlq import dead_letter_headers
from services.common.errors import InvalidInput
from services.common.kafka import Headers, make_producer
from services.common.models import Outcome, OutcomeStatus
from services.common.serde import envelope_serde, outcome_serde
from services.common.settings import KafkaSettings
from services.common.topics import TOPICS
from services.fetcher.envelopes import Data, Sync, parse_envelope
from services.fetcher.pointer import pointer_key, pointer_value
from services.fetcher.status import FetcherStatus

log = logging.getLogger(__name__)

# Delivery reports are served every this many sends rather than after each one: a poll per
# record cost about a third of the produce path, and commit_transaction flushes them all anyway.
POLL_EVERY = 512


def make_ingest_producer(
    kafka: KafkaSettings, transactional_id: str, flush_period: timedelta
) -> Producer:
    """The transactional producer of one ingest worker.

    Records are visible to read_committed readers only at the commit, and the commit sends
    whatever is still queued at once. So records may wait in the client for as long as a
    transaction can stay open (`flush_period`): they then go in a few large batches per partition
    instead of one small batch every 5 ms, which halves the broker's CPU per envelope
    (bench/fetcher_ingest) and adds no latency.
    """
    return make_producer(
        kafka,
        client_id=transactional_id,
        transactional_id=transactional_id,
        overrides={
            "transaction.timeout.ms": 60000,
            "linger.ms": int(flush_period.total_seconds() * 1000),
        },
    )


class TransactionAborted(Exception):
    """The transaction was aborted: restart the stream from the committed pointer."""


class ProducerBroken(Exception):
    """The producer could not even abort: replace it (the new one fences the old)."""


class IngestTransaction:
    """Everything one worker wrote since its last commit."""

    def __init__(
        self,
        producer: Producer,
        *,
        name: str,
        topic: str,
        group: str,
        status: FetcherStatus,
        stopping: Callable[[], bool],
    ) -> None:
        self.name = name
        self.count = 0
        self.first_at = 0.0
        self.open = False
        self._sent = 0
        self.pointer: dict[int, int] = {}
        self._producer = producer
        self._topic = topic
        self._group = group
        self._status = status
        self._stopping = stopping
        self._envelopes = envelope_serde()
        self._outcomes = outcome_serde()
        # Header values that repeat on every record, encoded once rather than per envelope.
        self._topic_header = ("upstream-topic", topic.encode())
        self._partition_headers: dict[int, tuple[str, bytes]] = {}

    def add(self, line: bytes, expected: dict[int, int]) -> bool:
        """Put one line into the open transaction; False for a SYNC ping (nothing to write)."""
        try:
            envelope = parse_envelope(line)
        except InvalidInput as exc:
            self._begin()
            self._dead_letter(line, exc)
            self.count += 1
            return True
        if isinstance(envelope, Sync):
            return False
        self._check_gap(envelope, expected)
        self._begin()
        self._produce(envelope)
        self.pointer[envelope.partition] = envelope.offset + 1
        expected[envelope.partition] = envelope.offset + 1
        self.count += 1
        return True

    def _begin(self) -> None:
        """Begin the transaction with its first record (SYNC pings produce nothing)."""
        if not self.open:
            self._producer.begin_transaction()
            self.open = True
            self.first_at = time.monotonic()

    def _check_gap(self, envelope: Data, expected: dict[int, int]) -> None:
        """A first offset beyond the stored pointer means upstream no longer held the data."""
        want = expected.get(envelope.partition, -1)
        if want >= 0 and envelope.offset > want:
            skipped = envelope.offset - want
            self._status.reset_detected(skipped)
            log.error(
                "%s: DATA LOSS upstream: partition %d resumed at offset %d, pointer was %d; "
                "%d messages expired before they were read",
                self.name,
                envelope.partition,
                envelope.offset,
                want,
                skipped,
            )

    def _produce(self, envelope: Data) -> None:
        partition = self._partition_headers.get(envelope.partition)
        if partition is None:
            partition = ("upstream-partition", str(envelope.partition).encode())
            self._partition_headers[envelope.partition] = partition
        headers: Headers = [
            self._topic_header,
            partition,
            ("upstream-offset", str(envelope.offset).encode()),
            ("message-id", envelope.message_id.encode()),
        ]
        self._send(
            TOPICS.triggers_raw.name,
            envelope.key.encode(),
            self._envelopes.encode(envelope.record),
            headers,
        )

    def _dead_letter(self, line: bytes, error: InvalidInput) -> None:
        self._status.failed_envelope()
        log.warning("%s: malformed envelope to %s: %s", self.name, TOPICS.triggers_dlq.name, error)
        headers = dead_letter_headers(
            service="fetcher",
            reason=error.reason,
            error=error,
            source_topic=f"pipeline:{self._topic}",
            source_partition=-1,
            source_offset=-1,
        )
        self._send(TOPICS.triggers_dlq.name, None, line, headers)
        message_id = "sha256:" + hashlib.sha256(line).hexdigest()[:32]
        outcome = Outcome(OutcomeStatus.INVALID, message_id, "fetcher", reason=error.reason)
        self._send(
            TOPICS.outcomes.name,
            message_id.encode(),
            self._outcomes.encode(outcome.to_record()),
            None,
        )

    def _send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Headers | None,
    ) -> None:
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers)
                self._sent += 1
                if self._sent % POLL_EVERY == 0:
                    self._producer.poll(0)
                return
            except BufferError:
                self._producer.poll(0.1)  # local queue full: let deliveries drain

    def commit(self) -> dict[int, int]:
        """Add the pointer records and commit; returns the pointer now committed."""
        for partition, offset in self.pointer.items():
            self._send(
                TOPICS.fetcher_pointers.name,
                pointer_key(self._group, self._topic, partition),
                pointer_value(offset),
                None,
            )
        started = time.monotonic()
        while True:
            try:
                self._producer.commit_transaction(30)
                break
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.retriable() and not self._stopping():
                    # Kafka unavailable: hold here (reading pauses) until it returns.
                    log.warning("%s: commit waiting for Kafka: %s", self.name, error)
                    continue
                if error.txn_requires_abort():
                    self.abort()
                    raise TransactionAborted() from exc
                raise
        self._status.flushed(self._topic, self.pointer, self.count, time.monotonic() - started)
        self.open = False
        return dict(self.pointer)

    def abort(self) -> None:
        log.warning(
            "%s: aborting a transaction of %d envelopes; resuming from the pointer",
            self.name,
            self.count,
        )
        self._status.aborted(self.count)
        self.open = False
        try:
            self._producer.poll(0)  # serve pending delivery reports, which abort waits for
            self._producer.abort_transaction(30)
        except KafkaException as exc:
            raise ProducerBroken(exc.args[0] if exc.args else exc) from exc

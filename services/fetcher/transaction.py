"""One ingest transaction: the envelopes a worker handled since its last commit, and their pointer.

Records go to Kafka as they are read, inside an open transaction; `commit` adds the pointer
records for every partition touched and commits all of it at once, so a reader of
`triggers.raw` (read_committed) and the next start of the worker see the same history. Dead
letters and `invalid` outcomes ride in the same transaction, so they are never lost or doubled
either.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from confluent_kafka import KafkaError, KafkaException, Producer

from services.common.dlq import bounded_value, dead_letter_headers
from services.common.errors import InvalidInput
from services.common.headers import MESSAGE_ID, UPSTREAM_OFFSET, UPSTREAM_PARTITION, UPSTREAM_TOPIC
from services.common.kafka import Headers, make_producer
from services.common.models import Outcome, OutcomeStatus
from services.common.serde import envelope_serde, outcome_serde
from services.common.settings import KafkaSettings
from services.common.topics import topics
from services.fetcher.envelopes import Data
from services.fetcher.pointer import pointer_key
from services.fetcher.rules.cursor import Cursor
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
    """Everything one worker wrote since its last commit, and the cursors that cover it.

    `cursors` is the worker's working copy: each handled envelope moves its partition's cursor,
    and `commit` writes the cursors of the partitions it touched as pointer records.
    """

    def __init__(
        self,
        producer: Producer,
        *,
        name: str,
        topic: str,
        group: str,
        status: FetcherStatus,
        stopping: Callable[[], bool],
        cursors: dict[int, Cursor],
    ) -> None:
        self.name = name
        self.count = 0  # envelopes handled in this transaction, whatever became of them
        self.first_at = 0.0
        self.open = False
        self.cursors = cursors
        self._touched: set[int] = set()
        self._sent = 0
        self._producer = producer
        self._topic = topic
        self._group = group
        self._status = status
        self._stopping = stopping
        self._envelopes = envelope_serde()
        self._outcomes = outcome_serde()
        # Header values that repeat on every record, encoded once rather than per envelope.
        self._topic_header = (UPSTREAM_TOPIC, topic.encode())
        self._partition_headers: dict[int, tuple[str, bytes]] = {}

    def write(self, envelope: Data) -> None:
        """Produce one record to `triggers.raw`; an encoding or produce error leaves the
        transaction and the cursors as they were."""
        value = self._envelopes.encode(envelope.record)
        partition = self._partition_headers.get(envelope.partition)
        if partition is None:
            partition = (UPSTREAM_PARTITION, str(envelope.partition).encode())
            self._partition_headers[envelope.partition] = partition
        headers: Headers = [
            self._topic_header,
            partition,
            (UPSTREAM_OFFSET, str(envelope.offset).encode()),
            (MESSAGE_ID, envelope.message_id.encode()),
        ]
        self._begin()
        self._send(topics().triggers_raw.name, envelope.key.encode(), value, headers)
        self._move(envelope.partition, envelope.offset, Cursor.advanced)

    def dead_letter(
        self,
        raw: bytes,
        reason: str,
        detail: str,
        position: tuple[int, int] | None,
        *,
        size: int | None = None,
        sha256: str | None = None,
        attempts: int | None = None,
    ) -> None:
        """The original bytes (cut to fit, see `bounded_value`) to the dead-letter topic, and an
        `invalid` outcome, so triggers in = outcomes out holds for what never became a record."""
        value, cut = bounded_value(raw, size, sha256)
        headers = dead_letter_headers(
            service="fetcher",
            reason=reason,
            error=InvalidInput(reason, detail),
            source_topic=f"pipeline:{self._topic}",
            source_partition=-1 if position is None else position[0],
            source_offset=-1 if position is None else position[1],
            attempt=attempts,
        )
        self._begin()
        self._send(topics().triggers_dlq.name, None, value, [*headers, *cut])
        digest = sha256 or _sha256(raw)
        message_id = f"sha256:{digest[:32]}"
        outcome = Outcome(OutcomeStatus.INVALID, message_id, "fetcher", reason=reason)
        self._send(
            topics().outcomes.name, message_id.encode(), self._outcomes.encode(outcome.to_record())
        )
        if position is not None:
            self._move(*position, Cursor.advanced)
        else:
            self.count += 1

    def hold(self, partition: int, offset: int) -> None:
        """The envelope at `offset` waits for a retry: the pointer must come back for it."""
        self._begin()
        self._move(partition, offset, Cursor.retry)

    def skip(self) -> None:
        """An envelope already written before a restart: counted, nothing produced."""
        self.count += 1

    def _move(self, partition: int, offset: int, step: Callable[[Cursor, int], Cursor]) -> None:
        cursor = self.cursors.get(partition) or Cursor(offset)
        self.cursors[partition] = step(cursor, offset)
        self._touched.add(partition)
        self.count += 1

    def _begin(self) -> None:
        """Begin the transaction with its first record (SYNC pings produce nothing)."""
        if not self.open:
            self._producer.begin_transaction()
            self.open = True
            self.first_at = time.monotonic()

    def _send(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None
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

    def commit(self) -> dict[int, Cursor]:
        """Add the pointer records and commit; returns the cursors now committed."""
        if not self.open:
            return {}
        touched = {p: self.cursors[p] for p in self._touched}
        for partition, cursor in touched.items():
            self._send(
                topics().fetcher_pointers.name,
                pointer_key(self._group, self._topic, partition),
                cursor.encode(),
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
        self._status.flushed(
            self.name, self._topic, touched, self.count, time.monotonic() - started
        )
        self.open = False
        return touched

    def abort(self) -> None:
        log.warning(
            "%s: aborting a transaction of %d envelopes; resuming from the pointer",
            self.name,
            self.count,
        )
        self._status.aborted(self.name)
        self.open = False
        try:
            self._producer.poll(0)  # serve pending delivery reports, which abort waits for
            self._producer.abort_transaction(30)
        except KafkaException as exc:
            raise ProducerBroken(exc.args[0] if exc.args else exc) from exc


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

"""Applying each envelope's decision to the open transaction, and the retry queue.

`rules.handling.decide` says what becomes of an envelope; this module does it: writes the
record, dead-letters the line, skips a re-read, checks SYNC markers, and keeps the envelopes
waiting for a retry (Adobe's `retryPeriodSec`/`retryValiditySec`). The worker's loop
(`ingest.py`) owns the stream and the transactions; nothing here reads the network.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from confluent_kafka import KafkaError, KafkaException

from services.common.errors import ConfigurationError
from services.fetcher.envelopes import Data, EnvelopeRules, parse_line
from services.fetcher.framing import Frame, Oversized
from services.fetcher.positions import position_hint
from services.fetcher.rules.cursor import Cursor
from services.fetcher.rules.handling import DeadLetter, Ping, Skip, Write, decide
from services.fetcher.rules.partitions import marker_partitions, uncovered
from services.fetcher.rules.retry import (
    Pending,
    RetryPolicy,
    Verdict,
    after_failure,
    first_failure,
)
from services.fetcher.status import FetcherStatus
from services.fetcher.transaction import IngestTransaction

log = logging.getLogger(__name__)

# Produce errors that concern one record, not the producer: that envelope is retried.
_RECORD_ERRORS = {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError._MSG_TIMED_OUT, KafkaError._INVALID_ARG}


class UncoveredPartitions(ConfigurationError):
    """Upstream has partitions no worker reads: running on would leave them unread."""


class Applier:
    """One worker's envelope handling, across the transactions and streams it opens."""

    def __init__(
        self,
        *,
        name: str,
        topic: str,
        partitions: list[int],
        upstream_partitions: int,
        rules: EnvelopeRules,
        policy: RetryPolicy,
        max_retrying: int,
        status: FetcherStatus,
    ) -> None:
        self.name = name
        self.topic = topic
        self.partitions = partitions
        self._upstream_partitions = upstream_partitions
        self._rules = rules
        self._policy = policy
        self._max_retrying = max_retrying
        self._status = status
        self.pending: dict[tuple[int, int], Pending] = {}

    def restart_from(self, committed: Mapping[int, Cursor]) -> None:
        """A new stream starts from the committed pointer: retries queued by an aborted
        transaction are read again, those committed as waiting keep their first failure."""
        self.pending = {
            key: entry
            for key, entry in self.pending.items()
            if key[0] in committed and key[1] in committed[key[0]].retrying
        }
        self._status.retries(self.name, len(self.pending))

    def handle(self, frames: list[Frame], batch: IngestTransaction) -> None:
        """Apply the decision for every envelope of a slice of lines to the transaction."""
        started = time.perf_counter()
        data = pings = 0
        for frame in frames:
            if isinstance(frame, Oversized):
                data += 1
                self._dead_letter_oversized(frame, batch)
                continue
            for parsed in parse_line(frame, self._rules):
                action = decide(parsed, batch.cursors, self.partitions, self.pending)
                if isinstance(action, Ping):
                    pings += 1
                    self._check_marker(action.marker)
                    continue
                data += 1
                if isinstance(action, Write):
                    self._check_gap(action.data, batch.cursors)
                    self._write(action.data, frame, batch)
                elif isinstance(action, DeadLetter):
                    error = action.error
                    log.warning("%s: malformed envelope dead-lettered: %s", self.name, error)
                    batch.dead_letter(action.raw, error.reason, error.detail, action.position)
                    self._status.failed_envelope(self.name)
                elif isinstance(action, Skip):
                    batch.skip()
        self._status.handled(
            self.name, len(frames), data, pings, batch.count, time.perf_counter() - started
        )

    def _write(self, data: Data, line: bytes, batch: IngestTransaction) -> None:
        """Produce one record; a failure of this record alone queues it for a retry."""
        try:
            batch.write(data)
        except KafkaException as exc:
            if exc.args[0].code() not in _RECORD_ERRORS:
                raise
            self._queue_retry(data, line, exc, batch)
        except (ValueError, TypeError, OverflowError, UnicodeError) as exc:  # encoding
            self._queue_retry(data, line, exc, batch)

    def _queue_retry(
        self, data: Data, line: bytes, error: BaseException, batch: IngestTransaction
    ) -> None:
        position = (data.partition, data.offset)
        if len(self.pending) >= self._max_retrying:
            detail = f"{len(self.pending)} envelopes already wait; {error}"
            batch.dead_letter(line, "retry_queue_full", detail, position)
            self._status.failed_envelope(self.name)
            return
        log.warning("%s: envelope %d:%d failed (%s); retrying", self.name, *position, error)
        self.pending[position] = first_failure(
            line, *position, error, time.monotonic(), self._policy
        )
        batch.hold(*position)
        self._status.retries(self.name, len(self.pending))

    def retry_due(self, batch: IngestTransaction, now: float) -> None:
        """Retry every queued envelope whose period is over; dead-letter the expired ones."""
        for key, entry in list(self.pending.items()):
            if entry.next_at > now:
                continue
            del self.pending[key]
            data = next(
                (
                    parsed
                    for parsed in parse_line(entry.line, self._rules)
                    if isinstance(parsed, Data) and (parsed.partition, parsed.offset) == key
                ),
                None,
            )
            try:
                if data is None:
                    raise ValueError("the envelope no longer parses")
                batch.write(data)
                log.info("%s: envelope %d:%d written on retry %d", self.name, *key, entry.attempts)
            except (KafkaException, ValueError, TypeError, OverflowError, UnicodeError) as exc:
                if isinstance(exc, KafkaException) and exc.args[0].code() not in _RECORD_ERRORS:
                    self.pending[key] = entry
                    raise
                verdict, entry = after_failure(entry, exc, now, self._policy)
                if verdict is Verdict.RETRY:
                    self.pending[key] = entry
                    continue
                log.error("%s: envelope %d:%d still failing, dead-lettered", self.name, *key)
                batch.dead_letter(
                    entry.line, "retries_exhausted", entry.error, key, attempts=entry.attempts
                )
                self._status.discarded_envelope()
        self._status.retries(self.name, len(self.pending))

    def _dead_letter_oversized(self, frame: Oversized, batch: IngestTransaction) -> None:
        position = position_hint(frame.head)
        cursor = batch.cursors.get(position[0]) if position else None
        if position is not None and (
            position[0] not in self.partitions or (cursor and position[1] < cursor.next)
        ):
            position = None
        detail = f"{frame.size} bytes, over the {len(frame.head)}-byte head kept"
        log.warning("%s: oversized line (%d bytes) dead-lettered", self.name, frame.size)
        batch.dead_letter(
            frame.head, "oversized", detail, position, size=frame.size, sha256=frame.sha256
        )
        self._status.failed_envelope(self.name)

    def _check_marker(self, marker: str) -> None:
        """A SYNC marker that names partitions beyond the configured count stops the fetcher."""
        seen = marker_partitions(marker)
        missing = uncovered(seen, self._upstream_partitions) if seen else []
        if missing:
            raise UncoveredPartitions(
                f"upstream topic {self.topic} has partitions {missing} that no worker reads "
                f"(TRIGGERLINE_FETCHER_UPSTREAM_PARTITIONS={self._upstream_partitions}); "
                "set it to upstream's partition count"
            )

    def _check_gap(self, envelope: Data, cursors: dict[int, Cursor]) -> None:
        """A first offset beyond the stored pointer means upstream no longer held the data."""
        cursor = cursors.get(envelope.partition)
        if cursor is None or envelope.offset <= cursor.next or cursor.retrying:
            return
        skipped = envelope.offset - cursor.next
        self._status.reset_detected(skipped)
        log.error(
            "%s: DATA LOSS upstream: partition %d resumed at offset %d, pointer was %d; "
            "%d messages expired before they were read",
            self.name,
            envelope.partition,
            envelope.offset,
            cursor.next,
            skipped,
        )

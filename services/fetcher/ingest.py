"""One ingest worker: stream some upstream partitions into Kafka, exactly once.

Each worker owns a fixed set of upstream partitions, one streamed GET (with `assign` from its
committed pointer) and one transactional producer whose id is stable for that set, so a
restarted worker fences any zombie still holding the same id. Everything handled between two
flushes, plus the pointer that covers it, is one Kafka transaction. This module is the loop:
the stream, the reader thread, the transactions and every failure's retry. What becomes of
each envelope is `applier.Applier`'s job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Producer

from services.common.backoff import Backoff
from services.common.errors import PermanentFailure, TransientFailure, TriggerlineError
from services.fetcher.applier import Applier
from services.fetcher.buffer import Closed, LineBuffer
from services.fetcher.rules.cursor import Cursor
from services.fetcher.rules.flush import FlushLimits, flush_due
from services.fetcher.status import FetcherStatus
from services.fetcher.transaction import IngestTransaction, ProducerBroken, TransactionAborted
from services.fetcher.upstream import StreamRequest, Unauthorized, UpstreamStream

log = logging.getLogger(__name__)

# Kafka's own special offsets, used in `assign` for a partition with no stored pointer.
RESET_OFFSETS = {"latest": -1, "earliest": -2}
_END = object()
QUEUE_SLICE = 100  # lines per item of the reader's buffer


class Tokens(Protocol):
    def token(self) -> str: ...
    def invalidate(self, token: str) -> None: ...


class NoToken(TransientFailure):
    """Auth gave no token (down or refusing): upstream was not even asked."""


class Fenced(Exception):
    """Another process holds this worker's transactional id: this one is the zombie."""


class IngestWorker:
    """Streams `partitions` of `topic` into `triggers.raw` until `stop` is set."""

    def __init__(
        self,
        *,
        applier: Applier,
        group: str,
        reset: str,
        pointers: Callable[[], Mapping[int, Cursor]],
        upstream: UpstreamStream,
        tokens: Tokens,
        producer_factory: Callable[[str], Producer],
        transactional_id: str,
        limits: FlushLimits,
        status: FetcherStatus,
        stop: threading.Event,
        max_buffered_bytes: int = 64 * 1024 * 1024,
        sync_interval_ms: int = 0,
        backoff: Backoff | None = None,
    ) -> None:
        self.applier = applier  # the worker's partitions and envelope rules are the applier's
        self.name = applier.name
        self._group = group
        self._reset = reset
        self._pointers = pointers
        self._committed: dict[int, Cursor] = {}
        self._upstream = upstream
        self._tokens = tokens
        self._producer_factory = producer_factory
        self._transactional_id = transactional_id
        self._limits = limits
        self._status = status
        self._stop = stop
        self._max_buffered_bytes = max_buffered_bytes
        self._sync_interval_ms = sync_interval_ms
        self._backoff = backoff or Backoff()
        self._last_token = ""
        status.register(applier.name, applier.partitions)

    def _request(self) -> StreamRequest:
        reset = RESET_OFFSETS[self._reset]
        assign = {
            p: self._committed[p].resume_at if p in self._committed else reset
            for p in self.applier.partitions
        }
        return StreamRequest(
            self.applier.topic, self._group, assign, self._reset, self._sync_interval_ms
        )

    def _new_producer(self) -> Producer:
        """A producer holding this worker's transactional id, and the committed pointer.

        Initialising the producer fences any earlier holder (a zombie of this worker, or this
        worker's own producer that broke mid-commit) and settles the transaction it left:
        aborted if it was open, committed if its commit had reached the coordinator. Only then
        is the pointer read, so it covers exactly what reached `triggers.raw`. Read before, it
        missed a commit still completing, and the worker wrote those envelopes again.
        """
        producer = self._producer_factory(self._transactional_id)
        try:
            producer.init_transactions(60)
            pointers = self._pointers()
        except BaseException:
            _discard(producer)
            raise
        self._committed = {p: c for p, c in pointers.items() if p in self.applier.partitions}
        self._status.resumed(
            self.name, self.applier.topic, {p: c.resume_at for p, c in self._committed.items()}
        )
        log.info(
            "%s: resuming from %s",
            self.name,
            ",".join(f"{p}:{c.resume_at}" for p, c in sorted(self._committed.items()))
            or f"reset={self._reset}",
        )
        return producer

    def run(self) -> None:
        """Stream until `stop`; every expected failure is retried here with back-off.

        What escapes (a bug, a fenced producer, an uncovered partition) goes to the supervisor,
        which restarts the worker or stops the process.
        """
        producer: Producer | None = None
        attempt = 0
        try:
            while not self._stop.is_set():
                try:
                    if producer is None:
                        producer = self._new_producer()
                    self._stream_once(producer)
                    attempt = 0
                    continue
                except Unauthorized as exc:
                    self._status.failed_connection(self.name, "unauthorized", True)
                    log.warning("%s: %s; asking auth for a fresh token", self.name, exc)
                    self._invalidate()
                    attempt += 1
                    if attempt == 1:  # the first retry with a fresh token goes at once
                        continue
                    delay = self._backoff.delay(attempt - 1)
                except NoToken as exc:
                    self._status.failed_connection(self.name, "no_token", None)
                    attempt += 1
                    delay = self._backoff.delay(attempt, exc.retry_after)
                    log.warning("%s: %s; retrying in %.1fs", self.name, exc, delay.total_seconds())
                except TransientFailure as exc:
                    self._status.failed_connection(self.name, type(exc).__name__, False)
                    attempt += 1
                    delay = self._backoff.delay(attempt, exc.retry_after)
                    log.warning("%s: %s; retrying in %.1fs", self.name, exc, delay.total_seconds())
                except PermanentFailure as exc:
                    # 400/404: a configuration problem; keep trying slowly so a fix needs no
                    # restart, and let readiness say so.
                    self._status.failed_connection(self.name, "refused", True)
                    log.error("%s: %s; check the pipeline endpoint and topic", self.name, exc)
                    delay = self._backoff.cap
                except TransactionAborted:
                    attempt += 1  # the producer is fine; re-read from the committed pointer
                    delay = self._backoff.delay(attempt)
                except (KafkaException, ProducerBroken) as exc:
                    error = (
                        exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                    )
                    if error is not None and error.code() == KafkaError._FENCED:
                        raise Fenced(self._transactional_id) from exc
                    # Anything else: drop the producer and start a clean one from the committed
                    # pointer; what the broken transaction held is aborted by the next init.
                    log.error("%s: Kafka producer failed (%s); recreating it", self.name, exc)
                    _discard(producer)
                    producer = None
                    attempt += 1
                    delay = self._backoff.delay(attempt)
                self._stop.wait(delay.total_seconds())
        finally:
            if producer is not None:
                producer.flush(10)

    def _invalidate(self) -> None:
        """Tell auth the token was refused; auth being down too is retried, never raised."""
        try:
            self._tokens.invalidate(self._last_token)
        except TriggerlineError as exc:
            self._status.failed_connection(self.name, "no_token", None)
            log.warning("%s: could not reach auth to renew the token: %s", self.name, exc)

    def _token(self) -> str:
        try:
            self._last_token = self._tokens.token()
        except TriggerlineError as exc:
            raise NoToken(f"auth gave no token: {exc}") from None
        return self._last_token

    def _stream_once(self, producer: Producer) -> None:
        token = self._token()
        self.applier.restart_from(self._committed)
        buffer = LineBuffer(self._max_buffered_bytes)
        request = self._request()
        reader = threading.Thread(
            target=self._read,
            args=(request, token, buffer),
            name=f"{self.name}-reader",
            daemon=True,
        )
        reader.start()
        batch = self._transaction(producer)
        last_item = time.monotonic()
        try:
            while not self._stop.is_set():
                self._status.progress(self.name)
                item = buffer.get(self._wait_time(batch, last_item))
                now = time.monotonic()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, list):
                    last_item = now
                    self.applier.handle(item, batch)
                self.applier.retry_due(batch, now)
                if flush_due(
                    batch.count,
                    timedelta(seconds=now - batch.first_at),
                    timedelta(seconds=now - last_item),
                    self._limits,
                ):
                    batch = self._commit(batch, producer)
            self._commit(batch, producer)
        except (TransientFailure, PermanentFailure):
            # Upstream broke, Kafka did not: what was read are whole envelopes, so commit them
            # with their pointer and resume after them (a half envelope was never parsed).
            self._commit(batch, producer)
            raise
        except BaseException:
            if batch.open:
                batch.abort()
            raise
        finally:
            buffer.close()

    def _transaction(self, producer: Producer) -> IngestTransaction:
        return IngestTransaction(
            producer,
            name=self.name,
            topic=self.applier.topic,
            group=self._group,
            status=self._status,
            stopping=self._stop.is_set,
            cursors=dict(self._committed),
        )

    def _commit(self, batch: IngestTransaction, producer: Producer) -> IngestTransaction:
        self._committed.update(batch.commit())
        return self._transaction(producer)

    def _wait_time(self, batch: IngestTransaction, last_item: float) -> float:
        if batch.count == 0:
            return 0.5
        now = time.monotonic()
        until_period = self._limits.longest_open.total_seconds() - (now - batch.first_at)
        until_linger = self._limits.linger.total_seconds() - (now - last_item)
        return min(0.5, max(0.0, min(until_period, until_linger)))

    def _read(self, request: StreamRequest, token: str, buffer: LineBuffer) -> None:
        """Reader thread: a full buffer blocks it, which pushes back on upstream via TCP."""
        try:
            for frames in self._upstream.batches(request, token):
                for start in range(0, len(frames), QUEUE_SLICE):
                    part = frames[start : start + QUEUE_SLICE]
                    held = sum(len(f) if isinstance(f, bytes) else len(f.head) for f in part)
                    read = sum(len(f) if isinstance(f, bytes) else f.size for f in part)
                    self._status.read(self.name, read, len(part))
                    buffer.put(part, held)
                if self._stop.is_set():
                    break
            buffer.put(_END, 0)
        except Closed:
            return
        except BaseException as exc:
            try:
                buffer.put(exc, 0)
            except Closed:
                return


def _discard(producer: Producer | None) -> None:
    if producer is not None:
        producer.purge()
        producer.flush(0)

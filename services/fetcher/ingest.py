"""One ingest worker: stream some upstream partitions into Kafka, exactly once.

Each worker owns a fixed set of upstream partitions, one streamed GET (with `assign` from its
committed pointer) and one transactional producer whose id is stable for that set, so a
restarted worker fences any zombie still holding the same id. Everything read between two
flushes, plus the pointer that covers it, is one Kafka transaction.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Producer

from services.common.backoff import Backoff
from services.common.errors import PermanentFailure, TransientFailure
from services.fetcher.rules.flush import FlushLimits, flush_due
from services.fetcher.status import FetcherStatus
from services.fetcher.transaction import IngestTransaction, ProducerBroken, TransactionAborted
from services.fetcher.upstream import StreamRequest, Unauthorized, UpstreamStream

log = logging.getLogger(__name__)

# Kafka's own special offsets, used in `assign` for a partition with no stored pointer.
RESET_OFFSETS = {"latest": -1, "earliest": -2}
_END = object()
QUEUE_SLICE = 100  # lines per item of the reader's queue


class Tokens(Protocol):
    def token(self) -> str: ...
    def invalidate(self, token: str) -> None: ...


class IngestWorker:
    """Streams `partitions` of `topic` into `triggers.raw` until `stop` is set."""

    def __init__(
        self,
        *,
        name: str,
        topic: str,
        partitions: list[int],
        group: str,
        reset: str,
        pointers: dict[int, int],
        upstream: UpstreamStream,
        tokens: Tokens,
        producer_factory: Callable[[str], Producer],
        transactional_id: str,
        limits: FlushLimits,
        status: FetcherStatus,
        stop: threading.Event,
        max_buffered: int = 10000,
        sync_interval_ms: int = 0,
        backoff: Backoff | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.name = name
        self._topic = topic
        self._partitions = partitions
        self._group = group
        self._reset = reset
        self._pointers = dict(pointers)  # committed: partition -> next offset
        self._upstream = upstream
        self._tokens = tokens
        self._producer_factory = producer_factory
        self._transactional_id = transactional_id
        self._limits = limits
        self._status = status
        self._stop = stop
        self._max_buffered = max_buffered
        self._sync_interval_ms = sync_interval_ms
        self._backoff = backoff or Backoff()
        self._on_fatal = on_fatal
        self._last_token = ""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _request(self) -> StreamRequest:
        assign = {p: self._pointers.get(p, RESET_OFFSETS[self._reset]) for p in self._partitions}
        return StreamRequest(self._topic, self._group, assign, self._reset, self._sync_interval_ms)

    def _new_producer(self) -> Producer:
        """A producer holding this worker's transactional id; initialising it fences any
        earlier holder (a zombie of this worker) and aborts whatever that one left open."""
        producer = self._producer_factory(self._transactional_id)
        producer.init_transactions(60)
        return producer

    def _run(self) -> None:
        producer: Producer | None = None
        attempt = 0
        while not self._stop.is_set():
            try:
                if producer is None:
                    producer = self._new_producer()
                self._stream_once(producer)
                attempt = 0
            except Unauthorized as exc:
                self._status.failed_connection("unauthorized")
                log.warning("%s: %s; asking auth for a fresh token", self.name, exc)
                self._tokens.invalidate(self._last_token)
                attempt += 1
                if attempt > 1:  # the first retry with a fresh token goes at once
                    self._stop.wait(self._backoff.delay(attempt - 1).total_seconds())
            except TransientFailure as exc:
                self._status.failed_connection(type(exc).__name__)
                attempt += 1
                delay = self._backoff.delay(attempt, exc.retry_after)
                log.warning("%s: %s; retrying in %.1fs", self.name, exc, delay.total_seconds())
                self._stop.wait(delay.total_seconds())
            except PermanentFailure as exc:
                # 400/404: a configuration problem; keep trying slowly so a fix needs no restart.
                self._status.failed_connection("refused")
                log.error("%s: %s; check the pipeline endpoint and topic", self.name, exc)
                self._stop.wait(self._backoff.cap.total_seconds())
            except TransactionAborted:
                attempt += 1  # the producer is fine; re-read from the committed pointer
                self._stop.wait(self._backoff.delay(attempt).total_seconds())
            except (KafkaException, ProducerBroken) as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                if error is not None and error.code() == KafkaError._FENCED:
                    # Another process holds this transactional id: this one is the zombie.
                    log.critical("%s: fenced by a newer instance, stopping", self.name)
                    if self._on_fatal:
                        self._on_fatal(exc)
                    return
                # Anything else: drop the producer and start a clean one from the committed
                # pointer; what the broken transaction held is aborted by the next init.
                log.error("%s: Kafka producer failed (%s); recreating it", self.name, exc)
                if producer is not None:
                    producer.purge()
                    producer.flush(0)
                producer = None
                attempt += 1
                self._stop.wait(self._backoff.delay(attempt).total_seconds())
        if producer is not None:
            producer.flush(10)

    def _stream_once(self, producer: Producer) -> None:
        self._last_token = token = self._tokens.token()
        # Items are slices of at most QUEUE_SLICE lines, so the bound counts envelopes (rounded
        # up to a slice) whatever their size, and memory stays flat at any upstream rate.
        slots = max(1, -(-self._max_buffered // QUEUE_SLICE))
        lines: queue.Queue[object] = queue.Queue(maxsize=slots)
        request = self._request()
        reader = threading.Thread(
            target=self._read, args=(request, token, lines), name=f"{self.name}-reader", daemon=True
        )
        reader.start()
        batch = self._transaction(producer)
        last_item = time.monotonic()
        expected = dict(request.assign)
        try:
            while not self._stop.is_set():
                wait = self._wait_time(batch, last_item)
                try:
                    item = lines.get(timeout=wait)
                except queue.Empty:
                    item = None
                now = time.monotonic()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, list):
                    last_item = now
                    data = sum(batch.add(line, expected) for line in item)
                    self._status.read(sum(map(len, item)), data, len(item) - data)
                if flush_due(
                    batch.count,
                    timedelta(seconds=now - batch.first_at),
                    timedelta(seconds=now - last_item),
                    self._limits,
                ):
                    self._pointers.update(batch.commit())
                    batch = self._transaction(producer)
            if batch.open:
                self._pointers.update(batch.commit())
        except (TransientFailure, PermanentFailure):
            # Upstream broke, Kafka did not: what was read are whole envelopes, so commit them
            # with their pointer and resume after them (a half envelope was never parsed).
            if batch.open:
                self._pointers.update(batch.commit())
            raise
        except BaseException:
            if batch.open:
                batch.abort()
            raise

    def _transaction(self, producer: Producer) -> IngestTransaction:
        return IngestTransaction(
            producer,
            name=self.name,
            topic=self._topic,
            group=self._group,
            status=self._status,
            stopping=self._stop.is_set,
        )

    def _wait_time(self, batch: IngestTransaction, last_item: float) -> float:
        if batch.count == 0:
            return 0.5
        now = time.monotonic()
        until_period = self._limits.period.total_seconds() - (now - batch.first_at)
        until_linger = self._limits.linger.total_seconds() - (now - last_item)
        return max(0.0, min(until_period, until_linger))

    def _read(self, request: StreamRequest, token: str, lines: queue.Queue[object]) -> None:
        """Reader thread: a full queue blocks it, which pushes back on upstream via TCP."""
        try:
            for batch in self._upstream.batches(request, token):
                for start in range(0, len(batch), QUEUE_SLICE):
                    lines.put(batch[start : start + QUEUE_SLICE])
                if self._stop.is_set():
                    break
            lines.put(_END)
        except BaseException as exc:
            lines.put(exc)

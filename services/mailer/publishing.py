"""Writes what a verdict says to Kafka: outcomes, retry records and dead letters."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import datetime

from confluent_kafka import KafkaError, Message, Producer

from services.common.dlq import dead_letter_headers
from services.common.headers import (
    X_ATTEMPT,
    X_ERROR_CLASS,
    X_ERROR_MESSAGE,
    X_FIRST_FAILURE_TS,
    X_NOT_BEFORE,
    X_ORIGINAL_OFFSET,
    X_ORIGINAL_PARTITION,
    X_ORIGINAL_TIMESTAMP,
    X_ORIGINAL_TOPIC,
    X_PREFIX,
    X_SERVICE,
)
from services.common.kafka import Headers, header
from services.common.models import EmailRequest, Outcome
from services.common.serde import email_request_serde, outcome_serde
from services.common.topics import topics
from services.mailer.rules.report import SERVICE
from services.mailer.rules.retry import Retry

log = logging.getLogger(__name__)


def _ms(at: datetime) -> bytes:
    return str(int(at.timestamp() * 1000)).encode()


def message_headers(message: Message) -> Headers:
    """A consumed message's headers as `(name, bytes)` pairs, whatever the client handed back."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [
        (name, value.encode() if isinstance(value, str) else value)
        for name, value in pairs
        if value is not None
    ]


def origin(message: Message) -> tuple[str, int, int, int | None]:
    """Where the request first entered the mailer: kept across hops through retry topics."""
    headers = message_headers(message)
    topic = header(headers, X_ORIGINAL_TOPIC)
    if topic is not None:
        partition = int(header(headers, X_ORIGINAL_PARTITION) or 0)
        offset = int(header(headers, X_ORIGINAL_OFFSET) or 0)
        stamp = header(headers, X_ORIGINAL_TIMESTAMP)
        return topic, partition, offset, int(stamp) if stamp else None
    kind, stamp_ms = message.timestamp()
    return (
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        stamp_ms if kind else None,
    )


def retry_headers(
    message: Message, retry: Retry, error: BaseException | None, now: datetime
) -> Headers:
    """The original non-`x-` headers, the first origin, and when and why to try again."""
    original = message_headers(message)
    topic, partition, offset, stamp = origin(message)
    headers: Headers = [(k, v) for k, v in original if not k.startswith(X_PREFIX)]
    headers += [
        (X_ORIGINAL_TOPIC, topic.encode()),
        (X_ORIGINAL_PARTITION, str(partition).encode()),
        (X_ORIGINAL_OFFSET, str(offset).encode()),
        (X_SERVICE, SERVICE.encode()),
        (X_ATTEMPT, str(retry.attempt).encode()),
        (X_NOT_BEFORE, _ms(retry.not_before)),
        (X_FIRST_FAILURE_TS, (header(original, X_FIRST_FAILURE_TS) or "").encode() or _ms(now)),
    ]
    if stamp is not None:
        headers.append((X_ORIGINAL_TIMESTAMP, str(stamp).encode()))
    if error is not None:
        headers.append((X_ERROR_CLASS, type(error).__qualname__.encode()))
        headers.append((X_ERROR_MESSAGE, str(error)[:1000].encode("utf-8", "replace")))
    return headers


class Publisher:
    """An idempotent producer plus the bookkeeping to know that a batch is durable."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._lock = threading.Lock()
        self._failures: list[str] = []

    def outcome(self, outcome: Outcome) -> None:
        key = outcome.profile_id or outcome.message_id
        self._produce(
            topics().outcomes.name, key.encode(), outcome_serde().encode(outcome.to_record()), []
        )

    def retry(
        self,
        message: Message,
        request: EmailRequest,
        retry: Retry,
        error: BaseException | None,
        now: datetime,
    ) -> None:
        value = email_request_serde().encode(replace(request, attempt=retry.attempt).to_record())
        self._produce(retry.topic, message.key(), value, retry_headers(message, retry, error, now))

    def dead_letter(
        self, message: Message, reason: str, error: BaseException | None, attempt: int | None
    ) -> None:
        """The original bytes, with headers naming where they first came from and why."""
        topic, partition, offset, stamp = origin(message)
        original = [(k, v) for k, v in message_headers(message) if not k.startswith(X_PREFIX)]
        headers = dead_letter_headers(
            service=SERVICE,
            reason=reason,
            error=error,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            source_timestamp_ms=stamp,
            attempt=attempt,
            original=original,
        )
        self._produce(topics().emails_dlq.name, message.key(), message.value(), headers)

    def flush(self, timeout: float) -> list[str]:
        """Wait for every record; the failures since the last flush (empty: all durable)."""
        remaining = self._producer.flush(timeout)
        with self._lock:
            failures, self._failures = self._failures, []
        if remaining:
            failures.append(f"{remaining} records still unacknowledged after {timeout:g}s")
        return failures

    def _produce(
        self, topic: str, key: bytes | str | None, value: bytes | str | None, headers: Headers
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=list[tuple[str, str | bytes | None]](headers),
                    on_delivery=self._delivered,
                )
                return
            except BufferError:
                self._producer.poll(0.1)  # local queue full: let deliveries drain first

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            with self._lock:
                self._failures.append(f"{message.topic()}: {error}")

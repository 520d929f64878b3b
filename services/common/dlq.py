"""Dead-letter records: the original bytes plus headers that say where they came from and why."""

from __future__ import annotations

import time
from typing import Protocol

from services.common.kafka import Headers

HEADER_PREFIX = "x-"


class SourceMessage(Protocol):
    """What a dead-letter record needs of a consumed message (confluent `Message` fits)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | str | None: ...
    def value(self) -> bytes | str | None: ...
    def headers(self) -> Headers | None: ...
    def timestamp(self) -> tuple[int, int]: ...


def dead_letter_headers(
    *,
    service: str,
    reason: str,
    error: BaseException | None,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    source_timestamp_ms: int | None = None,
    attempt: int | None = None,
    original: Headers | None = None,
) -> Headers:
    """Headers naming the source position, the reason and the error class.

    The original headers are kept (minus earlier `x-` error headers), so a re-drive can restore
    the message exactly; `x-redrive-count` is added by the re-drive, not here.
    """
    kept = [(k, v) for k, v in (original or []) if not k.startswith(HEADER_PREFIX + "error")]
    headers: Headers = [
        *kept,
        ("x-original-topic", source_topic.encode()),
        ("x-original-partition", str(source_partition).encode()),
        ("x-original-offset", str(source_offset).encode()),
        ("x-service", service.encode()),
        ("x-error-reason", reason.encode()),
        ("x-failed-at", str(int(time.time() * 1000)).encode()),
    ]
    if source_timestamp_ms is not None:
        headers.append(("x-original-timestamp", str(source_timestamp_ms).encode()))
    if error is not None:
        headers.append(("x-error-class", type(error).__qualname__.encode()))
        headers.append(("x-error-message", str(error)[:1000].encode("utf-8", "replace")))
    if attempt is not None:
        headers.append(("x-attempt", str(attempt).encode()))
    return headers


def headers_for_message(
    message: SourceMessage,
    *,
    service: str,
    reason: str,
    error: BaseException | None,
    attempt: int | None = None,
) -> Headers:
    """Dead-letter headers for a consumed confluent-kafka message."""
    timestamp_type, timestamp = message.timestamp()
    return dead_letter_headers(
        service=service,
        reason=reason,
        error=error,
        source_topic=message.topic() or "",
        source_partition=message.partition() or 0,
        source_offset=message.offset() or 0,
        source_timestamp_ms=timestamp if timestamp_type else None,
        attempt=attempt,
        original=message.headers(),
    )

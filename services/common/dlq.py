"""Dead-letter records: the original bytes plus headers that say where they came from and why."""

from __future__ import annotations

import hashlib
import time

from services.common.headers import (
    X_ATTEMPT,
    X_ERROR_CLASS,
    X_ERROR_MESSAGE,
    X_ERROR_PREFIX,
    X_ERROR_REASON,
    X_FAILED_AT,
    X_ORIGINAL_OFFSET,
    X_ORIGINAL_PARTITION,
    X_ORIGINAL_SHA256,
    X_ORIGINAL_SIZE,
    X_ORIGINAL_TIMESTAMP,
    X_ORIGINAL_TOPIC,
    X_SERVICE,
    X_TRUNCATED,
)
from services.common.kafka import Headers

# A dead letter's value is cut to this, far inside any topic's max.message.bytes (1 MB by
# default) with room for its headers, so Kafka never refuses the record that reports a problem.
DEAD_LETTER_MAX_VALUE = 256 * 1024


def bounded_value(
    value: bytes, size: int | None = None, sha256: str | None = None
) -> tuple[bytes, Headers]:
    """The value a dead letter may carry, plus headers describing what was cut.

    `size` and `sha256` describe the original when `value` is already only its start (a line
    too long to buffer whole); otherwise they are measured here. An original that fits comes
    back untouched with no headers.
    """
    size = len(value) if size is None else size
    if size <= DEAD_LETTER_MAX_VALUE and len(value) == size:
        return value, []
    digest = sha256 or hashlib.sha256(value).hexdigest()
    return value[:DEAD_LETTER_MAX_VALUE], [
        (X_TRUNCATED, b"true"),
        (X_ORIGINAL_SIZE, str(size).encode()),
        (X_ORIGINAL_SHA256, digest.encode()),
    ]


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
    kept = [(k, v) for k, v in (original or []) if not k.startswith(X_ERROR_PREFIX)]
    headers: Headers = [
        *kept,
        (X_ORIGINAL_TOPIC, source_topic.encode()),
        (X_ORIGINAL_PARTITION, str(source_partition).encode()),
        (X_ORIGINAL_OFFSET, str(source_offset).encode()),
        (X_SERVICE, service.encode()),
        (X_ERROR_REASON, reason.encode()),
        (X_FAILED_AT, str(int(time.time() * 1000)).encode()),
    ]
    if source_timestamp_ms is not None:
        headers.append((X_ORIGINAL_TIMESTAMP, str(source_timestamp_ms).encode()))
    if error is not None:
        headers.append((X_ERROR_CLASS, type(error).__qualname__.encode()))
        headers.append((X_ERROR_MESSAGE, str(error)[:1000].encode("utf-8", "replace")))
    if attempt is not None:
        headers.append((X_ATTEMPT, str(attempt).encode()))
    return headers

"""The fetcher's indicators, under the names Adobe's `/pipelined/status` page uses.

Operators already watch these: `current-messages` near 0, `trigger-discarded` at 0, pings rising.
The same numbers are exported to Prometheus.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge

RECEIVED = Counter("triggerline_fetcher_triggers_received", "DATA envelopes read from upstream")
PROCESSED = Counter("triggerline_fetcher_triggers_processed", "Envelopes committed to triggers.raw")
FAILURES = Counter("triggerline_fetcher_trigger_failures", "Malformed envelopes sent to the DLQ")
PINGS = Counter("triggerline_fetcher_pings_received", "SYNC envelopes read from upstream")
BYTES = Counter("triggerline_fetcher_bytes_read", "Envelope bytes read from upstream")
FLUSHES = Counter(
    "triggerline_fetcher_pointer_flushes", "Transactions committed (messages + pointer)"
)
FLUSH_ERRORS = Counter("triggerline_fetcher_pointer_flush_errors", "Transactions aborted")
RESETS = Counter(
    "triggerline_fetcher_upstream_resets",
    "Stored pointers upstream no longer held (data loss upstream)",
)
SKIPPED = Counter(
    "triggerline_fetcher_upstream_skipped_messages", "Messages skipped by upstream resets"
)
CONNECT_FAILURES = Counter(
    "triggerline_fetcher_connection_failures", "Failed upstream connections", ["reason"]
)
PENDING = Gauge("triggerline_fetcher_current_messages", "Envelopes read but not yet committed")


@dataclass
class FetcherStatus:
    """Live state of one fetcher process; every worker updates it."""

    consumer: str
    pipeline_host: str
    flush_message_count: int
    flush_period_ms: int
    processing_threads: int
    routing: dict[str, Any]
    _lock: threading.Lock = field(default_factory=threading.Lock)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    last_alive: float | None = None
    last_failed: float | None = None
    last_flush: float | None = None
    processed_since_flush: int = 0
    current_messages: int = 0
    peak_messages: int = 0
    bytes_read: int = 0
    received: int = 0
    processed: int = 0
    failures: int = 0
    pings: int = 0
    flushes: int = 0
    flush_errors: int = 0
    flush_time_total_ms: float = 0.0
    resets: int = 0
    skipped: int = 0

    def alive(self) -> None:
        with self._lock:
            self.last_alive = time.monotonic()

    def failed_connection(self, reason: str) -> None:
        CONNECT_FAILURES.labels(reason).inc()
        with self._lock:
            self.last_failed = time.monotonic()

    def read(self, size: int, data: int, pings: int = 0) -> None:
        """One network batch read: `data` DATA envelopes (malformed included), `pings` SYNCs."""
        BYTES.inc(size)
        RECEIVED.inc(data)
        PINGS.inc(pings)
        with self._lock:
            self.bytes_read += size
            self.received += data
            self.current_messages += data
            self.peak_messages = max(self.peak_messages, self.current_messages)
            self.pings += pings
            self.last_alive = time.monotonic()
        PENDING.set(self.current_messages)

    def failed_envelope(self) -> None:
        FAILURES.inc()
        with self._lock:
            self.failures += 1

    def flushed(self, topic: str, offsets: dict[int, int], count: int, seconds: float) -> None:
        FLUSHES.inc()
        PROCESSED.inc(count)
        with self._lock:
            for partition, offset in offsets.items():
                self.offsets[(topic, partition)] = offset
            self.processed += count
            self.current_messages = max(0, self.current_messages - count)
            self.flushes += 1
            self.flush_time_total_ms += seconds * 1000
            self.last_flush = time.monotonic()
            self.processed_since_flush = 0
        PENDING.set(self.current_messages)

    def aborted(self, count: int) -> None:
        FLUSH_ERRORS.inc()
        with self._lock:
            self.flush_errors += 1
            self.current_messages = max(0, self.current_messages - count)

    def reset_detected(self, skipped: int) -> None:
        RESETS.inc()
        SKIPPED.inc(skipped)
        with self._lock:
            self.resets += 1
            self.skipped += skipped

    def snapshot(self) -> dict[str, Any]:
        """Adobe's `/pipelined/status` structure."""
        now = time.monotonic()

        def ago(moment: float | None) -> int | None:
            return None if moment is None else int((now - moment) * 1000)

        with self._lock:
            offsets = ",".join(
                f"{p}:{o}" for (_, p), o in sorted(self.offsets.items(), key=lambda kv: kv[0][1])
            )
            flush_avg = self.flush_time_total_ms / self.flushes if self.flushes else 0.0
            return {
                "agents": [
                    {
                        "name": "listener",
                        "consumer": self.consumer,
                        "http-request": {
                            "last-alive-ms-ago": ago(self.last_alive),
                            "last-failed-cnx-ms-ago": ago(self.last_failed),
                            "pipeline-host": self.pipeline_host,
                        },
                        "pointer": {
                            "current-offsets": offsets,
                            "last-flush-ms-ago": ago(self.last_flush),
                            "next-offsets-flush": self.flush_message_count,
                            "processed-since-last-flush": self.current_messages,
                        },
                        "routing": self.routing,
                        "stats": {
                            "average-pointer-flush-time-ms": round(flush_avg, 3),
                            "average-trigger-processing-time-ms": round(
                                flush_avg / max(1, self.processed / max(1, self.flushes)), 3
                            ),
                            "bytes-read": self.bytes_read,
                            "current-messages": self.current_messages,
                            "current-retries": 0,
                            "peak-messages": self.peak_messages,
                            "ping-received": self.pings,
                            "pointer-flush-errors": self.flush_errors,
                            "pointer-flushes": self.flushes,
                            "trigger-discarded": 0,
                            "trigger-failures": self.failures,
                            "trigger-processed": self.processed,
                            "trigger-received": self.received,
                            "upstream-resets": self.resets,
                            "upstream-skipped-messages": self.skipped,
                        },
                        "settings": {
                            "flush-pointer-msg-count": self.flush_message_count,
                            "flush-pointer-period-ms": self.flush_period_ms,
                            "processing-threads-JS": self.processing_threads,
                        },
                    }
                ]
            }

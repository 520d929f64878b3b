"""The fetcher's indicators, under the names Adobe's `/pipelined/status` page uses.

Operators already watch these: `current-messages` near 0, `trigger-discarded` at 0, pings rising.
The same numbers are exported to Prometheus (`metrics`). Names Adobe shows that mean nothing here
(`profile-received`, `push-id-received`: other message kinds; `routing-JS-custom`: routing is
the processor's) are left out rather than shown as constants; docs/operations.md says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.fetcher import metrics
from services.fetcher.rules.cursor import Cursor
from services.fetcher.rules.health import WorkerView


@dataclass
class WorkerStatus:
    """One ingest worker's share of the page (Adobe's per-thread entries)."""

    partitions: list[int]
    running: bool = True
    restarts: int = 0
    last_progress: float = field(default_factory=time.monotonic)
    upstream_answers: bool = False
    pointer_read: bool = False  # its committed pointer was read since the process started
    last_error: str = ""
    processed: int = 0
    failures: int = 0
    retries: int = 0
    pending_release: int = 0


@dataclass
class FetcherStatus:
    """Live state of one fetcher process; every worker updates it."""

    consumer: str
    pipeline_host: str
    flush_message_count: int
    flush_period_ms: int
    processing_threads: int
    routing: dict[str, Any]
    retry_period_ms: int = 30000
    retry_validity_ms: int = 300000
    _lock: threading.Lock = field(default_factory=threading.Lock)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    workers: dict[str, WorkerStatus] = field(default_factory=dict)
    last_alive: float | None = None
    last_failed: float | None = None
    last_flush: float | None = None
    current_messages: int = 0
    peak_messages: int = 0
    bytes_read: int = 0
    received: int = 0
    processed: int = 0
    failures: int = 0
    discarded: int = 0
    pings: int = 0
    flushes: int = 0
    flush_errors: int = 0
    flush_time_total_ms: float = 0.0
    processing_seconds: float = 0.0
    processing_count: int = 0
    resets: int = 0
    skipped: int = 0

    def register(self, worker: str, partitions: list[int]) -> None:
        with self._lock:
            self.workers[worker] = WorkerStatus(list(partitions))

    def resumed(self, worker: str, topic: str, offsets: Mapping[int, int]) -> None:
        """The worker read its committed pointer: `current-offsets` shows it from then on."""
        with self._lock:
            self.workers[worker].pointer_read = True
            for partition, offset in offsets.items():
                self.offsets[(topic, partition)] = offset

    def progress(self, worker: str) -> None:
        """The worker turned with its stream open: upstream answers and nothing is stuck."""
        with self._lock:
            state = self.workers[worker]
            state.last_progress = self.last_alive = time.monotonic()
            state.upstream_answers = True

    def failed_connection(self, worker: str, reason: str, upstream_answered: bool | None) -> None:
        """A stream could not be opened; `upstream_answered` is None when upstream was not
        asked (auth gave no token), which leaves what is known of upstream as it was."""
        metrics.CONNECT_FAILURES.labels(reason).inc()
        with self._lock:
            self.last_failed = time.monotonic()
            state = self.workers[worker]
            if upstream_answered is not None:
                state.upstream_answers = upstream_answered
            state.last_error = reason

    def worker_down(self, worker: str, error: str) -> None:
        metrics.RESTARTS.labels(worker).inc()
        with self._lock:
            state = self.workers[worker]
            state.running = False
            state.restarts += 1
            state.last_error = error
            state.pending_release = 0
            metrics.WORKERS_DOWN.set(sum(not w.running for w in self.workers.values()))

    def worker_up(self, worker: str) -> None:
        with self._lock:
            state = self.workers[worker]
            state.running = True
            state.last_progress = time.monotonic()
            metrics.WORKERS_DOWN.set(sum(not w.running for w in self.workers.values()))

    def pointers_read(self) -> bool:
        """Whether every worker has read its committed pointer at least once."""
        with self._lock:
            return all(w.pointer_read for w in self.workers.values())

    def health_views(self) -> dict[str, WorkerView]:
        now = time.monotonic()
        with self._lock:
            return {
                name: WorkerView(w.running, now - w.last_progress, w.upstream_answers, w.last_error)
                for name, w in self.workers.items()
            }

    def read(self, worker: str, size: int, envelopes: int) -> None:
        """One slice of lines read by a worker (handled later, in its transaction)."""
        metrics.BYTES.inc(size)
        with self._lock:
            self.bytes_read += size
            self.current_messages += envelopes
            self.peak_messages = max(self.peak_messages, self.current_messages)
            self.workers[worker].last_progress = self.last_alive = time.monotonic()
        metrics.PENDING.set(self.current_messages)

    def handled(
        self, worker: str, lines: int, data: int, pings: int, pending: int, seconds: float
    ) -> None:
        """`lines` taken from the queue became `data` DATA envelopes and `pings` SYNCs, in
        `seconds` of parsing, encoding and producing; `pending` now wait for the commit."""
        metrics.RECEIVED.inc(data)
        metrics.PINGS.inc(pings)
        metrics.PROCESSING.inc(seconds)
        with self._lock:
            self.received += data
            self.pings += pings
            self.current_messages = max(0, self.current_messages - lines)
            self.processing_seconds += seconds
            self.processing_count += data
            self.workers[worker].pending_release = pending
        metrics.PENDING.set(self.current_messages)
        metrics.PENDING_RELEASE.set(self._pending_release())

    def failed_envelope(self, worker: str) -> None:
        metrics.FAILURES.inc()
        with self._lock:
            self.failures += 1
            self.workers[worker].failures += 1

    def retries(self, worker: str, pending: int) -> None:
        with self._lock:
            self.workers[worker].retries = pending
            total = sum(w.retries for w in self.workers.values())
        metrics.RETRIES.set(total)

    def discarded_envelope(self) -> None:
        metrics.DISCARDED.inc()
        with self._lock:
            self.discarded += 1

    def flushed(
        self,
        worker: str,
        topic: str,
        cursors: Mapping[int, Cursor],
        count: int,
        seconds: float,
    ) -> None:
        metrics.FLUSHES.inc()
        metrics.PROCESSED.inc(count)
        with self._lock:
            for partition, cursor in cursors.items():
                self.offsets[(topic, partition)] = cursor.resume_at
            self.processed += count
            self.flushes += 1
            self.flush_time_total_ms += seconds * 1000
            self.last_flush = time.monotonic()
            state = self.workers.get(worker)
            if state is not None:
                state.processed += count
                state.pending_release = 0
                state.last_progress = self.last_flush
        metrics.PENDING_RELEASE.set(self._pending_release())

    def aborted(self, worker: str) -> None:
        metrics.FLUSH_ERRORS.inc()
        with self._lock:
            self.flush_errors += 1
            state = self.workers.get(worker)
            if state is not None:
                state.pending_release = 0
        metrics.PENDING_RELEASE.set(self._pending_release())

    def reset_detected(self, skipped: int) -> None:
        metrics.RESETS.inc()
        metrics.SKIPPED.inc(skipped)
        with self._lock:
            self.resets += 1
            self.skipped += skipped

    def _pending_release(self) -> int:
        return sum(w.pending_release for w in self.workers.values())

    def snapshot(self) -> dict[str, Any]:
        """Adobe's `/pipelined/status` structure, with per-thread entries."""
        now = time.monotonic()

        def ago(moment: float | None) -> int | None:
            return None if moment is None else int((now - moment) * 1000)

        with self._lock:
            offsets = ",".join(
                f"{p}:{o}" for (_, p), o in sorted(self.offsets.items(), key=lambda kv: kv[0][1])
            )
            flush_avg = self.flush_time_total_ms / self.flushes if self.flushes else 0.0
            processing_avg = (
                self.processing_seconds * 1000 / self.processing_count
                if self.processing_count
                else 0.0
            )
            pending_release = self._pending_release()
            retries = sum(w.retries for w in self.workers.values())
            threads = [
                {
                    "name": name,
                    "is-JS-processor": False,
                    "partitions": ",".join(map(str, w.partitions)),
                    "state": "running" if w.running else "restarting",
                    "restarts": w.restarts,
                    "last-progress-ms-ago": ago(w.last_progress),
                    "last-error": w.last_error,
                    "current-retries": w.retries,
                    "pending-release-messages": w.pending_release,
                    "trigger-failures": w.failures,
                    "trigger-processed": w.processed,
                }
                for name, w in sorted(self.workers.items())
            ]
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
                            "processed-since-last-flush": pending_release,
                        },
                        "routing": self.routing,
                        "stats": {
                            "average-pointer-flush-time-ms": round(flush_avg, 3),
                            "average-trigger-processing-time-ms": round(processing_avg, 3),
                            "bytes-read": self.bytes_read,
                            "current-messages": self.current_messages,
                            "current-retries": retries,
                            "peak-messages": self.peak_messages,
                            "pending-release-messages": pending_release,
                            "ping-received": self.pings,
                            "pointer-flush-errors": self.flush_errors,
                            "pointer-flushes": self.flushes,
                            "trigger-discarded": self.discarded,
                            "trigger-failures": self.failures,
                            "trigger-processed": self.processed,
                            "trigger-received": self.received,
                            "upstream-resets": self.resets,
                            "upstream-skipped-messages": self.skipped,
                            "worker-restarts": sum(w.restarts for w in self.workers.values()),
                        },
                        "threads": threads,
                        "settings": {
                            "flush-pointer-msg-count": self.flush_message_count,
                            "flush-pointer-period-ms": self.flush_period_ms,
                            "processing-threads-JS": self.processing_threads,
                            "retry-period-ms": self.retry_period_ms,
                            "retry-validity-duration-ms": self.retry_validity_ms,
                        },
                    }
                ]
            }

"""Prometheus metrics of the fetcher: the numbers of its `/pipelined/status` page, scraped.

`FetcherStatus` (in `status`) updates each metric where it updates the page's own count.
"""

from __future__ import annotations

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
PENDING = Gauge("triggerline_fetcher_current_messages", "Envelopes read but not yet handled")
PENDING_RELEASE = Gauge(
    "triggerline_fetcher_pending_release_messages",
    "Envelopes written into open transactions, not yet visible to readers",
)
RETRIES = Gauge("triggerline_fetcher_current_retries", "Envelopes waiting for a retry")
DISCARDED = Counter(
    "triggerline_fetcher_trigger_discarded",
    "Envelopes dead-lettered after failing for retryValiditySec (Adobe discards them)",
)
RESTARTS = Counter(
    "triggerline_fetcher_worker_restarts", "Ingest workers restarted after a failure", ["worker"]
)
WORKERS_DOWN = Gauge("triggerline_fetcher_workers_down", "Ingest workers down, awaiting restart")
PROCESSING = Counter(
    "triggerline_fetcher_processing_seconds",
    "Time spent parsing, encoding and producing envelopes (not committing)",
)

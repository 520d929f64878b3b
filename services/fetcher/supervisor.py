"""Keeps each ingest worker running: restarts after any failure, stops the process on a fatal one.

A worker thread that dies silently is the worst failure a fetcher can have: its partitions stop
while every probe stays green. So each worker runs under a supervisor thread that catches
whatever escapes the worker's own retry loop, records it (status page, metric, log with the
traceback), marks the worker down (readiness fails) and starts it again after a capped back-off.
Only two failures stop the process: a fenced producer (a newer instance took over) and a
configuration that leaves upstream partitions unread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from services.common.backoff import Backoff
from services.common.errors import ConfigurationError
from services.fetcher.ingest import Fenced, IngestWorker
from services.fetcher.status import FetcherStatus

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(
        self,
        worker: IngestWorker,
        *,
        status: FetcherStatus,
        stop: threading.Event,
        restart_cap: timedelta,
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self._worker = worker
        self._status = status
        self._stop = stop
        self._backoff = Backoff(initial=timedelta(seconds=1), cap=restart_cap)
        self._on_fatal = on_fatal
        self._thread = threading.Thread(target=self._run, name=worker.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        name = self._worker.name
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._worker.run()
                return
            except (Fenced, ConfigurationError) as exc:
                log.critical("%s: %s: stopping the fetcher", name, exc)
                self._status.worker_down(name, f"{type(exc).__name__}: {exc}"[:300])
                self._on_fatal(exc)
                return
            except Exception as exc:  # anything else is a bug or an unforeseen input: restart
                if time.monotonic() - started > self._backoff.cap.total_seconds():
                    failures = 0  # it ran well for a while: start the back-off over
                failures += 1
                delay = self._backoff.delay(failures)
                self._status.worker_down(name, f"{type(exc).__name__}: {exc}"[:300])
                log.exception("%s died; restarting in %.1fs", name, delay.total_seconds())
                self._stop.wait(delay.total_seconds())
                self._status.worker_up(name)

"""A worker that raises is restarted and counted, never left dead; fatal ones stop the fetcher."""

from __future__ import annotations

import threading
from datetime import timedelta

from services.common.errors import ConfigurationError
from services.fetcher.status import FetcherStatus
from services.fetcher.supervisor import Supervisor


class Crashing:
    """Raises `failures` times, then runs until stopped."""

    name = "triggers-w0"

    def __init__(self, failures: int, stop: threading.Event) -> None:
        self.failures = failures
        self.runs = 0
        self.stop = stop

    def run(self) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise RecursionError("maximum recursion depth exceeded")
        self.stop.wait(5)


def _status() -> FetcherStatus:
    status = FetcherStatus("c", "host", 1000, 5000, 1, {})
    status.register("triggers-w0", [0])
    return status


def test_a_crashing_worker_is_restarted_counted_and_reported() -> None:
    stop = threading.Event()
    worker = Crashing(2, stop)
    status = _status()
    fatal: list[BaseException] = []
    supervisor = Supervisor(
        worker,  # type: ignore[arg-type]
        status=status,
        stop=stop,
        restart_cap=timedelta(milliseconds=50),
        on_fatal=fatal.append,
    )
    supervisor.start()
    deadline = threading.Event()
    while worker.runs < 3 and not deadline.wait(0.05):
        pass
    thread = status.snapshot()["agents"][0]["threads"][0]
    stop.set()
    supervisor.join(5)
    assert worker.runs == 3 and not fatal
    assert thread["restarts"] == 2 and "RecursionError" in thread["last-error"]
    assert thread["state"] == "running"


def test_a_down_worker_makes_the_fetcher_unready_until_it_runs_again() -> None:
    status = _status()
    status.worker_down("triggers-w0", "RecursionError: boom")
    (view,) = status.health_views().values()
    assert not view.running
    status.worker_up("triggers-w0")
    (view,) = status.health_views().values()
    assert view.running


def test_a_configuration_error_stops_the_fetcher_instead_of_looping() -> None:
    stop = threading.Event()

    class Misconfigured(Crashing):
        def run(self) -> None:
            self.runs += 1
            raise ConfigurationError("partitions [2, 3] that no worker reads")

    worker = Misconfigured(0, stop)
    fatal: list[BaseException] = []
    supervisor = Supervisor(
        worker,  # type: ignore[arg-type]
        status=_status(),
        stop=stop,
        restart_cap=timedelta(milliseconds=50),
        on_fatal=fatal.append,
    )
    supervisor.start()
    supervisor.join(5)
    assert worker.runs == 1 and len(fatal) == 1

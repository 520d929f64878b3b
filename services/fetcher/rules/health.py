"""Whether one ingest worker is doing its job: the rule behind the fetcher's `/readyz`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerView:
    """What readiness needs to know of a worker, read from the status at one moment."""

    running: bool  # False between a crash and its restart
    progress_ago: float  # seconds since it last read, wrote, committed or idled on an open stream
    upstream_answers: bool  # its last request got an HTTP answer (even a refusal)
    last_error: str


def not_ready_reason(worker: WorkerView, stall_after: float) -> str | None:
    """Why the worker makes the fetcher unready, or `None` when it is fine.

    A worker that is down is unready at once. One that has made no progress for `stall_after`
    seconds is unready when upstream answers (a token it keeps refusing, a wedged loop, Kafka
    refusing commits): a restart or an operator can fix that. When upstream itself does not
    answer, the worker is waiting as it should; the connection-failure counters say so.
    """
    if not worker.running:
        return f"down, restarting: {worker.last_error}"
    if worker.progress_ago > stall_after and worker.upstream_answers:
        return f"no progress for {worker.progress_ago:.0f}s: {worker.last_error or 'stalled'}"
    return None

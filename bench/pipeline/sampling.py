"""CPU and memory of every process of a run, sampled once a second from /proc."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import cpu_seconds, jvm_cpu_seconds

BROKER = "broker"
BROKER_JIT = "broker_jit"


def rss_bytes(pid: int) -> int:
    """Resident set size now (VmRSS), 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Usage:
    """CPU seconds per label since the sampler started, and peak RSS since the last reset."""

    cpu: dict[str, float] = field(default_factory=dict)
    peak_rss: dict[str, int] = field(default_factory=dict)


class Sampler:
    """Samples `pids()` (label -> pid) and the broker; a restarted process is a new pid under
    the same label, whose CPU adds to what the old pid had used."""

    def __init__(self, pids: Callable[[], dict[str, int]], broker_pid: int | None) -> None:
        self._pids = pids
        self._broker = broker_pid
        self._lock = threading.Lock()
        self._last: dict[tuple[str, int], float] = {}  # CPU last seen per (label, pid)
        self._peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> Sampler:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.sample()

    def sample(self) -> None:
        pids = dict(self._pids())
        readings: dict[tuple[str, int], float] = {}
        rss: dict[str, int] = {}
        for label, pid in pids.items():
            try:
                readings[(label, pid)] = cpu_seconds(pid)
            except (OSError, IndexError):
                continue  # gone between listing and reading
            rss[label] = rss_bytes(pid)
        if self._broker is not None:
            try:
                jvm = jvm_cpu_seconds(self._broker)
            except OSError:
                jvm = None
            if jvm is not None:
                readings[(BROKER, self._broker)] = jvm["work"]
                readings[(BROKER_JIT, self._broker)] = jvm["jit"]
                rss[BROKER] = rss_bytes(self._broker)
        with self._lock:
            self._last.update(readings)
            for label, value in rss.items():
                self._peaks[label] = max(self._peaks.get(label, 0), value)

    def usage(self, reset_peaks: bool = False) -> Usage:
        """CPU so far per label (a fresh sample first); peaks since the last reset."""
        self.sample()
        with self._lock:
            cpu: dict[str, float] = {}
            for (label, _pid), seconds in self._last.items():
                cpu[label] = cpu.get(label, 0.0) + seconds
            usage = Usage(cpu, dict(self._peaks))
            if reset_peaks:
                self._peaks.clear()
        return usage


def cpu_between(before: Usage, after: Usage) -> dict[str, float]:
    """CPU seconds per label used between two readings."""
    return {
        label: round(after.cpu[label] - before.cpu.get(label, 0.0), 3)
        for label in sorted(after.cpu)
    }

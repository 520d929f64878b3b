"""Shared helpers for the benchmarks: timing, percentiles, JSON results with their command."""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Message

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux `/proc/<pid>/stat`)."""
    # Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# JVM threads that compile or sweep code: busy for minutes after a broker starts, whatever the
# load, so a broker's CPU is reported with and without them.
_JIT_THREADS = ("C1 CompilerThre", "C2 CompilerThre", "Sweeper thread")


def jvm_cpu_seconds(pid: int) -> dict[str, float]:
    """A JVM's CPU time so far, split into `jit` (its compiler threads) and `work` (the rest)."""
    jit = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        if name.startswith(_JIT_THREADS):
            jit += int(fields[11]) + int(fields[12])
    compiling = jit / os.sysconf("SC_CLK_TCK")
    return {"jit": compiling, "work": cpu_seconds(pid) - compiling}


def read_stamps(
    bootstrap: str, topic: str, count: int, deadline: float, stamp: Callable[[Message], float]
) -> list[float]:
    """`stamp` of each of the first `count` records of `topic` (fewer if the deadline passes)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-stamps-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    stamps: list[float] = []
    end = time.monotonic() + deadline
    while len(stamps) < count and time.monotonic() < end:
        stamps += [stamp(m) for m in consumer.consume(1000, 0.05) if not m.error()]
    consumer.close()
    return stamps


def percentiles(
    samples: list[float], points: tuple[float, ...] = (50, 90, 99, 99.9)
) -> dict[str, float]:
    """Nearest-rank percentiles of `samples` (any unit), keyed p50, p90..."""
    if not samples:
        return {}
    ordered = sorted(samples)
    result = {}
    for point in points:
        rank = max(0, min(len(ordered) - 1, math.ceil(point / 100 * len(ordered)) - 1))
        result[f"p{point:g}"] = ordered[rank]
    return result


def write_result(name: str, result: dict[str, Any]) -> Path:
    """bench/results/<name>.json, with the command line and the machine it ran on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "command": " ".join(
            [".venv/bin/python", "-m", f"bench.{Path(sys.argv[0]).stem}"]
            + [shlex.quote(a) for a in sys.argv[1:]]
        ),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **result,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))
    return path

"""The SMTP sinks a benchmark sends to: postfix's C `smtp-sink`, or our aiosmtpd sink.

Each runs in a process of its own on a fresh loopback port. `measure(senders)` starts the
clock; `result(timeout)` waits for the expected count (or the timeout) and reports what arrived:
how many emails, how many Message-IDs arrived more than once, the first and the last email's
time, and the CPU time of the sink and of the `senders` processes between those two emails.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal, Protocol

from bench.common import cpu_seconds
from services.simulator.smtp_sink import SmtpSink, free_port

SinkKind = Literal["smtp-sink", "aiosmtpd"]
SINKS: tuple[SinkKind, ...] = ("smtp-sink", "aiosmtpd")
SMTP_SINK = "/usr/sbin/smtp-sink"
SINK_NAMES: dict[SinkKind, str] = {
    "smtp-sink": "postfix smtp-sink (C, one process), dumping every message for the count check",
    "aiosmtpd": "aiosmtpd (services/simulator/smtp_sink.py) in its own process",
}


class Sink(Protocol):
    port: int

    def measure(self, senders: list[int]) -> None: ...

    def result(self, timeout: float) -> dict[str, Any]: ...


def start_sink(kind: SinkKind, count: int, timeout: float) -> Sink:
    """A running sink of the given kind that expects `count` emails."""
    if kind == "smtp-sink":
        return PostfixSink(count, timeout)
    return AiosmtpdSink(count, timeout)


def established(port: int) -> int:
    """Established TCP connections whose local end is loopback `port` (Linux /proc/net/tcp)."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        next(table)
        return sum(1 for row in table if row.split()[1] == local and row.split()[3] == "01")


def _report(
    mails: list[str | None], first: float, last: float, cpu: float, senders_cpu: float
) -> dict[str, Any]:
    ids = Counter(mails)
    return {
        "received": len(mails),
        "duplicates": sum(n - 1 for n in ids.values() if n > 1),
        "first": first,
        "last": last,
        "cpu": cpu,
        "senders_cpu": senders_cpu,
    }


class PostfixSink:
    """postfix's `smtp-sink`, appending every message to one dump file.

    `-c` prints a running message count on stdout, which a thread of this process polls for
    the first and the last email; the dump is read afterwards for each message's Message-ID,
    so the count and the duplicate check rest on what the sink actually received.
    """

    def __init__(self, count: int, timeout: float) -> None:
        if not os.access(SMTP_SINK, os.X_OK):
            raise SystemExit(
                f"{SMTP_SINK} is missing: install it with `apt-get install postfix` (only the "
                "smtp-sink test program is used; no mail daemon is started), or run the "
                "benchmark with --sink aiosmtpd"
            )
        self.port = free_port()
        self._count = count
        self._timeout = timeout
        self._dir = Path(tempfile.mkdtemp(prefix="bench-smtp-sink-"))
        self._separator = f"=====bench-{uuid.uuid4().hex}====="
        command = [SMTP_SINK, "-c", "-S", f"\\n{self._separator}\\n", "-D", str(self._dir / "dump")]
        if os.geteuid() == 0:
            # smtp-sink refuses to run as root: it drops to `nobody`, who must write the dump.
            nobody = pwd.getpwnam("nobody")
            os.chown(self._dir, nobody.pw_uid, nobody.pw_gid)
            command += ["-u", "nobody"]
        command += [f"127.0.0.1:{self.port}", "256"]
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        assert self._process.stdout is not None
        self._stdout = self._process.stdout.fileno()
        flags = fcntl.fcntl(self._stdout, fcntl.F_GETFL)
        fcntl.fcntl(self._stdout, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self._wait_listening()
        self._report: dict[str, Any] = {}
        self._ended = 0
        self._watcher: threading.Thread | None = None

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                assert self._process.stderr is not None
                raise RuntimeError(f"smtp-sink exited: {self._process.stderr.read().decode()}")
            with open("/proc/net/tcp") as table:
                if any(f"0100007F:{self.port:04X} 00000000:0000 0A" in row for row in table):
                    return
            time.sleep(0.01)
        raise RuntimeError("smtp-sink did not start listening")

    def measure(self, senders: list[int]) -> None:
        self._watcher = threading.Thread(target=self._watch, args=(senders,), daemon=True)
        self._watcher.start()

    def _messages(self, seen: int) -> int:
        """The latest `mesg=` count on the sink's stdout, or `seen` when nothing new arrived."""
        try:
            chunk = os.read(self._stdout, 1 << 16)
        except BlockingIOError:
            return seen
        counters = re.findall(rb"sess=(\d+) quit=\d+ mesg=(\d+)", chunk)
        if not counters:
            return seen
        self._ended = int(counters[-1][0])  # sessions that have ended so far
        return int(counters[-1][1])

    def _watch(self, senders: list[int]) -> None:
        # Polled every 2 ms rather than woken per message, which would take CPU from the run.
        end = time.monotonic() + self._timeout
        seen = 0
        first = cpu_first = senders_first = 0.0
        while seen < 1 and time.monotonic() < end:
            time.sleep(0.002)
            seen = self._messages(seen)
        first = time.monotonic()
        cpu_first = cpu_seconds(self._process.pid)
        senders_first = sum(cpu_seconds(pid) for pid in senders)
        while seen < self._count and time.monotonic() < end:
            time.sleep(0.002)
            seen = self._messages(seen)
        last = time.monotonic()
        cpu = cpu_seconds(self._process.pid) - cpu_first
        senders_cpu = sum(cpu_seconds(pid) for pid in senders) - senders_first
        sessions = self._ended + established(self.port)
        self._report = {"first": first, "last": last, "cpu": cpu, "senders_cpu": senders_cpu}
        self._report["sessions"] = sessions

    def result(self, timeout: float) -> dict[str, Any]:
        assert self._watcher is not None, "measure() first"
        self._watcher.join(timeout)
        if self._watcher.is_alive():
            raise RuntimeError("the smtp-sink watcher did not report")
        self._process.send_signal(signal.SIGTERM)
        self._process.wait(10)
        try:
            mails = self._message_ids()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
        r = self._report
        return {
            **_report(mails, r["first"], r["last"], r["cpu"], r["senders_cpu"]),
            "sessions": r["sessions"],
        }

    def _message_ids(self) -> list[str | None]:
        """One entry per dumped message: its Message-ID, or None when it had none."""
        separator = f"\n{self._separator}\n".encode()
        ids: list[str | None] = []
        for dump in sorted(self._dir.glob("dump*")):
            for message in dump.read_bytes().split(separator)[1:]:
                head = message.split(b"\n\n", 1)[0]
                found = re.search(rb"(?im)^message-id:[ \t]*(.*)$", head)
                ids.append(found[1].strip().decode("utf-8", "replace") if found else None)
        return ids


def _serve_aiosmtpd(port: int, count: int, timeout: float, pipe: Connection) -> None:
    """The aiosmtpd sink process: accept `count` emails (or give up), then report."""
    with SmtpSink(port=port) as sink:
        pipe.send("ready")
        senders: list[int] = pipe.recv()  # the processes whose CPU time is wanted too
        sink.wait_for(1, timeout)
        first, cpu_first = time.monotonic(), time.process_time()
        senders_first = sum(cpu_seconds(pid) for pid in senders)
        mails = sink.wait_for(count, timeout)
        last, cpu_last = time.monotonic(), time.process_time()
        senders_last = sum(cpu_seconds(pid) for pid in senders)
        report = _report(
            [m.message_id for m in mails],
            first,
            last,
            cpu_last - cpu_first,
            senders_last - senders_first,
        )
        pipe.send({**report, "sessions": sink.sessions})


class AiosmtpdSink:
    """Our aiosmtpd sink in a child process, on a fresh loopback port."""

    def __init__(self, count: int, timeout: float) -> None:
        self.port = free_port()
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_serve_aiosmtpd, args=(self.port, count, timeout, child), daemon=True
        )
        self._process.start()
        if not self._pipe.poll(30) or self._pipe.recv() != "ready":
            raise RuntimeError("the SMTP sink process did not start")

    def measure(self, senders: list[int]) -> None:
        """Start counting; the CPU time of `senders` is read at the first and the last email."""
        self._pipe.send(senders)

    def result(self, timeout: float) -> dict[str, Any]:
        if not self._pipe.poll(timeout):
            raise RuntimeError("the SMTP sink process did not report")
        report: dict[str, Any] = self._pipe.recv()
        self._process.join(10)
        return report

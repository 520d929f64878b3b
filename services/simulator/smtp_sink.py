"""`triggerline smtp-sink`: an aiosmtpd SMTP sink on loopback with run-time fault injection.

Every accepted message is kept in memory (for test assertions) and, given a maildir, written
as an `.eml` file; given a journal, one line per message records when it was accepted, its
Message-ID and recipients (benchmarks count and time emails from it). Faults are set per
recipient (or `*` for all) and per stage: a reply such as `451 4.3.0 Try again later` at MAIL,
RCPT or DATA, a slow reply, or `drop`: keep the message, then close the connection before
replying, the ambiguous window an idempotent sender must survive. A fault fires a number of
times, for a number of seconds, or until cleared; as a process, the sink takes faults over
HTTP (`--control-port`, services/simulator/sink_control.py).
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import ssl
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from services.simulator.sink_faults import Fault
from services.simulator.sink_handler import SinkAuthenticator, SinkHandler, SinkState
from services.simulator.sink_mail import ReceivedMail

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (aiosmtpd needs a concrete port to self-check)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class _CountingController(Controller):
    def __init__(self, handler: SinkHandler, state: SinkState, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._state = state

    def factory(self) -> SMTP:
        with self._state.lock:
            self._state.sessions += 1
        return super().factory()  # type: ignore[no-untyped-call,no-any-return]  # untyped


class SmtpSink:
    """An SMTP server on loopback for tests and local runs.

    Use as a context manager, or `start()` / `stop()`. `messages` lists what was accepted;
    `set_fault` and `clear_faults` change behaviour while it runs. `pipelining=False` stops
    it announcing PIPELINING, so senders take their one-command-at-a-time path.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        maildir: Path | None = None,
        pipelining: bool = True,
        tls_context: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
        journal: Path | None = None,
        keep: bool = True,
    ):
        """`tls_context` offers STARTTLS and requires it; `login` requires AUTH with that pair.
        `journal` appends a line per message; `keep=False` keeps no message in memory (a long
        run then only counts them)."""
        self.host = host
        self.port = port or free_port(host)
        self._state = SinkState()
        self._baseline = 0
        if maildir is not None:
            maildir.mkdir(parents=True, exist_ok=True)
        self._journal = journal.open("a", encoding="utf-8") if journal is not None else None
        self._controller = _CountingController(
            SinkHandler(self._state, maildir, pipelining, self._journal, keep),
            self._state,
            hostname=host,
            port=self.port,
            ready_timeout=10.0,
            data_size_limit=10 * 1024 * 1024,
            tls_context=tls_context,
            require_starttls=tls_context is not None,
            auth_required=login is not None,
            auth_require_tls=tls_context is not None,
            authenticator=SinkAuthenticator(*login) if login is not None else None,
        )

    def start(self) -> SmtpSink:
        self._controller.start()
        with self._state.lock:
            # aiosmtpd's own readiness probe is a session too; it is not a client's.
            self._baseline = self._state.sessions
        return self

    def stop(self) -> None:
        self._controller.stop()
        if self._journal is not None:
            self._journal.close()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def set_fault(self, recipient: str, fault: Fault) -> None:
        """Add a fault for one recipient address, or `*` for every recipient."""
        with self._state.lock:
            self._state.faults.setdefault(recipient.lower(), []).append(fault)

    def clear_faults(self, recipient: str | None = None) -> None:
        with self._state.lock:
            if recipient is None:
                self._state.faults.clear()
            else:
                self._state.faults.pop(recipient.lower(), None)

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._state.lock:
            return list(self._state.messages)

    def counts(self) -> dict[str, int]:
        """Messages accepted (dropped ones included), dropped, lost (neither kept nor answered,
        the `lose` fault) and SMTP sessions so far."""
        with self._state.lock:
            return {
                "accepted": self._state.accepted,
                "dropped": self._state.dropped,
                "lost": self._state.lost,
                "sessions": self._state.sessions - self._baseline,
            }

    @property
    def sessions(self) -> int:
        """SMTP connections accepted so far."""
        with self._state.lock:
            return self._state.sessions - self._baseline

    def clear(self) -> None:
        with self._state.lock:
            self._state.messages.clear()
            self._state.accepted = self._state.dropped = self._state.lost = 0

    def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedMail]:
        """Wait until at least `count` messages arrived or the timeout; returns what arrived."""
        end = time.monotonic() + timeout
        with self._state.changed:
            self._state.waits.append(count)
            try:
                while self._state.accepted < count:
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    self._state.changed.wait(left)
            finally:
                self._state.waits.remove(count)
            return list(self._state.messages)

    def count_by_message_id(self) -> Counter[str | None]:
        """How often each Message-ID arrived: any count above one is a duplicate email."""
        return Counter(mail.message_id for mail in self.messages)

    def for_recipient(self, address: str) -> list[ReceivedMail]:
        wanted = address.lower()
        return [m for m in self.messages if wanted in (r.lower() for r in m.rcpt_tos)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="triggerline smtp-sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument(
        "--maildir", default="var/mail", help="folder of .eml files; empty: write none"
    )
    parser.add_argument("--journal", type=Path, help="append one line per accepted message here")
    parser.add_argument(
        "--control-port", type=int, help="serve fault controls and counts on this loopback port"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s smtp-sink: %(message)s")
    # aiosmtpd logs every command at INFO; one line per mail is ours.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from services.simulator.sink_control import serve_control  # it builds on this module

    maildir = Path(args.maildir) if args.maildir else None
    # A process keeps no message in memory: it would grow with every email of a long run.
    with SmtpSink(args.host, args.port, maildir, journal=args.journal, keep=False) as sink:
        log.info("listening on %s:%d, writing to %s", args.host, args.port, maildir)
        control = serve_control(sink, args.control_port) if args.control_port else None
        stop.wait()
        if control is not None:
            control.shutdown()
    return 0

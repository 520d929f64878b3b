"""One open SMTP connection: a non-blocking socket, its buffers, and its conversation."""

from __future__ import annotations

import selectors
import socket
import ssl
from dataclasses import dataclass

from services.mailer.smtp.conversation import Conversation
from services.mailer.smtp.envelope import Envelope
from services.mailer.smtp.replies import ConnectionLost, Reply, ReplyParser

_READ_SIZE = 65536


@dataclass
class Job:
    """One message of a batch, as the pool hands it to connections."""

    index: int
    envelope: Envelope
    started: float = 0.0
    fresh_only: bool = False  # a pooled connection turned out closed: retry once on a new one


class Connection:
    """The socket side of a connection; `conversation` says what its bytes mean."""

    def __init__(self, sock: socket.socket, pipelining: bool) -> None:
        self.sock = sock
        self.conversation = Conversation(pipelining)
        self.closed = False
        self.outbox = bytearray()
        self.job: Job | None = None
        self.deadline = 0.0
        self.registered = 0  # the selector events it is registered for
        self._replies = ReplyParser()

    @property
    def free(self) -> bool:
        """Open, with no transaction and nothing left to send or hear."""
        return not (self.closed or self.job or self.conversation.expect or self.outbox)

    @property
    def held(self) -> bool:
        """Its transaction waits for the go-ahead to send the message (`Conversation.release`)."""
        expect = self.conversation.expect
        return self.job is not None and not self.closed and bool(expect) and expect[0] == "held"

    def write(self, data: bytes) -> None:
        self.outbox += data
        self.flush()

    def flush(self) -> None:
        """Send what the socket takes now; the rest waits for it to be writable."""
        while self.outbox:
            try:
                sent = self.sock.send(self.outbox)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return
            del self.outbox[:sent]

    def read(self) -> list[Reply]:
        """The complete replies that arrived; `ConnectionLost` if the server hung up or spoke
        nonsense."""
        while True:
            try:
                data = self.sock.recv(_READ_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            if not data:
                raise ConnectionLost("Connection unexpectedly closed")
            self._replies.add(data)
            pending = getattr(self.sock, "pending", None)  # TLS may hold decrypted bytes back
            if not (pending and pending()):
                break
        return self._replies.replies()

    def events(self) -> int:
        return selectors.EVENT_READ | (selectors.EVENT_WRITE if self.outbox else 0)

    def close(self, polite: bool = False, timeout: float = 5.0) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if polite:
                self.sock.settimeout(timeout)
                self.sock.sendall(b"QUIT\r\n")
                self.sock.recv(_READ_SIZE)
        except OSError:
            pass
        finally:
            self.sock.close()

"""One SMTP connection's conversation, as a state machine over parsed replies.

Each transaction goes command by command (MAIL, RCPT, DATA, message, final reply) so a failure
is known by its stage: a connection lost before the final dot sent nothing and may be retried,
a connection lost while waiting for the final reply is `DeliveryUnknown`. A server that
announces PIPELINING (RFC 2920) gets MAIL, RCPT and DATA in one write and answers them in
order, which halves the round trips of every message; the replies are still judged one stage
at a time. After a refusal the connection is reset (RSET) for the next message.

A transaction begun with `hold=True` stops at the server's 354 (`Turn.held`) and sends its
message only on `release()`: the pool's caller first records that the message is being handed
over, so a crash between the server's acceptance and the `sent` row leaves a row that says the
message may have arrived, never one that lets another instance send it again.

Nothing here touches a socket (the style of h11): `begin`, `on_reply` and `on_lost` move the
state and return a `Turn` saying what to write, whether the transaction ended and how, and
whether to close the connection. The state is mutated in place rather than copied: the pool
runs it for every reply of every message, and copies cost more than the rest of the work.
"""

from __future__ import annotations

from collections import deque
from typing import Literal, NamedTuple

from services.mailer.errors import DeliveryUnknown, SmtpDeferred, SmtpRejected, Stage
from services.mailer.smtp.envelope import Envelope
from services.mailer.smtp.replies import ConnectionLost, SendError, connection_lost, reply_error

# What a connection waits for: the reply to one command, or to the message (after the dot);
# "held": the caller's go-ahead to send the message after the server's 354.
Expect = Literal["mail", "rcpt", "data", "held", "message", "rset"]

_ACCEPTED: dict[Expect, tuple[int, ...]] = {"mail": (250,), "rcpt": (250, 251), "data": (354,)}
# The stage a failure is reported at: a lost RSET fails the next message before its MAIL.
_STAGE: dict[Expect, Stage] = {
    "mail": "mail",
    "rcpt": "rcpt",
    "data": "data",
    "held": "data",
    "message": "data",
    "rset": "mail",
}
_RSET = b"RSET\r\n"


class Ending(NamedTuple):
    """How a transaction ended: the server's final reply text, or the error."""

    reply: str | None = None
    error: SendError | None = None


class Turn(NamedTuple):
    """What one event asks of the connection."""

    send: bytes = b""
    ended: Ending | None = None
    close: bool = False
    again: bool = False  # start the transaction over on a fresh connection: nothing was sent
    held: bool = False  # the server awaits the message: send it after `release()`


NOTHING = Turn()  # a reply that only moves the state (most of a pipelined group's)


class Conversation:
    """Where one connection stands: the replies it awaits and the transaction it carries."""

    def __init__(self, pipelining: bool, reused: bool = False) -> None:
        self.pipelining = pipelining
        self.expect: deque[Expect] = deque()
        self.envelope: Envelope | None = None  # the transaction in flight
        self.refusal: SmtpDeferred | SmtpRejected | None = None  # first of a pipelined group
        self.reused = reused  # it has carried a transaction before this one
        self.retried = False  # this transaction already left a pooled connection found closed
        self.hold = False  # stop at 354 until `release()`

    def begin(self, envelope: Envelope, retried: bool = False, hold: bool = False) -> Turn:
        """Start a transaction on an idle connection."""
        self.envelope, self.refusal, self.retried, self.hold = envelope, None, retried, hold
        if self.pipelining:
            self.expect.extend(("mail", "rcpt", "data"))
            text = f"MAIL FROM:{envelope.sender}\r\nRCPT TO:{envelope.recipient}\r\nDATA\r\n"
        else:
            self.expect.append("mail")
            text = f"MAIL FROM:{envelope.sender}\r\n"
        return Turn(text.encode("ascii"))

    def on_reply(self, code: int, text: bytes) -> Turn:
        """The next reply; `ConnectionLost` for one the conversation cannot go on after."""
        if not self.expect or self.expect[0] == "held":
            raise ConnectionLost(f"unexpected reply {code}")
        stage = self.expect.popleft()
        if stage == "rset":
            if code != 250:
                raise ConnectionLost(f"RSET refused with {code}")
            return NOTHING
        envelope = self.envelope
        assert envelope is not None, "a transaction's reply with no transaction"
        if stage == "message":
            if code == 250:
                self._done()
                return Turn(ended=Ending(text.decode("utf-8", "replace").strip()[:300]))
            return self._refused(reply_error(code, text, "data"))
        if code not in _ACCEPTED[stage] and self.refusal is None:
            self.refusal = reply_error(code, text, _STAGE[stage])
        if self.expect:
            return NOTHING  # the rest of a pipelined group is still to come
        refusal = self.refusal
        if refusal is not None:
            if code == 354:  # a server that accepts DATA anyway: what follows would be text
                self._done()
                return Turn(ended=Ending(error=refusal), close=True)
            return self._refused(refusal)
        if stage == "mail":
            self.expect.append("rcpt")
            return Turn(f"RCPT TO:{envelope.recipient}\r\n".encode("ascii"))
        if stage == "rcpt":
            self.expect.append("data")
            return Turn(b"DATA\r\n")
        if self.hold:
            self.expect.append("held")
            return Turn(held=True)
        self.expect.append("message")
        return Turn(envelope.payload)

    def release(self) -> Turn:
        """The go-ahead for a held transaction: its message, final dot included."""
        assert self.envelope is not None and list(self.expect) == ["held"], "nothing is held"
        self.expect[0] = "message"
        return Turn(self.envelope.payload)

    def on_lost(self, why: str, unsent: bool) -> Turn:
        """The connection is gone; its transaction ends by the stage it had reached.

        `unsent`: bytes were still waiting to be written. A pooled connection the server has
        since closed fails at MAIL; that one case starts over on a fresh connection, since
        nothing was sent. A refusal already read says more than the lost connection.
        """
        stage = self.expect[0] if self.expect else "mail"
        envelope, refusal = self.envelope, self.refusal
        self.expect.clear()
        self.envelope = None
        if envelope is None:
            return Turn(close=True)  # it was between messages (a RSET): nothing is lost
        error: SendError
        if stage == "message":
            if unsent:  # the final dot never left: the server holds no message
                error = connection_lost(why, "data")
            else:
                error = DeliveryUnknown(f"connection lost awaiting the reply to the message: {why}")
        elif refusal is not None:
            error = refusal
        elif stage == "mail" and self.reused and not self.retried:
            return Turn(close=True, again=True)
        else:
            error = connection_lost(why, _STAGE[stage])
        return Turn(ended=Ending(error=error), close=True)

    def _done(self) -> None:
        """The transaction is over; the connection may carry the next."""
        self.envelope, self.refusal, self.reused = None, None, True

    def _refused(self, error: SmtpDeferred | SmtpRejected) -> Turn:
        """The server said no: that message ends, and the connection is reset for the next."""
        self._done()
        if error.code == 421:  # the server is closing this connection
            return Turn(ended=Ending(error=error), close=True)
        self.expect.append("rset")
        return Turn(_RSET, Ending(error=error))

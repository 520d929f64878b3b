"""The SMTP conversation as a state machine over parsed replies: one row per dialogue."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from services.mailer.errors import DeliveryUnknown, SmtpDeferred, SmtpRejected
from services.mailer.smtp.conversation import Conversation, Expect, Turn
from services.mailer.smtp.envelope import Envelope
from services.mailer.smtp.replies import ConnectionLost, ReplyParser

ENVELOPE = Envelope("<shop@example.com>", "<ann@example.com>", b"Subject: hi\r\n\r\nhi\r\n.\r\n")


def said(turn: Turn) -> list[str]:
    """What one turn does, in words a row can hold."""
    out: list[str] = []
    if turn.send == ENVELOPE.payload:
        out.append("send the message")
    elif turn.send:
        out.append("send " + turn.send.decode().replace("\r\n", " ").strip())
    if turn.ended is not None:
        error = turn.ended.error
        if error is None:
            out.append(f"sent: {turn.ended.reply}")
        elif isinstance(error, DeliveryUnknown):
            out.append("DeliveryUnknown")
        else:
            out.append(f"{type(error).__name__} {error.code} at {error.stage}")
    if turn.again:
        out.append("again on a fresh connection")
    if turn.close:
        out.append("close")
    return out


def dialogue(pipelining: bool, replies: list[tuple[int, str]], reused: bool = False) -> list[str]:
    """Begin a transaction, feed the replies in order; what each step did, flattened."""
    conversation = Conversation(pipelining, reused=reused)
    done = said(conversation.begin(ENVELOPE))
    for code, text in replies:
        done += said(conversation.on_reply(code, text.encode()))
    return done


@dataclass(frozen=True)
class Row:
    pipelining: bool
    replies: list[tuple[int, str]]
    expected: list[str]


OK = (250, "2.1.0 Ok")
GO = (354, "End data with <CR><LF>.<CR><LF>")
QUEUED = (250, "2.0.0 Ok: queued as ABC")
ROWS = {
    "one command at a time": Row(
        False,
        [OK, OK, GO, QUEUED],
        [
            "send MAIL FROM:<shop@example.com>",
            "send RCPT TO:<ann@example.com>",
            "send DATA",
            "send the message",
            "sent: 2.0.0 Ok: queued as ABC",
        ],
    ),
    "pipelined": Row(
        True,
        [OK, OK, GO, QUEUED],
        [
            "send MAIL FROM:<shop@example.com> RCPT TO:<ann@example.com> DATA",
            "send the message",
            "sent: 2.0.0 Ok: queued as ABC",
        ],
    ),
    "a 451 at RCPT": Row(
        False,
        [OK, (451, "4.3.0 later"), OK],
        [
            "send MAIL FROM:<shop@example.com>",
            "send RCPT TO:<ann@example.com>",
            "send RSET",
            "SmtpDeferred 451 at rcpt",
        ],
    ),
    "a 550 at RCPT, pipelined: the first refusal counts": Row(
        True,
        [OK, (550, "5.1.1 no such user"), (554, "5.5.1 no valid recipients"), OK],
        [
            "send MAIL FROM:<shop@example.com> RCPT TO:<ann@example.com> DATA",
            "send RSET",
            "SmtpRejected 550 at rcpt",
        ],
    ),
    "DATA accepted after a refusal: the connection is closed": Row(
        True,
        [OK, (550, "5.1.1 no such user"), GO],
        [
            "send MAIL FROM:<shop@example.com> RCPT TO:<ann@example.com> DATA",
            "SmtpRejected 550 at rcpt",
            "close",
        ],
    ),
    "a 421 closes the connection": Row(
        False,
        [(421, "4.3.2 shutting down")],
        ["send MAIL FROM:<shop@example.com>", "SmtpDeferred 421 at mail", "close"],
    ),
    "a 552 for the message": Row(
        False,
        [OK, OK, GO, (552, "5.3.4 too big")],
        [
            "send MAIL FROM:<shop@example.com>",
            "send RCPT TO:<ann@example.com>",
            "send DATA",
            "send the message",
            "send RSET",
            "SmtpRejected 552 at data",
        ],
    ),
    "a 4.7.x at MAIL is the server's, not the address's": Row(
        False,
        [(450, "4.7.1 rate limited"), OK],
        ["send MAIL FROM:<shop@example.com>", "send RSET", "SmtpDeferred 450 at mail"],
    ),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_conversation(row: Row) -> None:
    assert dialogue(row.pipelining, row.replies) == row.expected


def test_a_refusal_ends_the_message_before_the_reset_is_answered() -> None:
    conversation = Conversation(False)
    conversation.begin(ENVELOPE)
    turn = conversation.on_reply(550, b"5.1.1 no such user")
    assert turn.ended is not None and isinstance(turn.ended.error, SmtpRejected)
    assert turn.send == b"RSET\r\n" and list(conversation.expect) == ["rset"]
    assert conversation.envelope is None and conversation.reused
    assert conversation.on_reply(250, b"Ok") == Turn() and not conversation.expect


def test_a_connection_level_deferral_is_marked_so() -> None:
    conversation = Conversation(False)
    conversation.begin(ENVELOPE)
    turn = conversation.on_reply(421, b"4.3.2 bye")
    assert turn.ended is not None and isinstance(turn.ended.error, SmtpDeferred)
    assert turn.ended.error.connection_level


@pytest.mark.parametrize(
    ("expect", "text"),
    [((), "unexpected reply 250"), (("rset",), "RSET refused with 500")],
    ids=["a reply nobody asked for", "a refused RSET"],
)
def test_replies_the_conversation_cannot_go_on_after(expect: tuple[Expect, ...], text: str) -> None:
    conversation = Conversation(False)
    conversation.expect.extend(expect)
    with pytest.raises(ConnectionLost, match=text):
        conversation.on_reply(250 if not expect else 500, b"")


def lost_at(
    replies: list[tuple[int, str]],
    *,
    pipelining: bool = False,
    reused: bool = False,
    retried: bool = False,
    unsent: bool = False,
) -> list[str]:
    """Begin, feed the replies, then lose the connection: what that turn did."""
    conversation = Conversation(pipelining, reused=reused)
    conversation.begin(ENVELOPE, retried=retried)
    for code, text in replies:
        conversation.on_reply(code, text.encode())
    return said(conversation.on_lost("Connection reset", unsent=unsent))


LOST = {
    "awaiting the final reply: may have been delivered": (
        lost_at([OK, OK, GO]),
        ["DeliveryUnknown", "close"],
    ),
    "before the final dot left": (
        lost_at([OK, OK, GO], unsent=True),
        ["SmtpDeferred None at data", "close"],
    ),
    "at MAIL on a fresh connection": (lost_at([]), ["SmtpDeferred None at mail", "close"]),
    "at MAIL on a pooled connection: once more, on a new one": (
        lost_at([], reused=True),
        ["again on a fresh connection", "close"],
    ),
    "at MAIL on the second try": (
        lost_at([], reused=True, retried=True),
        ["SmtpDeferred None at mail", "close"],
    ),
    "at RCPT": (lost_at([OK]), ["SmtpDeferred None at rcpt", "close"]),
    "after a pipelined refusal: the refusal says more": (
        lost_at([OK, (550, "5.1.1 no such user")], pipelining=True),
        ["SmtpRejected 550 at rcpt", "close"],
    ),
}


@pytest.mark.parametrize(("done", "expected"), LOST.values(), ids=LOST.keys())
def test_a_lost_connection(done: list[str], expected: list[str]) -> None:
    assert done == expected


def test_losing_an_idle_or_resetting_connection_loses_no_message() -> None:
    assert said(Conversation(False).on_lost("closed", unsent=False)) == ["close"]
    resetting = Conversation(False)
    resetting.begin(ENVELOPE)
    resetting.on_reply(550, b"5.1.1 no such user")  # the RSET is on its way
    assert said(resetting.on_lost("closed", unsent=False)) == ["close"]


PARSED = {
    "one line": ([b"250 Ok\r\n"], [(250, b"Ok")]),
    "several lines make one reply": (
        [b"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"],
        [(250, b"mx.example\nPIPELINING\nSIZE 1000")],
    ),
    "split across reads": ([b"25", b"0 O", b"k\r\n354 go\r\n"], [(250, b"Ok"), (354, b"go")]),
    "bare LF line ends": ([b"221 bye\n"], [(221, b"bye")]),
    "nothing complete yet": ([b"250-first\r\n250 sec"], []),
}


@pytest.mark.parametrize(("chunks", "expected"), PARSED.values(), ids=PARSED.keys())
def test_reply_parsing(chunks: list[bytes], expected: list[tuple[int, bytes]]) -> None:
    parser, replies = ReplyParser(), []
    for chunk in chunks:
        parser.add(chunk)
        replies += parser.replies()
    assert replies == expected


@pytest.mark.parametrize(
    ("data", "why"),
    [(b"hello there\r\n", "not an SMTP reply"), (b"2" * 9000, "reply line too long")],
    ids=["not SMTP", "no end in sight"],
)
def test_what_is_no_reply(data: bytes, why: str) -> None:
    parser = ReplyParser()
    parser.add(data)
    with pytest.raises(ConnectionLost, match=why):
        parser.replies()


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-at-a-time"])
def test_a_held_transaction_stops_at_354_and_sends_the_message_on_release(
    pipelining: bool,
) -> None:
    conversation = Conversation(pipelining)
    done = said(conversation.begin(ENVELOPE, hold=True))
    replies = [OK, OK, GO]
    turns = [conversation.on_reply(code, text.encode()) for code, text in replies]
    done += [word for turn in turns for word in said(turn)]
    assert turns[-1].held and "send the message" not in done
    assert said(conversation.release()) == ["send the message"]
    queued = conversation.on_reply(QUEUED[0], QUEUED[1].encode())
    assert said(queued) == ["sent: 2.0.0 Ok: queued as ABC"]


def test_a_held_transaction_lost_or_interrupted_sent_nothing() -> None:
    held = Conversation(True)
    held.begin(ENVELOPE, hold=True)
    for code, text in (OK, OK, GO):
        held.on_reply(code, text.encode())
    with pytest.raises(ConnectionLost):  # a server speaking out of turn: no message follows
        held.on_reply(421, b"4.4.2 timeout")
    assert said(held.on_lost("closed", unsent=False)) == ["SmtpDeferred None at data", "close"]


def test_release_without_a_held_transaction_is_a_bug() -> None:
    conversation = Conversation(True)
    conversation.begin(ENVELOPE)
    with pytest.raises(AssertionError):
        conversation.release()

"""SmtpPool against the in-process sink: pooling, and every fault mapped to its error kind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from services.mailer.errors import DeliveryUnknown, SmtpDeferred, SmtpRejected
from services.mailer.message import build_message
from services.mailer.smtp import Envelope, SmtpOptions, SmtpPool
from services.mailer.templates import Rendered
from services.simulator.sink_faults import Fault
from services.simulator.smtp_sink import SmtpSink, free_port
from tests.unit.mailer.helpers import NOW, request

SENDER = "shop@triggerline.invalid"


@pytest.fixture(params=[True, False], ids=["pipelining", "one-command-at-a-time"])
def sink(request: pytest.FixtureRequest) -> Iterator[SmtpSink]:
    with SmtpSink(pipelining=request.param) as running:
        yield running


def make_pool(port: int, timeout: float = 2.0, size: int = 2) -> SmtpPool:
    return SmtpPool(SmtpOptions("127.0.0.1", port, timedelta(seconds=timeout), size))


def send(pool: SmtpPool, to: str = "ann@example.com", key: str = "k") -> str:
    message = build_message(
        request(email=to, idempotency_key=key),
        Rendered("Hi", "<p>.leading dot\n.</p>", ".\nline starting with a dot"),
        sender=f"Shop <{SENDER}>",
        now=NOW,
    )
    return pool.send(message, SENDER, to)


def test_connections_are_reused(sink: SmtpSink) -> None:
    pool = make_pool(sink.port)
    try:
        replies = [send(pool, key=f"k{n}") for n in range(10)]
    finally:
        pool.close()
    assert all(reply.startswith("OK queued as") for reply in replies)
    assert len(sink.messages) == 10
    assert sink.sessions == 1 and pool.connections_opened == 1
    # dot-stuffing round-trips: a line holding a lone dot does not end the message early
    body = sink.messages[0].parsed().get_body(("plain",))
    assert body is not None
    assert body.get_content().splitlines() == [".", "line starting with a dot"]


def test_a_451_at_rcpt_defers_the_recipient_and_keeps_the_connection(sink: SmtpSink) -> None:
    sink.set_fault("ann@example.com", Fault("rcpt", "451 4.3.0 Try again later", times=1))
    pool = make_pool(sink.port)
    try:
        with pytest.raises(SmtpDeferred) as caught:
            send(pool)
        send(pool)
    finally:
        pool.close()
    assert caught.value.code == 451 and caught.value.stage == "rcpt"
    assert not caught.value.connection_level
    assert len(sink.messages) == 1 and sink.sessions == 1


def test_a_421_backs_off_the_server_not_the_recipient(sink: SmtpSink) -> None:
    sink.set_fault("*", Fault("mail", "421 4.3.2 Service shutting down", times=1))
    pool = make_pool(sink.port)
    try:
        with pytest.raises(SmtpDeferred) as caught:
            send(pool)
        send(pool)
    finally:
        pool.close()
    assert caught.value.code == 421 and caught.value.connection_level
    assert len(sink.messages) == 1


@pytest.mark.parametrize(
    ("fault", "code", "enhanced", "stage"),
    [
        (Fault("rcpt", "550 5.1.1 No such user"), 550, "5.1.1", "rcpt"),
        (Fault("data", "554 5.7.1 Rejected as spam"), 554, "5.7.1", "data"),
    ],
)
def test_5xx_is_a_permanent_rejection(
    sink: SmtpSink, fault: Fault, code: int, enhanced: str, stage: str
) -> None:
    sink.set_fault("ann@example.com", fault)
    pool = make_pool(sink.port)
    try:
        with pytest.raises(SmtpRejected) as caught:
            send(pool)
    finally:
        pool.close()
    assert (caught.value.code, caught.value.enhanced, caught.value.stage) == (code, enhanced, stage)
    assert sink.messages == []


def test_a_drop_after_data_is_unknown_not_deferred(sink: SmtpSink) -> None:
    sink.set_fault("ann@example.com", Fault("drop", times=1))
    pool = make_pool(sink.port)
    try:
        with pytest.raises(DeliveryUnknown):
            send(pool)
        send(pool, key="next")  # the pool recovers with a new connection
    finally:
        pool.close()
    assert [m.dropped for m in sink.messages] == [True, False]


def test_a_slow_final_reply_is_unknown_and_a_slow_rcpt_is_deferred(sink: SmtpSink) -> None:
    pool = make_pool(sink.port, timeout=0.3)
    try:
        sink.set_fault("slow-rcpt@example.com", Fault("rcpt", delay=1.0, times=1))
        with pytest.raises(SmtpDeferred) as rcpt:
            send(pool, to="slow-rcpt@example.com")
        sink.set_fault("slow-data@example.com", Fault("data", delay=1.0, times=1))
        with pytest.raises(DeliveryUnknown):
            send(pool, to="slow-data@example.com")
    finally:
        pool.close()
    assert rcpt.value.stage == "rcpt" and rcpt.value.connection_level


def test_no_server_is_a_connection_level_deferral() -> None:
    pool = make_pool(free_port())
    with pytest.raises(SmtpDeferred) as caught:
        send(pool)
    pool.close()
    assert caught.value.stage == "connect" and caught.value.connection_level


def test_a_pooled_connection_the_server_closed_is_replaced_once() -> None:
    first = SmtpSink().start()
    pool = make_pool(first.port)
    try:
        send(pool)
        first.stop()  # the pooled connection is now dead
        with SmtpSink(port=first.port) as restarted:
            send(pool, key="after-restart")
            assert len(restarted.messages) == 1
    finally:
        pool.close()
    assert pool.connections_opened == 2


def envelope(to: str, key: str) -> Envelope:
    message = build_message(
        request(email=to, idempotency_key=key),
        Rendered("Hi", "<p>hi</p>", "hi"),
        sender=SENDER,
        now=NOW,
    )
    return Envelope.of(message, SENDER, to)


def test_a_batch_in_flight_at_once_ends_each_message_by_its_own_fault(sink: SmtpSink) -> None:
    """Faults on some connections end only their own messages; the rest go out on the others."""
    sink.set_fault("soft@example.com", Fault("rcpt", "451 4.3.0 Try again later", times=1))
    sink.set_fault("gone@example.com", Fault("rcpt", "550 5.1.1 No such user"))
    sink.set_fault("cut@example.com", Fault("drop", times=1))
    sink.set_fault("slow@example.com", Fault("data", delay=0.5, times=1))
    special = ["soft@example.com", "gone@example.com", "cut@example.com", "slow@example.com"]
    recipients = [f"ok{n}@example.com" for n in range(12)]
    for position, address in enumerate(special):
        recipients.insert(3 * position + 1, address)
    pool = make_pool(sink.port, size=3)
    try:
        envelopes = [envelope(to, f"k{n}") for n, to in enumerate(recipients)]
        ended = list(pool.send_many(envelopes, idle=0.05))
    finally:
        pool.close()
    handed = {h.index: h for h in ended if h is not None}
    assert sorted(handed) == list(range(len(recipients)))
    errors = {recipients[i]: type(h.error).__name__ for i, h in handed.items() if h.error}
    assert errors == {
        "soft@example.com": "SmtpDeferred",
        "gone@example.com": "SmtpRejected",
        "cut@example.com": "DeliveryUnknown",
    }
    assert handed[recipients.index("slow@example.com")].seconds >= 0.5
    assert None in ended  # the slow reply left the caller idle moments to save its rows
    received = sorted(r for m in sink.messages if not m.dropped for r in m.rcpt_tos)
    assert received == sorted(set(recipients) - set(errors))
    assert pool.connections_opened <= 4  # three, and one to replace the dropped connection


def test_messages_wait_at_354_for_before_data_and_only_those_it_allows_go_out(
    sink: SmtpSink,
) -> None:
    """`before_data` sees every message before its data leaves; one it refuses ends as never
    sent (a connection-level deferral) and the server keeps nothing of it."""
    recipients = [f"r{n}@example.com" for n in range(6)]
    asked: list[list[int]] = []
    received_when_asked: list[int] = []

    def before_data(indexes: list[int]) -> set[int]:
        asked.append(sorted(indexes))
        received_when_asked.append(len(sink.messages))
        return {index for index in indexes if index != 2}

    pool = make_pool(sink.port, size=3)
    try:
        envelopes = [envelope(to, f"k{n}") for n, to in enumerate(recipients)]
        ended = [h for h in pool.send_many(envelopes, before_data=before_data) if h is not None]
    finally:
        pool.close()
    assert sorted(index for group in asked for index in group) == list(range(6))
    assert received_when_asked[0] == 0  # the first group was asked before any message left
    refused = {h.index: h.error for h in ended if h.error is not None}
    assert list(refused) == [2]
    error = refused[2]
    assert isinstance(error, SmtpDeferred) and error.connection_level and error.stage == "data"
    received = sorted(r for m in sink.messages for r in m.rcpt_tos)
    assert received == sorted(set(recipients) - {recipients[2]})

"""STARTTLS and AUTH against the in-process sink: the pool drives TLS sockets like plain ones."""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.mailer.errors import SmtpDeferred
from services.mailer.smtp import SmtpOptions, SmtpPool
from services.simulator.smtp_sink import SmtpSink
from tests.integration.mailer.test_smtp_pool import SENDER, envelope
from tests.support.certificates import self_signed

LOGIN = "relay-user"


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A throw-away self-signed certificate for 127.0.0.1, made for this test only."""
    files = self_signed(tmp_path / "relay")
    return files.cert, files.key


@pytest.fixture
def password() -> str:
    return secrets.token_urlsafe(16)


@pytest.fixture
def tls_sink(certificate: tuple[Path, Path], password: str) -> Iterator[SmtpSink]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    with SmtpSink(tls_context=context, login=(LOGIN, password)) as running:
        yield running


def tls_pool(sink: SmtpSink, ca_file: Path, password: str) -> SmtpPool:
    return SmtpPool(
        SmtpOptions(
            "127.0.0.1",
            sink.port,
            timedelta(seconds=5),
            size=3,
            starttls=True,
            ca_file=str(ca_file),
            username=LOGIN,
            password=SecretStr(password),
        )
    )


def test_a_batch_goes_out_over_starttls_with_auth(
    tls_sink: SmtpSink, certificate: tuple[Path, Path], password: str
) -> None:
    pool = tls_pool(tls_sink, certificate[0], password)
    recipients = [f"tls{n}@example.com" for n in range(40)]
    try:
        ended = [
            h
            for h in pool.send_many([envelope(to, f"t{n}") for n, to in enumerate(recipients)])
            if h is not None
        ]
        again = pool.send_many([envelope("later@example.com", "t-later")])
        later = [h for h in again if h is not None]
    finally:
        pool.close()
    assert [h.error for h in ended + later if h.error] == []
    assert sorted(r for m in tls_sink.messages for r in m.rcpt_tos) == sorted(
        [*recipients, "later@example.com"]
    )
    assert pool.connections_opened == 3  # pooled TLS connections are reused across batches
    assert all(m.mail_from == SENDER for m in tls_sink.messages)


def test_a_wrong_password_is_a_connection_level_deferral_that_never_shows_it(
    tls_sink: SmtpSink, certificate: tuple[Path, Path]
) -> None:
    wrong = secrets.token_urlsafe(16)
    pool = tls_pool(tls_sink, certificate[0], wrong)
    try:
        ended = [h for h in pool.send_many([envelope("ann@example.com", "k")]) if h is not None]
    finally:
        pool.close()
    (handed,) = ended
    assert isinstance(handed.error, SmtpDeferred)
    assert handed.error.stage == "connect" and handed.error.connection_level
    assert "AUTH" in str(handed.error) and wrong not in str(handed.error)
    assert tls_sink.messages == []


def test_an_untrusted_certificate_is_refused(tls_sink: SmtpSink, password: str) -> None:
    pool = SmtpPool(
        SmtpOptions(
            "127.0.0.1",
            tls_sink.port,
            timedelta(seconds=5),
            size=1,
            starttls=True,
            username=LOGIN,
            password=SecretStr(password),
        )
    )
    try:
        ended = [h for h in pool.send_many([envelope("ann@example.com", "k")]) if h is not None]
    finally:
        pool.close()
    assert isinstance(ended[0].error, SmtpDeferred) and ended[0].error.stage == "connect"
    assert tls_sink.messages == []

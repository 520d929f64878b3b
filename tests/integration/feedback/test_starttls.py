"""STARTTLS on the feedback service's SMTP listener: offered with the configured certificate,
never required, and start-up refused when the certificate settings cannot work."""

from __future__ import annotations

import os
import smtplib
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from services.common.settings import REPO_ROOT
from services.feedback.starttls import CERT_SETTING, KEY_SETTING
from tests.conftest import free_port
from tests.support.certificates import CertificateFiles, self_signed
from tests.support.feedback_reports import dsn
from tests.support.feedback_service import BOUNCE_DOMAIN, PUBLIC_URL, FeedbackUnderTest

EX_CONFIG = 78


@pytest.fixture(scope="module")
def mx_certificate(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    return self_signed(tmp_path_factory.mktemp("mx-tls"))


@pytest.fixture(scope="module")
def feedback_environment(mx_certificate: CertificateFiles) -> dict[str, str]:
    """The service of this module offers STARTTLS (tests/support/feedback_service.py)."""
    return {CERT_SETTING: str(mx_certificate.cert), KEY_SETTING: str(mx_certificate.key)}


def _trusting(certificate: CertificateFiles) -> ssl.SSLContext:
    """A client that trusts the throwaway certificate alone and checks the name (127.0.0.1)."""
    return ssl.create_default_context(cafile=str(certificate.cert))


def test_starttls_is_offered_and_a_dsn_over_it_suppresses_the_address(
    feedback: FeedbackUnderTest, mx_certificate: CertificateFiles, address: Callable[[str], str]
) -> None:
    email = address("gone-tls")
    sent = feedback.sent(email)

    with smtplib.SMTP("127.0.0.1", feedback.smtp_port, timeout=20) as client:
        client.ehlo("mx.example.net")
        assert client.has_extn("starttls"), client.esmtp_features
        code, _ = client.starttls(context=_trusting(mx_certificate))
        assert code == 220
        assert isinstance(client.sock, ssl.SSLSocket)
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
        client.ehlo("mx.example.net")  # RFC 3207: the session starts afresh inside TLS
        assert not client.has_extn("starttls")
        client.sendmail(
            "",
            [sent.return_path],
            dsn(to=sent.return_path, status="5.1.1", final_recipient=email),
        )

    feedback.assert_hard_bounced(email, sent)


def test_the_listener_presents_the_configured_certificate(feedback: FeedbackUnderTest) -> None:
    """A client that trusts only the public CAs refuses the throwaway certificate: the
    successful handshake above was verified against the configured file, not skipped."""
    with smtplib.SMTP("127.0.0.1", feedback.smtp_port, timeout=20) as client:
        client.ehlo("mx.example.net")
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(context=ssl.create_default_context())


def test_plaintext_delivery_is_still_accepted(
    feedback: FeedbackUnderTest, address: Callable[[str], str]
) -> None:
    """Opportunistic: an MTA that does not encrypt still delivers its report (RFC 3207)."""
    email = address("gone-plain")
    sent = feedback.sent(email)
    with smtplib.SMTP("127.0.0.1", feedback.smtp_port, timeout=20) as client:
        client.ehlo("mx.example.net")
        client.sendmail(
            "", [sent.return_path], dsn(to=sent.return_path, status="5.1.1", final_recipient=email)
        )
    row = feedback.suppression(email)
    assert row is not None and row["reason"] == "hard_bounce"


def _start(tmp_path: Path, tls: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`triggerline feedback` with production-like settings and `tls`; it must stop at once,
    before it reaches a database or a broker (neither is reachable here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGERLINE_")}
    env |= {
        "TRIGGERLINE_TOKENS_KEY": "a-real-key-longer-than-the-32-characters-required",
        "TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL": PUBLIC_URL,
        "TRIGGERLINE_TOKENS_BOUNCE_DOMAIN": BOUNCE_DOMAIN,
        "TRIGGERLINE_FEEDBACK_HEALTH_PORT": str(free_port()),
        "TRIGGERLINE_FEEDBACK_PORT": str(free_port()),
        "TRIGGERLINE_FEEDBACK_SMTP_PORT": str(free_port()),
        "TRIGGERLINE_DB_URL": f"sqlite:///{tmp_path / 'unused.db'}",
        "TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        **tls,
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "feedback"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_start_up_refuses_a_certificate_without_its_key(tmp_path: Path) -> None:
    pair = self_signed(tmp_path / "mx")
    done = _start(tmp_path, {CERT_SETTING: str(pair.cert)})
    assert done.returncode == EX_CONFIG, done.stderr
    assert f"{CERT_SETTING} is set but {KEY_SETTING} is not" in done.stderr


def test_start_up_refuses_a_missing_key_file_naming_its_setting(tmp_path: Path) -> None:
    pair = self_signed(tmp_path / "mx")
    absent = tmp_path / "absent.key"
    done = _start(tmp_path, {CERT_SETTING: str(pair.cert), KEY_SETTING: str(absent)})
    assert done.returncode == EX_CONFIG, done.stderr
    assert f"{KEY_SETTING}: cannot read {absent}" in done.stderr


def test_start_up_refuses_a_foreign_key_without_printing_it(tmp_path: Path) -> None:
    ours, other = self_signed(tmp_path / "ours"), self_signed(tmp_path / "other")
    done = _start(tmp_path, {CERT_SETTING: str(ours.cert), KEY_SETTING: str(other.key)})
    assert done.returncode == EX_CONFIG, done.stderr
    assert KEY_SETTING in done.stderr and "does not belong" in done.stderr
    key_lines = other.key.read_text().splitlines()[1:-1]  # the base64 body
    output = done.stdout + done.stderr
    assert not any(line in output for line in key_lines)

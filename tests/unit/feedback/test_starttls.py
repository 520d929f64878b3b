"""The SMTP listener's STARTTLS settings: both files or neither, and start-up errors that name
the setting and never show the key."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest

from services.common.errors import ConfigurationError
from services.common.settings import load
from services.feedback.settings import FeedbackSettings
from services.feedback.starttls import CERT_SETTING, KEY_SETTING, starttls_context
from tests.support.certificates import CertificateFiles, self_signed


@pytest.fixture(autouse=True)
def _no_tls_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (CERT_SETTING, KEY_SETTING, "TRIGGERLINE_FEEDBACK_SMTP_TLS_FILES_OPTIONAL"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def pair(tmp_path: Path) -> CertificateFiles:
    return self_signed(tmp_path / "mx")


def test_neither_file_set_means_plaintext_only() -> None:
    settings = load(FeedbackSettings)
    assert settings.smtp_tls_cert is None and settings.smtp_tls_key is None
    assert starttls_context(settings.smtp_tls_cert, settings.smtp_tls_key) is None


def test_empty_variables_are_unset_not_the_working_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CERT_SETTING, "")
    monkeypatch.setenv(KEY_SETTING, "")
    settings = load(FeedbackSettings)
    assert settings.smtp_tls_cert is None and settings.smtp_tls_key is None


def test_both_files_set_give_a_tls_1_2_server_context(
    monkeypatch: pytest.MonkeyPatch, pair: CertificateFiles
) -> None:
    monkeypatch.setenv(CERT_SETTING, str(pair.cert))
    monkeypatch.setenv(KEY_SETTING, str(pair.key))
    settings = load(FeedbackSettings)
    assert (settings.smtp_tls_cert, settings.smtp_tls_key) == (pair.cert, pair.key)
    context = starttls_context(settings.smtp_tls_cert, settings.smtp_tls_key)
    assert context is not None
    assert context.protocol is ssl.PROTOCOL_TLS_SERVER
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_NONE  # MTAs present no client certificate


@pytest.mark.parametrize(
    ("given", "missing"), [(CERT_SETTING, KEY_SETTING), (KEY_SETTING, CERT_SETTING)]
)
def test_one_file_without_the_other_stops_start_up_naming_both(
    monkeypatch: pytest.MonkeyPatch, pair: CertificateFiles, given: str, missing: str
) -> None:
    monkeypatch.setenv(given, str(pair.cert if given == CERT_SETTING else pair.key))
    with pytest.raises(ConfigurationError) as refused:
        load(FeedbackSettings)
    message = str(refused.value)
    assert f"{given} is set but {missing} is not" in message
    assert "set both, or neither" in message


@pytest.mark.parametrize("setting", [CERT_SETTING, KEY_SETTING])
def test_a_missing_file_stops_start_up_naming_its_setting(
    pair: CertificateFiles, tmp_path: Path, setting: str
) -> None:
    absent = tmp_path / "absent.pem"
    cert, key = (absent, pair.key) if setting == CERT_SETTING else (pair.cert, absent)
    with pytest.raises(ConfigurationError) as refused:
        starttls_context(cert, key)
    assert str(refused.value).startswith(f"{setting}: cannot read {absent}")


def test_an_unreadable_file_stops_start_up_naming_its_setting(
    pair: CertificateFiles, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=f"^{KEY_SETTING}: cannot read"):
        starttls_context(pair.cert, tmp_path)  # a directory: no file to read


def test_optional_files_absent_together_mean_plaintext_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty_mount = tmp_path / "smtp-tls"
    with caplog.at_level(logging.WARNING, logger="services.feedback.starttls"):
        context = starttls_context(empty_mount / "tls.crt", empty_mount / "tls.key", True)
    assert context is None
    assert "offers no STARTTLS" in caplog.text and CERT_SETTING in caplog.text
    with pytest.raises(ConfigurationError, match=CERT_SETTING):
        starttls_context(empty_mount / "tls.crt", empty_mount / "tls.key", False)


def test_optional_files_do_not_excuse_one_missing_file(
    pair: CertificateFiles, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=f"^{KEY_SETTING}: cannot read"):
        starttls_context(pair.cert, tmp_path / "tls.key", True)


def test_a_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    ours, other = self_signed(tmp_path / "ours"), self_signed(tmp_path / "other")
    with pytest.raises(ConfigurationError) as refused:
        starttls_context(ours.cert, other.key)
    message = str(refused.value)
    assert message.startswith(KEY_SETTING) and CERT_SETTING in message
    assert "does not belong" in message


def test_an_encrypted_key_is_refused_without_showing_it(tmp_path: Path) -> None:
    pair = self_signed(tmp_path / "mx", password=b"correct horse")
    body = pair.key.read_text().splitlines()[1]  # a line of the key's base64
    with pytest.raises(ConfigurationError) as refused:
        starttls_context(pair.cert, pair.key)
    assert str(refused.value).startswith(f"{KEY_SETTING}: the key in {pair.key} is encrypted")
    assert body not in str(refused.value)


def test_files_swapped_are_refused_naming_the_wrong_one(pair: CertificateFiles) -> None:
    with pytest.raises(ConfigurationError, match=f"^{CERT_SETTING}: .* holds no PEM certificate"):
        starttls_context(pair.key, pair.key)
    with pytest.raises(ConfigurationError, match=f"^{KEY_SETTING}: .* holds no PEM private key"):
        starttls_context(pair.cert, pair.cert)

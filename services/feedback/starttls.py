"""The SMTP listener's STARTTLS: its certificate chain and key, read and checked once at start-up.

Errors name the setting, the file and the problem, never the key's content.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from services.common.errors import ConfigurationError

log = logging.getLogger(__name__)

CERT_SETTING = "TRIGGERLINE_FEEDBACK_SMTP_TLS_CERT"
KEY_SETTING = "TRIGGERLINE_FEEDBACK_SMTP_TLS_KEY"


def starttls_context(
    cert: Path | None, key: Path | None, files_optional: bool = False
) -> ssl.SSLContext | None:
    """The server context the listener offers STARTTLS with, or None for plaintext only.

    None when no certificate is configured (the settings refuse one file without the other),
    and, with `files_optional`, when neither file exists: an optional Kubernetes Secret that
    was not created leaves its mount empty. One file of the two missing is always an error.
    The listener offers TLS and never requires it: a public MX must accept plaintext too
    (RFC 3207, section 4), or MTAs without TLS could not deliver their reports.
    """
    if cert is None or key is None:
        return None
    if files_optional and not cert.exists() and not key.exists():
        log.warning(
            "%s (%s) and %s (%s) do not exist: the SMTP listener offers no STARTTLS; create "
            "the certificate's Secret, then restart",
            CERT_SETTING,
            cert,
            KEY_SETTING,
            key,
        )
        return None
    chain, secret = _read(cert, CERT_SETTING), _read(key, KEY_SETTING)
    if b"-----BEGIN CERTIFICATE-----" not in chain:
        raise ConfigurationError(
            f"{CERT_SETTING}: {cert} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )
    if b"PRIVATE KEY-----" not in secret:
        raise ConfigurationError(
            f"{KEY_SETTING}: {key} holds no PEM private key (-----BEGIN PRIVATE KEY-----)"
        )
    if b"ENCRYPTED" in secret:
        raise ConfigurationError(
            f"{KEY_SETTING}: the key in {key} is encrypted; give an unencrypted PEM key "
            "(`openssl pkey -in <encrypted> -out <plain>`)"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # clients' certificates are not asked for
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # A password callback, so that OpenSSL never prompts on a terminal the pod lacks.
        context.load_cert_chain(cert, key, password=_no_password)
    except ssl.SSLError as exc:
        raise ConfigurationError(
            f"{KEY_SETTING}: the key in {key} does not belong to the first certificate of "
            f"{CERT_SETTING} ({cert}), or one of them is malformed ({exc.reason or 'SSL error'})"
        ) from None
    log.info("the SMTP listener offers STARTTLS (TLS 1.2 or later) with %s", cert)
    return context


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"{setting}: cannot read {path} ({exc.strerror or type(exc).__name__})"
        ) from None


def _no_password() -> str:
    raise ConfigurationError(f"{KEY_SETTING}: the key is encrypted; give an unencrypted PEM key")

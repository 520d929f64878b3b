"""The secrets the auth service holds, read from settings or mounted files and checked once.

Every error names the setting and the problem, never the secret's content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import SecretStr

from services.auth.rules.clients import parse_clients
from services.auth.settings import AuthSettings
from services.common.errors import ConfigurationError

_PREFIX = "TRIGGERLINE_AUTH_"


@dataclass(frozen=True)
class Credentials:
    """What the service proves itself with, and what its clients must present."""

    client_secret: SecretStr
    private_key: RSAPrivateKey | None = field(repr=False)
    clients: dict[str, str] = field(repr=False)


def secret_value(value: SecretStr, file: Path | None, setting: str) -> str:
    """The secret from its file when one is set (a mounted secret wins), else from the value."""
    if file is None:
        return value.get_secret_value().strip()
    try:
        return file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"{_PREFIX}{setting}_FILE: cannot read {file} ({type(exc).__name__})"
        ) from None


def private_key(pem: str, setting: str = f"{_PREFIX}PRIVATE_KEY") -> RSAPrivateKey:
    """Load an unencrypted PEM RSA key; refuse anything else with the reason and the fix."""
    if "PuTTY-User-Key-File" in pem:
        raise ConfigurationError(f"{setting}: PuTTYgen keys are refused; regenerate with openssl")
    try:
        key = load_pem_private_key(pem.replace("\\n", "\n").encode(), password=None)
    except TypeError:
        raise ConfigurationError(
            f"{setting}: the key is encrypted; give an unencrypted PEM key"
        ) from None
    except (ValueError, Exception):  # cryptography raises several kinds for bad input
        raise ConfigurationError(
            f"{setting}: not a PEM RSA private key (expected -----BEGIN PRIVATE KEY----- or "
            "-----BEGIN RSA PRIVATE KEY-----; generate one with `openssl genrsa`)"
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigurationError(f"{setting}: the key is not RSA; IMS wants an RS256 signature")
    return key


def load_credentials(settings: AuthSettings) -> Credentials:
    """Read and check every secret the mode needs; `ConfigurationError` names what is wrong."""
    clients_text = secret_value(settings.clients, settings.clients_file, "CLIENTS")
    try:
        clients = parse_clients(clients_text)
    except ValueError as exc:
        raise ConfigurationError(f"{_PREFIX}CLIENTS: {exc}") from None
    if not clients:
        raise ConfigurationError(
            f"{_PREFIX}CLIENTS (or {_PREFIX}CLIENTS_FILE) names no client: "
            "give e.g. fetcher:<secret>"
        )
    if settings.mode == "none":
        if not settings.allow_none:
            raise ConfigurationError(
                f"{_PREFIX}MODE=none serves no real token: set {_PREFIX}ALLOW_NONE=true for "
                "local development, or choose oauth or jwt"
            )
        return Credentials(SecretStr(""), None, clients)
    secret = secret_value(settings.client_secret, settings.client_secret_file, "CLIENT_SECRET")
    if not secret:
        raise ConfigurationError(
            f"{_PREFIX}CLIENT_SECRET (or {_PREFIX}CLIENT_SECRET_FILE) is required for mode "
            f"{settings.mode}"
        )
    if not settings.client_id:
        raise ConfigurationError(f"{_PREFIX}CLIENT_ID is required for mode {settings.mode}")
    key = None
    if settings.mode == "jwt":
        pem = secret_value(settings.private_key, settings.private_key_file, "PRIVATE_KEY")
        if not pem:
            raise ConfigurationError(
                f"{_PREFIX}PRIVATE_KEY (or {_PREFIX}PRIVATE_KEY_FILE) is required for mode jwt"
            )
        setting = f"{_PREFIX}PRIVATE_KEY" + ("_FILE" if settings.private_key_file else "")
        key = private_key(pem, setting)
        if not settings.ims_org.endswith("@AdobeOrg"):
            raise ConfigurationError(f"{_PREFIX}IMS_ORG must end with @AdobeOrg")
    return Credentials(SecretStr(secret), key, clients)

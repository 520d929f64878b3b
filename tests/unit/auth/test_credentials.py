"""Start-up checks of the auth service's secrets: clear errors that never echo a secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from services.auth.credentials import load_credentials
from services.auth.settings import AuthSettings
from services.common.errors import ConfigurationError


def settings(**changes: Any) -> AuthSettings:
    values: dict[str, Any] = {"client_secret": "ims-secret-xyz", "clients": "fetcher:abc123"}
    values.update(changes)
    return AuthSettings(**values)


def pem(key: Any, encryption: Any = None) -> str:
    data: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    )
    return data.decode()


def test_oauth_credentials_load_and_hide_in_repr() -> None:
    credentials = load_credentials(settings())
    assert credentials.client_secret.get_secret_value() == "ims-secret-xyz"
    assert credentials.clients == {"fetcher": "abc123"}
    assert "ims-secret-xyz" not in repr(credentials) and "abc123" not in repr(credentials)


def test_secrets_from_mounted_files_win(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("from-file-secret\n")
    (tmp_path / "clients").write_text("fetcher:f1\nmailer:m2\n")
    credentials = load_credentials(
        settings(client_secret_file=tmp_path / "secret", clients_file=tmp_path / "clients")
    )
    assert credentials.client_secret.get_secret_value() == "from-file-secret"
    assert set(credentials.clients) == {"fetcher", "mailer"}


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"client_secret": ""}, "TRIGGERLINE_AUTH_CLIENT_SECRET"),
        ({"clients": ""}, "TRIGGERLINE_AUTH_CLIENTS"),
        ({"clients": "fetcher-without-secret"}, "TRIGGERLINE_AUTH_CLIENTS"),
        ({"mode": "none"}, "TRIGGERLINE_AUTH_ALLOW_NONE"),
        ({"mode": "jwt"}, "TRIGGERLINE_AUTH_PRIVATE_KEY"),
        ({"client_secret_file": Path("/nonexistent/secret")}, "CLIENT_SECRET_FILE"),
    ],
)
def test_missing_or_bad_settings_name_the_setting(changes: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_credentials(settings(**changes))
    assert names in str(caught.value)


def test_mode_none_needs_explicit_permission() -> None:
    credentials = load_credentials(settings(mode="none", allow_none=True))
    assert credentials.private_key is None


def test_malformed_encrypted_or_non_rsa_keys_are_refused_without_echo() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = pem(rsa_key)
    body = good.splitlines()[3]
    mangled = good.replace(body, body[::-1])
    encrypted = pem(rsa_key, serialization.BestAvailableEncryption(b"pass-phrase"))
    not_rsa = pem(ec.generate_private_key(ec.SECP256R1()))
    putty = "PuTTY-User-Key-File-3: ssh-rsa\nEncryption: none\nsecretbody"
    for key, expected in (
        (mangled, "not a PEM RSA private key"),
        ("just some text", "not a PEM RSA private key"),
        (encrypted, "encrypted"),
        (not_rsa, "not RSA"),
        (putty, "PuTTYgen"),
    ):
        with pytest.raises(ConfigurationError) as caught:
            load_credentials(settings(mode="jwt", private_key=key))
        message = str(caught.value)
        assert expected in message and "TRIGGERLINE_AUTH_PRIVATE_KEY" in message
        assert body not in message and "secretbody" not in message and "ims-secret" not in message
    assert load_credentials(settings(mode="jwt", private_key=good)).private_key is not None

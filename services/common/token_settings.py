"""The settings part the token signer (mailer) and verifier (feedback) share, and its checks.

One part, read by both, so the two can never disagree on a key, a key id or the bounce domain;
in a cluster both mount the same Secret. `insecure_token_settings` names every value that is
only fit for a laptop; a service refuses to start on any of them unless
`TRIGGERLINE_TOKENS_DEVELOPMENT` is set.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import timedelta
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from services.common.errors import ConfigurationError
from services.common.settings import Duration, settings_config
from services.common.unsubscribe_token import KeyRing, SigningKey

# Published in this repository (and the mailer's former default): anyone can sign with it.
DEVELOPMENT_KEY = "local-development-only"
MIN_KEY_LENGTH = 32
_KEY_HINT = "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


class TokenSettings(BaseSettings):
    """Keys and addresses of recipient tokens (unsubscribe links, VERP return paths)."""

    model_config = settings_config("tokens")

    key: SecretStr = Field(
        SecretStr(DEVELOPMENT_KEY),
        description="Key (secret) signing new tokens, at least 32 characters; the default is "
        "public and refused outside development.",
    )
    key_id: int = Field(
        1, ge=0, le=255, description="Id (0-255) of `key`, written in every token it signs."
    )
    previous_key: SecretStr = Field(
        SecretStr(""),
        description="The key before `key` (secret): tokens it signed are still accepted until "
        "they expire. Empty: none.",
    )
    previous_key_id: int = Field(0, ge=0, le=255, description="Id of `previous_key`.")
    unsubscribe_url: str = Field(
        "https://triggerline.invalid/unsubscribe",
        description="Public HTTPS address of the feedback service's /unsubscribe: the base of "
        "every List-Unsubscribe link.",
    )
    unsubscribe_ttl: Duration = Field(
        timedelta(days=60), description="How long an unsubscribe link keeps working."
    )
    bounce_domain: str = Field(
        "bounces.triggerline.invalid",
        description="Domain of the VERP return path bounce+<token>@<domain>; its MX is the "
        "feedback service's SMTP listener.",
    )
    bounce_ttl: Duration = Field(
        timedelta(days=30),
        description="How long a return path is honoured: bounces and complaints arriving later "
        "are refused.",
    )
    development: bool = Field(
        False,
        description="Allow the public development key, .invalid names and http:// links to "
        "loopback. Local runs only.",
    )

    @model_validator(mode="after")
    def _distinct_ids(self) -> TokenSettings:
        if self.previous_key.get_secret_value() and self.previous_key_id == self.key_id:
            raise ValueError(
                "previous_key_id equals key_id; give each key its own id "
                "(TRIGGERLINE_TOKENS_PREVIOUS_KEY_ID)"
            )
        return self

    def key_ring(self) -> KeyRing:
        """The keys as the token functions take them; secrets revealed only here."""
        previous = self.previous_key.get_secret_value()
        return KeyRing(
            SigningKey(self.key_id, self.key.get_secret_value().encode("utf-8")),
            SigningKey(self.previous_key_id, previous.encode("utf-8")) if previous else None,
        )


def insecure_token_settings(settings: TokenSettings) -> list[str]:
    """Every value only fit for local development, each naming its variable and the fix.

    Never repeats a secret. `development` does not change the answer: callers decide whether
    to refuse or to warn.
    """
    problems: list[str] = []
    for name, secret in (("KEY", settings.key), ("PREVIOUS_KEY", settings.previous_key)):
        value = secret.get_secret_value()
        if not value and name == "PREVIOUS_KEY":
            continue
        if value == DEVELOPMENT_KEY:
            problems.append(
                f"TRIGGERLINE_TOKENS_{name} is the public development key, so anyone could "
                f"forge tokens; {_KEY_HINT}"
            )
        elif len(value) < MIN_KEY_LENGTH:
            problems.append(
                f"TRIGGERLINE_TOKENS_{name} is shorter than {MIN_KEY_LENGTH} characters; "
                f"{_KEY_HINT}"
            )
    url = urlsplit(settings.unsubscribe_url)
    host = (url.hostname or "").lower()
    if _is_invalid_name(host):
        problems.append(
            f"TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL points at {host or 'no host'}, which does not "
            "exist; give the public HTTPS address of the feedback service"
        )
    elif url.scheme != "https":
        where = "this machine" if is_loopback(host) else host
        problems.append(
            f"TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL is {url.scheme or 'not a'} URL on {where}; "
            "RFC 8058 one-click unsubscribe needs https://"
        )
    if _is_invalid_name(settings.bounce_domain.strip().lower()):
        problems.append(
            f"TRIGGERLINE_TOKENS_BOUNCE_DOMAIN {settings.bounce_domain!r} does not exist; give "
            "the domain whose MX is the feedback service's SMTP listener"
        )
    return problems


def refuse_development_settings(problems: Sequence[str], development: bool) -> list[str]:
    """Raise `ConfigurationError` naming every problem, unless `development`; then return them
    for the caller to log as warnings. The mailer and the feedback service call this at start-up
    with `insecure_token_settings` (plus any problems of their own)."""
    if problems and not development:
        raise ConfigurationError(
            "refusing to start with development settings: "
            + "; ".join(problems)
            + " (TRIGGERLINE_TOKENS_DEVELOPMENT=true allows them for local runs)"
        )
    return list(problems)


def _is_invalid_name(host: str) -> bool:
    """RFC 2606 `.invalid` names (and no name at all) can never be reached."""
    return not host or host == "invalid" or host.endswith(".invalid")


def is_loopback(host: str) -> bool:
    """`localhost` names and loopback addresses."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""Adobe IMS over HTTP: one token per call, errors mapped to Triggerline's kinds.

Never logs or raises with a secret, an assertion or a token: only status codes and IMS's
error code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from services.auth.rules.assertion import assertion_claims
from services.auth.rules.refresh import LifetimeUnit, Token, lifetime
from services.common.errors import PermanentFailure, TransientFailure

TokenSource = Callable[[], Token]

_HINTS = {
    "invalid_client": "check TRIGGERLINE_AUTH_CLIENT_ID and TRIGGERLINE_AUTH_CLIENT_SECRET",
    "invalid_scope": "check TRIGGERLINE_AUTH_SCOPES / TRIGGERLINE_AUTH_METASCOPES against the "
    "credential",
    "invalid_signature": "the private key does not match the certificate on the credential",
    "invalid_token": "the JWT assertion was refused; check the clock and "
    "TRIGGERLINE_AUTH_JWT_EXPIRY",
    "bad_request": "check TRIGGERLINE_AUTH_IMS_ORG and TRIGGERLINE_AUTH_TECHNICAL_ACCOUNT_ID",
}


class ImsClient:
    """Posts forms to IMS and turns answers into `Token`s."""

    def __init__(self, base_url: str, timeout: timedelta, session: requests.Session) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout.total_seconds()
        self._session = session

    def post(self, path: str, form: dict[str, str], unit: LifetimeUnit) -> Token:
        url = f"{self._base}{path}"
        sent_at = datetime.now(UTC)
        try:
            reply = self._session.post(url, data=form, timeout=self._timeout)
        except requests.RequestException as exc:
            raise TransientFailure(f"IMS unreachable at {url} ({type(exc).__name__})") from None
        with reply:
            if reply.status_code >= 500 or reply.status_code == 429:
                raise TransientFailure(
                    f"IMS answered {reply.status_code} at {url}", _retry_after(reply)
                )
            body = _json(reply)
            if reply.status_code != 200:
                code = str(body.get("error", "unknown_error"))
                hint = _HINTS.get(code, "see the IMS documentation")
                raise PermanentFailure(
                    f"IMS refused the credential ({reply.status_code} {code}): {hint}",
                    reply.status_code,
                )
        value = body.get("access_token")
        if not isinstance(value, str) or not value:
            raise TransientFailure(f"IMS answered 200 without an access_token at {url}")
        try:
            life = lifetime(body.get("expires_in"), unit)
        except ValueError as exc:
            raise TransientFailure(f"IMS answered a bad expires_in at {url}: {exc}") from None
        return Token(value, sent_at, sent_at + life)


def oauth_source(ims: ImsClient, client_id: str, secret: str, scopes: str) -> TokenSource:
    """Client credentials (`/ims/token/v3`): `expires_in` is in seconds."""
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": scopes,
    }
    return lambda: ims.post("/ims/token/v3", form, "seconds")


def jwt_source(
    ims: ImsClient,
    client_id: str,
    secret: str,
    key: RSAPrivateKey,
    claims_for: Callable[[datetime], dict[str, object]],
) -> TokenSource:
    """JWT exchange (`/ims/exchange/jwt`): a fresh RS256 assertion each time; `expires_in` in ms."""

    def fetch() -> Token:
        assertion = jwt.encode(claims_for(datetime.now(UTC)), key, algorithm="RS256")
        form = {"client_id": client_id, "client_secret": secret, "jwt_token": assertion}
        return ims.post("/ims/exchange/jwt", form, "milliseconds")

    return fetch


def none_source(life: timedelta) -> TokenSource:
    """Mode `none`: a placeholder for an upstream that checks no token (local development)."""

    def fetch() -> Token:
        now = datetime.now(UTC)
        return Token("none", now, now + life)

    return fetch


def claims_factory(
    ims_org: str, technical_account_id: str, client_id: str, metascopes: str, expiry: timedelta
) -> Callable[[datetime], dict[str, object]]:
    scopes = [s.strip() for s in metascopes.split(",") if s.strip()]
    return lambda now: assertion_claims(
        ims_org, technical_account_id, client_id, scopes, now, expiry
    )


def _json(reply: requests.Response) -> dict[str, object]:
    try:
        body = reply.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(reply: requests.Response) -> timedelta | None:
    try:
        return timedelta(seconds=float(reply.headers.get("Retry-After", "")))
    except ValueError:
        return None

"""The internal token API: clients prove who they are and get the shared IMS token."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from services.auth import metrics
from services.auth.keeper import TokenKeeper
from services.auth.rules.clients import client_allowed
from services.auth.rules.refresh import Token
from services.common.authclient import CLIENT_HEADER  # the one name both ends use
from services.common.errors import PermanentFailure, TransientFailure

log = logging.getLogger(__name__)

KEEPER: web.AppKey[TokenKeeper] = web.AppKey("keeper", TokenKeeper)
CLIENTS: web.AppKey[dict[str, str]] = web.AppKey("clients", dict)


def _client(request: web.Request) -> str | None:
    """The authenticated client name, or None (counted) when the credential is wrong or missing."""
    name = request.headers.get(CLIENT_HEADER, "").strip()
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if (
        name
        and scheme.lower() == "bearer"
        and client_allowed(request.app[CLIENTS], name, presented.strip())
    ):
        return name
    metrics.REJECTED.inc()
    log.warning("refused a token request: wrong or missing client credential")
    return None


def _unauthorized() -> web.Response:
    return _error(
        401,
        "unauthorized",
        f"present {CLIENT_HEADER}: <name> and Authorization: Bearer <client credential>",
    )


def _error(status: int, code: str, message: str, retry_after: float | None = None) -> web.Response:
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after else None
    body = json.dumps({"error": code, "message": message})
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


def _token_body(token: Token) -> web.Response:
    return web.json_response(
        {
            "access_token": token.value,
            "token_type": "bearer",
            "expires_at": token.expires_at.timestamp(),
        }
    )


def _unavailable(exc: TransientFailure | PermanentFailure) -> web.Response:
    retry = (
        exc.retry_after.total_seconds()
        if isinstance(exc, TransientFailure) and exc.retry_after
        else 1.0
    )
    return _error(503, "token_unavailable", str(exc), retry)


async def get_token(request: web.Request) -> web.Response:
    """`GET /v1/token`: the current token and its expiry (epoch seconds)."""
    client = _client(request)
    if client is None:
        return _unauthorized()
    try:
        token = await request.app[KEEPER].token()
    except (TransientFailure, PermanentFailure) as exc:
        return _unavailable(exc)
    metrics.SERVED.labels(client).inc()
    return _token_body(token)


async def invalidate(request: web.Request) -> web.Response:
    """`POST /v1/token/invalidate`: the body is the token that got a 401 (raw, or JSON
    `{"access_token": ...}`); answers with a fresh token."""
    client = _client(request)
    if client is None:
        return _unauthorized()
    text = (await request.text()).strip()
    value = text
    if text.startswith("{"):
        try:
            value = str(json.loads(text).get("access_token", ""))
        except (json.JSONDecodeError, AttributeError):
            return _error(400, "bad_request", 'body must be the token or {"access_token": ...}')
    if not value:
        return _error(400, "bad_request", "body must carry the token that was rejected")
    metrics.INVALIDATIONS.labels(client).inc()
    try:
        token = await request.app[KEEPER].invalidate(value)
    except (TransientFailure, PermanentFailure) as exc:
        return _unavailable(exc)
    metrics.SERVED.labels(client).inc()
    return _token_body(token)

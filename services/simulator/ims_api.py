"""Simulated Adobe IMS: client-credentials tokens and the JWT exchange, with Adobe's errors."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from pathlib import Path

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.x509 import load_pem_x509_certificate

from services.common.errors import ConfigurationError
from services.simulator.pipeline_api import STATE
from services.simulator.rules.jwt_claims import Expected, ImsError, check_claims
from services.simulator.state import SimulatorState

log = logging.getLogger(__name__)

PUBLIC_KEY: web.AppKey[RSAPublicKey | None] = web.AppKey("jwt_public_key", RSAPublicKey)


def load_public_key(path: Path | None) -> RSAPublicKey | None:
    """The RSA public key JWT assertions must verify against: a PEM key or certificate."""
    if path is None:
        return None
    try:
        data = path.read_bytes()
        key = (
            load_pem_x509_certificate(data).public_key()
            if b"CERTIFICATE" in data
            else load_pem_public_key(data)
        )
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"TRIGGERLINE_SIMULATOR_JWT_PUBLIC_KEY_FILE: cannot read an RSA public key or "
            f"certificate from {path} ({type(exc).__name__})"
        ) from None
    if not isinstance(key, RSAPublicKey):
        raise ConfigurationError("TRIGGERLINE_SIMULATOR_JWT_PUBLIC_KEY_FILE: the key is not RSA")
    return key


def _ims_error(err: ImsError) -> web.Response:
    body = {"error": err.code, "error_description": err.description}
    return web.Response(status=err.status, text=json.dumps(body), content_type="application/json")


async def _outage(state: SimulatorState) -> web.Response | None:
    if state.faults.ims_delay_ms:
        await asyncio.sleep(state.faults.ims_delay_ms / 1000)
    status = state.faults.take_status("ims")
    if status == 503:
        return web.Response(
            status=503,
            text='{"error":"service_unavailable"}',
            content_type="application/json",
            headers={"Retry-After": str(state.faults.retry_after)},
        )
    if status == 500:
        return web.Response(
            status=500, text='{"error":"server_error"}', content_type="application/json"
        )
    return None


def _client_ok(state: SimulatorState, client_id: str, client_secret: str) -> bool:
    expected_secret = state.settings.client_secret.get_secret_value().encode()
    id_ok = hmac.compare_digest(client_id.encode(), state.settings.client_id.encode())
    return hmac.compare_digest(client_secret.encode(), expected_secret) and id_ok


async def _form(request: web.Request) -> dict[str, str]:
    """Form fields from the body, falling back to the query string as IMS does."""
    fields = {key: value for key, value in request.query.items()}
    if request.can_read_body:
        posted = await request.post()
        fields.update({key: str(value) for key, value in posted.items()})
    return fields


async def token_v3(request: web.Request) -> web.Response:
    """`POST /ims/token/v3`: client credentials; `expires_in` in seconds."""
    state = request.app[STATE]
    state.ims_calls["token_v3"] += 1
    outage = await _outage(state)
    if outage is not None:
        return outage
    form = await _form(request)
    if form.get("grant_type") != "client_credentials":
        return _ims_error(ImsError(400, "bad_request", "grant_type must be client_credentials"))
    if not form.get("client_id") or not form.get("client_secret"):
        return _ims_error(ImsError(400, "bad_request", "client_id and client_secret are required"))
    if not _client_ok(state, form["client_id"], form["client_secret"]):
        return _ims_error(ImsError(401, "invalid_client", "invalid client_id or client_secret"))
    bound = {s.strip() for s in state.settings.scopes.split(",") if s.strip()}
    asked = {s.strip() for s in form.get("scope", "").split(",") if s.strip()}
    if not asked or not asked <= bound:
        unknown = ", ".join(sorted(asked - bound)) or "(none requested)"
        return _ims_error(ImsError(400, "invalid_scope", f"scopes not bound: {unknown}"))
    lifetime = state.settings.oauth_token_lifetime
    issued = state.tokens.issue(form["client_id"], lifetime, time.time())
    body = {
        "access_token": issued.token,
        "token_type": "bearer",
        "expires_in": int(lifetime.total_seconds()),
    }
    return web.json_response(body)


async def exchange_jwt(request: web.Request) -> web.Response:
    """`POST /ims/exchange/jwt`: a signed RS256 assertion; `expires_in` in milliseconds."""
    state = request.app[STATE]
    state.ims_calls["exchange_jwt"] += 1
    outage = await _outage(state)
    if outage is not None:
        return outage
    form = await _form(request)
    if not form.get("client_id") or not form.get("client_secret"):
        return _ims_error(ImsError(400, "bad_request", "client_id and client_secret are required"))
    if not _client_ok(state, form["client_id"], form["client_secret"]):
        return _ims_error(ImsError(401, "invalid_client", "invalid client_id or client_secret"))
    assertion = form.get("jwt_token", "")
    if not assertion:
        return _ims_error(ImsError(400, "invalid_token", "jwt_token is missing"))
    failure = _verify(request.app[PUBLIC_KEY], assertion, state)
    if failure is not None:
        return _ims_error(failure)
    lifetime = state.settings.jwt_token_lifetime
    issued = state.tokens.issue(form["client_id"], lifetime, time.time())
    body = {
        "token_type": "bearer",
        "access_token": issued.token,
        "expires_in": int(lifetime.total_seconds() * 1000),
    }
    return web.json_response(body)


def _verify(key: RSAPublicKey | None, assertion: str, state: SimulatorState) -> ImsError | None:
    if key is None:
        return ImsError(400, "invalid_signature", "no certificate is attached to this credential")
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.DecodeError:
        return ImsError(400, "invalid_token", "jwt_token cannot be decoded")
    if header.get("alg") != "RS256":
        return ImsError(400, "invalid_signature", "JWT must be signed with RS256")
    try:
        claims = jwt.decode(
            assertion,
            key,
            algorithms=["RS256"],
            options={
                "verify_exp": False,  # checked below, to answer with Adobe's codes
                "verify_aud": False,
                "verify_iss": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidSignatureError:
        return ImsError(400, "invalid_signature", "no attached certificate matches the signature")
    except jwt.InvalidAlgorithmError:
        return ImsError(400, "invalid_signature", "JWT must be signed with RS256")
    except jwt.PyJWTError:
        return ImsError(400, "invalid_token", "jwt_token cannot be decoded")
    expected = Expected(
        client_id=state.settings.client_id,
        ims_org=state.settings.ims_org,
        technical_account_id=state.settings.technical_account_id,
    )
    return check_claims(claims, expected, time.time())

"""Which IMS error a verified JWT assertion earns, by Adobe's rules for the JWT exchange."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IMS_HOST = "https://ims-na1.adobelogin.com"
ANALYTICS_METASCOPE = f"{IMS_HOST}/s/ent_analytics_bulk_ingest_sdk"


@dataclass(frozen=True)
class ImsError:
    """An IMS refusal: HTTP status, Adobe's `error` code and a description."""

    status: int
    code: str
    description: str


@dataclass(frozen=True)
class Expected:
    """What the credential is bound to."""

    client_id: str
    ims_org: str
    technical_account_id: str
    metascopes: tuple[str, ...] = (ANALYTICS_METASCOPE,)


def audience(client_id: str) -> str:
    return f"{IMS_HOST}/c/{client_id}"


def check_claims(claims: dict[str, Any], expected: Expected, now_s: float) -> ImsError | None:
    """None when the (signature-verified) claims earn a token; else the error IMS answers.

    `exp` is epoch seconds and must be an integer in the future; `aud` must name this client;
    at least one bound metascope must be claimed `true`.
    """
    exp = claims.get("exp")
    if exp is None:
        return ImsError(400, "bad_request", "exp claim is missing")
    if isinstance(exp, bool) or not isinstance(exp, int):
        return ImsError(400, "invalid_token", "exp claim is not an integer")
    if exp <= now_s:
        return ImsError(400, "invalid_token", "JWT has expired")
    if "jti" in claims and (isinstance(claims["jti"], bool) or not isinstance(claims["jti"], int)):
        return ImsError(400, "invalid_token", "jti claim is not an integer")
    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(iss, str) or not iss.endswith("@AdobeOrg") or iss != expected.ims_org:
        return ImsError(400, "bad_request", "the subject must be a valid organization or client")
    if not isinstance(sub, str) or sub != expected.technical_account_id:
        return ImsError(400, "bad_request", "sub is not the technical account of this client")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience(expected.client_id) not in audiences:
        return ImsError(401, "invalid_client", "aud does not match the client id")
    if not any(claims.get(scope) is True for scope in expected.metascopes):
        return ImsError(400, "invalid_scope", "no bound metascope is claimed")
    return None

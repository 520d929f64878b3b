"""The claims of the JWT assertion exchanged at IMS, by Adobe's service-account rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

IMS_HOST = "https://ims-na1.adobelogin.com"


def metascope_claim(name: str) -> str:
    """`ent_analytics_bulk_ingest_sdk` -> the claim name IMS expects (full URLs kept as given)."""
    return name if name.startswith("https://") else f"{IMS_HOST}/s/{name}"


def assertion_claims(
    ims_org: str,
    technical_account_id: str,
    client_id: str,
    metascopes: list[str],
    now: datetime,
    expires_after: timedelta,
) -> dict[str, Any]:
    """Claims for one exchange: `exp` in epoch seconds (an integer), a few minutes ahead."""
    claims: dict[str, Any] = {
        "exp": int((now + expires_after).timestamp()),
        "iss": ims_org,
        "sub": technical_account_id,
        "aud": f"{IMS_HOST}/c/{client_id}",
    }
    for scope in metascopes:
        claims[metascope_claim(scope)] = True
    return claims

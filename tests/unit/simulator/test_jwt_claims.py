"""Which IMS error each JWT claim problem earns."""

from __future__ import annotations

from typing import Any

import pytest

from services.simulator.rules.jwt_claims import (
    ANALYTICS_METASCOPE,
    Expected,
    audience,
    check_claims,
)

EXPECTED = Expected("cid", "ORG@AdobeOrg", "TA@techacct.adobe.com")
NOW = 1_800_000_000


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "exp": NOW + 300,
        "iss": "ORG@AdobeOrg",
        "sub": "TA@techacct.adobe.com",
        "aud": audience("cid"),
        ANALYTICS_METASCOPE: True,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_good_claims_pass() -> None:
    assert check_claims(claims(), EXPECTED, NOW) is None


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"exp": None}, "bad_request"),
        ({"exp": "later"}, "invalid_token"),
        ({"exp": float(NOW + 300)}, "invalid_token"),
        ({"exp": NOW}, "invalid_token"),
        ({"jti": "abc"}, "invalid_token"),
        ({"iss": "ORG"}, "bad_request"),
        ({"iss": "OTHER@AdobeOrg"}, "bad_request"),
        ({"sub": None}, "bad_request"),
        ({"aud": audience("other")}, "invalid_client"),
        ({ANALYTICS_METASCOPE: None}, "invalid_scope"),
        ({ANALYTICS_METASCOPE: "true"}, "invalid_scope"),
    ],
)
def test_bad_claims_get_adobes_codes(changes: dict[str, Any], code: str) -> None:
    error = check_claims(claims(**changes), EXPECTED, NOW)
    assert error is not None and error.code == code

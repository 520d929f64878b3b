"""Simulated IMS over real HTTP: client credentials and JWT exchange, Adobe's codes and units."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from services.simulator.rules.jwt_claims import ANALYTICS_METASCOPE, audience
from tests.integration.servers import RunningApp, rsa_key_pair
from tests.integration.simulator.conftest import CLIENT_ID, CLIENT_SECRET, oauth_token

ORG = "C5E7154A5A1B2C3D4E5F98A4@AdobeOrg"
TECH = "0123456789ABCDEF01234567@techacct.adobe.com"


def test_client_credentials_answer_expires_in_seconds_and_the_token_opens_the_stream(
    simulator_factory: Callable[..., RunningApp],
) -> None:
    sim = simulator_factory(oauth_token_lifetime="3600s")
    reply = oauth_token(sim.url)
    body = reply.json()
    assert reply.status_code == 200
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    stream = requests.get(
        f"{sim.url}/pipeline/topics/triggers/messages",
        params={"group": "g"},
        headers={"Authorization": f"Bearer {body['access_token']}"},
        stream=True,
        timeout=5,
    )
    with stream:
        assert stream.status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"scope": "openid,admin_everything"}, 400, "invalid_scope"),
        ({"grant_type": "password"}, 400, "bad_request"),
        ({"client_secret": ""}, 400, "bad_request"),
    ],
)
def test_client_credentials_errors(
    simulator: RunningApp, form: dict[str, str], status: int, code: str
) -> None:
    reply = oauth_token(simulator.url, **form)
    assert (reply.status_code, reply.json()["error"]) == (status, code)
    assert CLIENT_SECRET not in reply.text


@pytest.fixture
def keys(tmp_path: Path) -> tuple[str, Path]:
    private, public = rsa_key_pair()
    path = tmp_path / "public.pem"
    path.write_bytes(public)
    return private, path


def claims(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "exp": int(time.time()) + 300,
        "iss": ORG,
        "sub": TECH,
        "aud": audience(CLIENT_ID),
        ANALYTICS_METASCOPE: True,
    }
    for name, value in changes.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    return document


def exchange(url: str, assertion: str | None, **form: str) -> requests.Response:
    data = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    if assertion is not None:
        data["jwt_token"] = assertion
    data.update(form)
    return requests.post(f"{url}/ims/exchange/jwt", data=data, timeout=5)


def test_jwt_exchange_answers_expires_in_milliseconds(
    simulator_factory: Callable[..., RunningApp], keys: tuple[str, Path]
) -> None:
    private, public = keys
    sim = simulator_factory(jwt_public_key_file=public, jwt_token_lifetime="3600s")
    reply = exchange(sim.url, jwt.encode(claims(), private, algorithm="RS256"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["expires_in"] == 3_600_000
    assert reply.json()["token_type"] == "bearer"


def test_jwt_exchange_errors(
    simulator_factory: Callable[..., RunningApp], keys: tuple[str, Path]
) -> None:
    private, public = keys
    other_private, _ = rsa_key_pair()
    sim = simulator_factory(jwt_public_key_file=public)
    cases: list[tuple[str | None, dict[str, str], int, str]] = [
        (jwt.encode(claims(), other_private, algorithm="RS256"), {}, 400, "invalid_signature"),
        (
            jwt.encode(claims(), "shared-secret-hs256-key-long-enough", algorithm="HS256"),
            {},
            400,
            "invalid_signature",
        ),
        (
            jwt.encode(claims(exp=int(time.time()) - 10), private, algorithm="RS256"),
            {},
            400,
            "invalid_token",
        ),
        (jwt.encode(claims(exp="soon"), private, algorithm="RS256"), {}, 400, "invalid_token"),
        (jwt.encode(claims(exp=None), private, algorithm="RS256"), {}, 400, "bad_request"),
        (jwt.encode(claims(iss="nobody"), private, algorithm="RS256"), {}, 400, "bad_request"),
        (
            jwt.encode(claims(sub="other@techacct.adobe.com"), private, algorithm="RS256"),
            {},
            400,
            "bad_request",
        ),
        (
            jwt.encode(claims(aud=audience("another")), private, algorithm="RS256"),
            {},
            401,
            "invalid_client",
        ),
        (
            jwt.encode(claims(**{ANALYTICS_METASCOPE: None}), private, algorithm="RS256"),
            {},
            400,
            "invalid_scope",
        ),
        ("not.a.jwt", {}, 400, "invalid_token"),
        (None, {}, 400, "invalid_token"),
        (
            jwt.encode(claims(), private, algorithm="RS256"),
            {"client_secret": "wrong"},
            401,
            "invalid_client",
        ),
    ]
    for assertion, form, status, code in cases:
        reply = exchange(sim.url, assertion, **form)
        assert (reply.status_code, reply.json().get("error")) == (status, code), (form, reply.text)


def test_ims_faults_answer_503_with_retry_after_and_calls_are_counted(
    simulator: RunningApp,
) -> None:
    faults = f"{simulator.url}/simulator/faults"
    requests.post(faults, json={"ims_503": 1, "retry_after": 4}, timeout=5)
    down = oauth_token(simulator.url)
    assert down.status_code == 503 and down.headers["Retry-After"] == "4"
    assert oauth_token(simulator.url).status_code == 200
    stats = requests.get(f"{simulator.url}/simulator/stats", timeout=5).json()
    assert stats["ims_calls"] == {"token_v3": 2}

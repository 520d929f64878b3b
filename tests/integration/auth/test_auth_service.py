"""The auth service over real HTTP, with the simulator as IMS and as the pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from services.common.authclient import TokenClient
from services.common.errors import PermanentFailure, TransientFailure
from tests.integration.auth.conftest import (
    FETCHER_SECRET,
    get_token,
    ims_calls,
    invalidate,
)
from tests.integration.servers import RunningApp
from tests.support.deadlines import wait_until

Stack = Callable[..., tuple[RunningApp, RunningApp]]


def ready(auth: RunningApp) -> bool:
    return requests.get(f"{auth.url}/readyz", timeout=5).status_code == 200


def test_serves_a_token_that_opens_the_pipeline(stack: Stack) -> None:
    sim, auth = stack()
    reply = get_token(auth)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body) == {"access_token", "token_type", "expires_at"}
    assert body["expires_at"] == pytest.approx(time.time() + 86399, abs=30)  # seconds, not ms
    with requests.get(
        f"{sim.url}/pipeline/topics/triggers/messages",
        params={"group": "g"},
        headers={"Authorization": f"Bearer {body['access_token']}"},
        stream=True,
        timeout=5,
    ) as stream:
        assert stream.status_code == 200
    assert get_token(auth).json()["access_token"] == body["access_token"]
    assert ims_calls(sim) == {"token_v3": 1}
    assert wait_until(lambda: ready(auth))


def test_rejects_wrong_missing_or_unknown_client_credentials(stack: Stack) -> None:
    _, auth = stack()
    refused = [
        get_token(auth, secret="wrong-secret"),
        get_token(auth, name="ops", secret=FETCHER_SECRET),  # another client's credential
        get_token(auth, name="stranger", secret=FETCHER_SECRET),
        requests.get(f"{auth.url}/v1/token", timeout=5),
        requests.post(f"{auth.url}/v1/token/invalidate", data="x", timeout=5),
    ]
    assert [reply.status_code for reply in refused] == [401] * 5
    for reply in refused:
        assert "access_token" not in reply.text and FETCHER_SECRET not in reply.text
    metrics = requests.get(f"{auth.url}/metrics", timeout=5).text
    rejected = [
        line
        for line in metrics.splitlines()
        if line.startswith("triggerline_auth_clients_rejected_total ")
    ]
    assert rejected and float(rejected[0].split()[1]) >= 5
    assert FETCHER_SECRET not in metrics
    assert get_token(auth, name="ops", secret="ops-credential-1a2b3c4d").status_code == 200


def test_refreshes_before_expiry(stack: Stack) -> None:
    sim, auth = stack(simulator={"oauth_token_lifetime": "3s"}, auth={"refresh_share": 0.5})
    first = get_token(auth).json()
    second = wait_until(
        lambda: (body := get_token(auth).json())["access_token"] != first["access_token"] and body,
        deadline=5,
    )
    # replaced at about half its life, well before it expired
    assert time.time() < first["expires_at"]
    assert second["expires_at"] > first["expires_at"]
    assert ims_calls(sim)["token_v3"] == 2


def test_invalidate_refreshes_once_for_twenty_concurrent_reports(stack: Stack) -> None:
    sim, auth = stack()
    old = get_token(auth).json()["access_token"]
    requests.post(f"{sim.url}/simulator/faults", json={"ims_delay_ms": 300}, timeout=5)
    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(lambda _: invalidate(auth, old), range(20)))
    assert {reply.status_code for reply in replies} == {200}
    fresh = {reply.json()["access_token"] for reply in replies}
    assert len(fresh) == 1 and old not in fresh
    assert ims_calls(sim) == {"token_v3": 2}  # start-up, then one refresh for all 20 reports
    # reporting the old token again does not refresh: it is no longer the current one
    assert invalidate(auth, old).json()["access_token"] in fresh
    assert ims_calls(sim) == {"token_v3": 2}


def test_twenty_concurrent_requests_at_start_make_one_ims_call(stack: Stack) -> None:
    # IMS answers slowly, so all twenty arrive while the start-up refresh is in flight
    sim, auth = stack(faults={"ims_delay_ms": 500})
    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(lambda _: get_token(auth), range(20)))
    assert {reply.status_code for reply in replies} == {200}
    assert len({reply.json()["access_token"] for reply in replies}) == 1
    assert ims_calls(sim) == {"token_v3": 1}


def test_survives_an_ims_outage_while_its_token_is_valid(stack: Stack) -> None:
    sim, auth = stack(simulator={"oauth_token_lifetime": "3s"}, auth={"refresh_share": 0.2})
    assert get_token(auth).status_code == 200
    wait_until(lambda: ready(auth))
    requests.post(
        f"{sim.url}/simulator/faults", json={"ims_down": True, "retry_after": 0}, timeout=5
    )
    calls_at_outage = ims_calls(sim)["token_v3"]
    # the refresh point passes, IMS is down: the same still-valid token is served
    time.sleep(1.0)  # a sleep: the retries below are counted over this one second of outage
    during = get_token(auth)
    assert during.status_code == 200
    current = during.json()
    assert current["expires_at"] > time.time()
    assert ready(auth)
    # retried with back-off (0.1 s to 0.3 s), not hammered and not given up
    retries = ims_calls(sim)["token_v3"] - calls_at_outage
    assert 2 <= retries <= 20, retries
    # once no valid token remains: not ready, and clients get 503 with Retry-After
    wait_until(lambda: not ready(auth), deadline=5)
    unavailable = get_token(auth)
    assert unavailable.status_code == 503 and "Retry-After" in unavailable.headers
    requests.post(f"{sim.url}/simulator/faults", json={"ims_down": False}, timeout=5)
    wait_until(lambda: ready(auth), deadline=5)
    assert get_token(auth).status_code == 200


def test_a_wrong_ims_secret_makes_auth_not_ready_without_echoing_it(stack: Stack) -> None:
    _, auth = stack(auth={"client_secret": "a-wrong-ims-secret-123"})
    # not ready at once (no token yet), then not ready because IMS refused the secret
    wait_until(lambda: "invalid_client" in requests.get(f"{auth.url}/readyz", timeout=5).text)
    body = requests.get(f"{auth.url}/readyz", timeout=5).text
    assert requests.get(f"{auth.url}/readyz", timeout=5).status_code == 503
    assert "invalid_client" in body and "TRIGGERLINE_AUTH_CLIENT_SECRET" in body
    assert "a-wrong-ims-secret-123" not in body
    reply = get_token(auth)
    assert reply.status_code == 503 and "a-wrong-ims-secret-123" not in reply.text


def test_jwt_mode_signs_a_fresh_assertion_and_handles_milliseconds(stack: Stack) -> None:
    sim, auth = stack(simulator={"jwt_token_lifetime": "2h"}, auth={"mode": "jwt"})
    body = get_token(auth).json()
    assert body["expires_at"] == pytest.approx(time.time() + 7200, abs=30)
    assert ims_calls(sim) == {"exchange_jwt": 1}
    with requests.get(
        f"{sim.url}/pipeline/topics/triggers/messages",
        params={"group": "g"},
        headers={"Authorization": f"Bearer {body['access_token']}"},
        stream=True,
        timeout=5,
    ) as stream:
        assert stream.status_code == 200
    assert invalidate(auth, body["access_token"]).status_code == 200
    assert ims_calls(sim) == {"exchange_jwt": 2}


def test_token_client_caches_refreshes_after_invalidate_and_maps_failures(stack: Stack) -> None:
    sim, auth = stack()
    client = TokenClient(auth.url, "fetcher", FETCHER_SECRET)
    baseline = _served(auth)
    try:
        with ThreadPoolExecutor(10) as pool:
            tokens = set(pool.map(lambda _: client.token(), range(10)))
        assert len(tokens) == 1
        assert _served(auth) - baseline == 1  # ten threads, one request to auth
        (first,) = tokens
        client.invalidate(first)
        second = client.token()
        assert second != first and _served(auth) - baseline == 2
        assert ims_calls(sim) == {"token_v3": 2}
        assert "fetcher-credential" not in repr(client)
    finally:
        client.close()
    wrong = TokenClient(auth.url, "fetcher", "not-the-secret")
    with pytest.raises(PermanentFailure):
        wrong.token()
    wrong.close()
    unreachable = TokenClient("http://127.0.0.1:9", "fetcher", FETCHER_SECRET, timeout=1)
    with pytest.raises(TransientFailure):
        unreachable.token()
    unreachable.close()


def _served(auth: RunningApp) -> float:
    """Tokens served to the fetcher so far (the counter is process-wide: compare deltas)."""
    metrics = requests.get(f"{auth.url}/metrics", timeout=5).text
    for line in metrics.splitlines():
        if line.startswith('triggerline_auth_clients_served_total{client="fetcher"}'):
            return float(line.split()[1])
    return 0.0

"""Fixtures: a simulator as IMS and upstream, and the auth service in front of it, on loopback."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from services.auth.app import build_app
from services.auth.credentials import load_credentials
from services.auth.settings import AuthSettings
from services.simulator.app import build_app as build_simulator
from tests.integration.servers import RunningApp, rsa_key_pair
from tests.integration.simulator.conftest import CLIENT_ID, CLIENT_SECRET, simulator_settings

FETCHER_SECRET = "fetcher-credential-0f9e8d7c"
CLIENTS = f"fetcher:{FETCHER_SECRET},ops:ops-credential-1a2b3c4d"


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, bytes]:
    return rsa_key_pair()


@pytest.fixture
def stack(
    tmp_path: Path, key_pair: tuple[str, bytes]
) -> Iterator[Callable[..., tuple[RunningApp, RunningApp]]]:
    """start(simulator={...}, auth={...}) -> (simulator, auth), both torn down afterwards."""
    started: list[RunningApp] = []
    public_path = tmp_path / "public.pem"
    public_path.write_bytes(key_pair[1])

    def start(
        simulator: dict[str, Any] | None = None,
        auth: dict[str, Any] | None = None,
        faults: dict[str, Any] | None = None,
    ) -> tuple[RunningApp, RunningApp]:
        sim = RunningApp(
            build_simulator(
                simulator_settings(jwt_public_key_file=public_path, **(simulator or {}))
            )
        )
        started.append(sim)
        if faults:
            requests.post(f"{sim.url}/simulator/faults", json=faults, timeout=5).raise_for_status()
        settings = auth_settings(sim, key_pair, **(auth or {}))
        service = RunningApp(build_app(settings, load_credentials(settings)))
        started.append(service)
        return sim, service

    yield start
    for running in reversed(started):
        running.stop()


def auth_settings(sim: RunningApp, key_pair: tuple[str, bytes], **overrides: Any) -> AuthSettings:
    """The auth service's settings in front of a simulator acting as IMS."""
    values: dict[str, Any] = {
        "ims_url": sim.url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scopes": "openid,AdobeID",
        "clients": CLIENTS,
        "private_key": key_pair[0],
        "retry_initial": "0.1s",
        "retry_max": "0.3s",
    }
    values.update(overrides)
    return AuthSettings(**values)


def get_token(auth: RunningApp, name: str = "fetcher", secret: str = FETCHER_SECRET) -> Any:
    return requests.get(
        f"{auth.url}/v1/token",
        headers={"Authorization": f"Bearer {secret}", "X-Triggerline-Client": name},
        timeout=10,
    )


def invalidate(auth: RunningApp, token: str) -> Any:
    return requests.post(
        f"{auth.url}/v1/token/invalidate",
        json={"access_token": token},
        headers={"Authorization": f"Bearer {FETCHER_SECRET}", "X-Triggerline-Client": "fetcher"},
        timeout=10,
    )


def ims_calls(sim: RunningApp) -> dict[str, int]:
    return dict(requests.get(f"{sim.url}/simulator/stats", timeout=5).json()["ims_calls"])


@pytest.fixture(autouse=True)
def no_secret_in_logs(
    caplog: pytest.LogCaptureFixture, key_pair: tuple[str, bytes]
) -> Iterator[None]:
    """Every log line of every auth test is checked for every secret the services hold."""
    caplog.set_level(logging.DEBUG)
    yield
    key_lines = [line for line in key_pair[0].splitlines() if "-----" not in line]
    secrets = [CLIENT_SECRET, FETCHER_SECRET, "ops-credential-1a2b3c4d", *key_lines]
    records = [*caplog.get_records("setup"), *caplog.get_records("call")]
    assert records, "expected the services to log something"
    text = "\n".join(record.getMessage() for record in records) + caplog.text
    for secret in secrets:
        assert secret not in text, "a secret appeared in a log line"
    assert "sim." not in text, "an access token appeared in a log line"

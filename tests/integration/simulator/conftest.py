"""Fixtures: a simulator on a free loopback port, and a token from its IMS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from services.simulator.app import build_app
from services.simulator.settings import SimulatorSettings
from tests.integration.servers import RunningApp

CLIENT_ID = "sim-test-client"
CLIENT_SECRET = "sim-test-secret-value"


def simulator_settings(**overrides: Any) -> SimulatorSettings:
    values: dict[str, Any] = {
        "generate": False,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "keepalive": "0.3s",
        "partitions": 15,
    }
    values.update(overrides)
    return SimulatorSettings(**values)


@pytest.fixture
def simulator_factory() -> Iterator[Callable[..., RunningApp]]:
    started: list[RunningApp] = []

    def start(**overrides: Any) -> RunningApp:
        running = RunningApp(build_app(simulator_settings(**overrides)))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def simulator(simulator_factory: Callable[..., RunningApp]) -> RunningApp:
    return simulator_factory()


def oauth_token(url: str, **form: str) -> requests.Response:
    data = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "openid,AdobeID",
    }
    data.update(form)
    return requests.post(f"{url}/ims/token/v3", data=data, timeout=5)


@pytest.fixture
def token(simulator: RunningApp) -> str:
    reply = oauth_token(simulator.url)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])

"""Endpoint discovery: the forced URL, the simulator's discovery service, the answer formats."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web

from services.common.errors import ConfigurationError, TransientFailure
from services.fetcher.discovery import (
    DiscoveryService,
    ForcedEndpoint,
    endpoint_discovery,
    endpoint_from_answer,
    resolve_endpoint,
)
from services.fetcher.server_conf import apply_server_conf
from services.fetcher.settings import FetcherSettings
from services.simulator.app import build_app
from tests.conftest import free_port
from tests.integration.servers import RunningApp, read_stream
from tests.integration.simulator.conftest import oauth_token, simulator_settings


@pytest.fixture
def serve() -> Iterator[Callable[[web.Application], RunningApp]]:
    """serve(app) -> the app running on a free loopback port, stopped afterwards."""
    started: list[RunningApp] = []

    def start(app: web.Application) -> RunningApp:
        running = RunningApp(app)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        running.stop()


@pytest.fixture
def simulator(serve: Callable[[web.Application], RunningApp]) -> RunningApp:
    return serve(build_app(simulator_settings()))


@pytest.fixture
def token(simulator: RunningApp) -> str:
    reply = oauth_token(simulator.url)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


def answering(body: str, content_type: str, status: int = 200, delay: float = 0) -> web.Application:
    """A stand-in discovery service answering every GET /v1/endpoints the same way."""

    async def handler(_request: web.Request) -> web.Response:
        if delay:
            await asyncio.sleep(delay)  # a sleep: the slow answer is the stand-in's job
        return web.Response(status=status, text=body, content_type=content_type)

    app = web.Application()
    app.router.add_get("/v1/endpoints", handler)
    return app


def discover(url: str, token: str | None = None, **kwargs: Any) -> str:
    service = DiscoveryService(url, (lambda: token) if token else None, **kwargs)
    try:
        return service.pipeline_endpoint()
    finally:
        service.close()


# Against the simulator ---------------------------------------------------------------------


def test_the_simulator_names_its_own_pipeline(simulator: RunningApp, token: str) -> None:
    assert discover(simulator.url, token) == simulator.url
    reply = requests.get(
        f"{simulator.url}/v1/endpoints", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json() == {"endpoints": [{"url": simulator.url, "region": "local"}]}


def test_the_discovered_endpoint_serves_the_pipeline(simulator: RunningApp, token: str) -> None:
    endpoint = resolve_endpoint(
        FetcherSettings(pipeline_endpoint="", discover_pipeline_endpoint=simulator.url),
        lambda: token,
    )
    injected = [{"messageId": "discovered-1", "partition": 3}]
    requests.post(
        f"{simulator.url}/simulator/envelopes", json=injected, timeout=5
    ).raise_for_status()
    got = read_stream(
        f"{endpoint}/pipeline/topics/triggers/messages",
        {"group": "discovery-test", "reset": "earliest"},
        token,
        count=1,
        match=lambda doc: "discovered-1" in str(doc),
    )
    assert any("discovered-1" in str(doc) for doc in got), got


def test_a_serverconf_without_forced_endpoint_is_resolved_by_discovery(
    simulator: RunningApp, token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT", raising=False)
    path = tmp_path / "serverConf.xml"
    path.write_text(
        f'<serverconf><pipelined authType="imsJwtToken" forcedPipelineEndpoint="" '
        f'discoverPipelineEndpoint="{simulator.url}" consumer="c"/></serverconf>'
    )
    settings = apply_server_conf(FetcherSettings(server_conf=str(path)))
    assert resolve_endpoint(settings, lambda: token) == simulator.url


def test_without_a_token_discovery_fails_transiently(simulator: RunningApp) -> None:
    with pytest.raises(TransientFailure, match="answered HTTP 401"):
        discover(simulator.url)


def test_a_refused_token_never_appears_in_the_error(simulator: RunningApp) -> None:
    bogus = "sim.not-a-token-0123456789"
    with pytest.raises(TransientFailure) as caught:
        discover(simulator.url, bogus)
    assert "401" in str(caught.value)
    assert bogus not in str(caught.value)


def test_a_pipeline_outage_fails_discovery_transiently(simulator: RunningApp, token: str) -> None:
    faults = requests.post(f"{simulator.url}/simulator/faults", json={"pipeline_503": 1}, timeout=5)
    faults.raise_for_status()
    with pytest.raises(TransientFailure, match="answered HTTP 503"):
        discover(simulator.url, token)
    assert discover(simulator.url, token) == simulator.url


def test_an_unreachable_service_fails_transiently() -> None:
    with pytest.raises(TransientFailure, match="unreachable: ConnectionError"):
        discover(f"http://127.0.0.1:{free_port()}", "a-token")


# Other answers, over real HTTP -------------------------------------------------------------


def test_a_plain_url_body_is_accepted(serve: Callable[[web.Application], RunningApp]) -> None:
    service = serve(answering("https://producer-pipeline-va7.adobe.net/\n", "text/plain"))
    assert discover(service.url) == "https://producer-pipeline-va7.adobe.net"


def test_a_slow_service_times_out(serve: Callable[[web.Application], RunningApp]) -> None:
    service = serve(answering('{"endpoints": [{"url": "http://x"}]}', "application/json", delay=2))
    with pytest.raises(TransientFailure, match="unreachable: ReadTimeout"):
        discover(service.url, timeout=(1.0, 0.2))


def test_an_answer_without_a_url_fails_transiently(
    serve: Callable[[web.Application], RunningApp],
) -> None:
    service = serve(answering('{"endpoints": []}', "application/json"))
    with pytest.raises(TransientFailure, match=r"names no http\(s\) URL"):
        discover(service.url)


def test_an_oversized_answer_is_refused(serve: Callable[[web.Application], RunningApp]) -> None:
    service = serve(answering("https://x.test/" + "a" * 100_000, "text/plain"))
    with pytest.raises(TransientFailure, match="more than 65536 bytes"):
        discover(service.url)


# Choosing the step -------------------------------------------------------------------------


def never_called() -> str:
    raise AssertionError("a forced endpoint needs no token")


def test_a_forced_endpoint_skips_discovery() -> None:
    settings = FetcherSettings(
        pipeline_endpoint="https://forced.example.test/",
        discover_pipeline_endpoint=f"http://127.0.0.1:{free_port()}",
    )
    assert isinstance(endpoint_discovery(settings, never_called), ForcedEndpoint)
    assert resolve_endpoint(settings, never_called) == "https://forced.example.test"


def test_neither_setting_is_a_configuration_error() -> None:
    settings = FetcherSettings(pipeline_endpoint="", discover_pipeline_endpoint="")
    with pytest.raises(ConfigurationError, match="TRIGGERLINE_FETCHER_DISCOVER_PIPELINE_ENDPOINT"):
        resolve_endpoint(settings, never_called)


# The answer formats ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ('{"endpoints": [{"url": "https://a.test/"}]}', "application/json", "https://a.test"),
        (
            '{"endpoints": [{"region": "va7"}, {"url": "ftp://b.test"}, {"url": "https://c.test"}]}',
            "application/json; charset=utf-8",
            "https://c.test",
        ),
        ('{"endpoints": ["https://d.test"]}', "", "https://d.test"),
        ('[{"url": "http://e.test:7790"}]', "application/json", "http://e.test:7790"),
        ('"https://f.test"', "application/json", "https://f.test"),
        ("https://g.test/\r\n", "text/plain", "https://g.test"),
        ("  http://127.0.0.1:7790  ", "", "http://127.0.0.1:7790"),
    ],
)
def test_accepted_answers(body: str, content_type: str, expected: str) -> None:
    assert endpoint_from_answer(body, content_type) == expected


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"endpoints": []}', "application/json"),
        ('{"endpoint": "https://a.test"}', "application/json"),
        ("{not json", "application/json"),
        ("not a url", "text/plain"),
        ("ftp://a.test", "text/plain"),
        ("https://a.test\nhttps://b.test", "text/plain"),
        ("https:// a.test", "text/plain"),
        ("", "text/plain"),
    ],
)
def test_refused_answers(body: str, content_type: str) -> None:
    with pytest.raises(ValueError, match=r"JSON|no http"):
        endpoint_from_answer(body, content_type)

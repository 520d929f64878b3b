"""The fetcher stays up and honest: uncovered partitions refuse to run; an auth outage while
upstream refuses the token loses nothing, turns readiness red, then green again."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from services.auth.app import build_app
from services.auth.credentials import load_credentials
from services.common.kafka import header
from tests.conftest import free_port
from tests.integration.auth.conftest import auth_settings
from tests.integration.fetcher.conftest import FetcherProcess
from tests.integration.servers import RunningApp
from tests.support.deadlines import wait_until

Stack = Callable[..., Any]


def _status(fetcher: FetcherProcess, page: str = "pipelined/status") -> requests.Response:
    return requests.get(f"http://127.0.0.1:{fetcher.status_port}/{page}", timeout=5)


def test_a_fetcher_configured_with_fewer_partitions_than_upstream_refuses_to_run(
    stack: Stack, fetcher_factory: Callable[..., FetcherProcess]
) -> None:
    simulator, auth = stack(simulator={"partitions": 4})
    fetcher = fetcher_factory(simulator.url, auth.url, upstream_partitions="2")
    fetcher.start()
    assert fetcher.process is not None
    code = fetcher.process.wait(60)
    assert code == 2, fetcher.tail()
    assert "partitions [2, 3] that no worker reads" in fetcher.tail()


def test_auth_down_while_upstream_refuses_the_token_loses_nothing(
    stack: Stack,
    fetcher_factory: Callable[..., FetcherProcess],
    consume_until: Any,
    key_pair: tuple[str, bytes],
) -> None:
    """Two minutes of 401 with auth killed: readiness red, workers alive, then all of it."""
    total = 3000
    simulator, _ = stack(simulator={"generate": True, "triggers": total, "rate": 20})
    port = free_port()
    settings = auth_settings(simulator, key_pair)
    auth = RunningApp(build_app(settings, load_credentials(settings)), port=port)
    fetcher = fetcher_factory(simulator.url, auth.url, stall_after_sec="10")
    fetcher.start()
    consume_until([fetcher.topics.triggers_raw.name], 100, deadline=60)
    # ready once every worker has read its pointer (one may stream before another has)
    wait_until(
        lambda: _status(fetcher, "readyz").status_code == 200,
        deadline=30,
        what=lambda: f"readiness before the outage: {_status(fetcher, 'readyz').text}",
    )

    auth.stop()  # auth killed ...
    requests.post(f"{simulator.url}/simulator/faults", json={"revoke_tokens": True}, timeout=5)
    outage_end = time.monotonic() + 120  # ... while upstream answers 401 to the cached token
    went_red = False
    while time.monotonic() < outage_end:
        went_red = went_red or _status(fetcher, "readyz").status_code == 503
        time.sleep(1)  # a sleep: the outage lasts its two minutes whatever readiness says
    assert went_red, "readiness stayed green through two minutes without a token"
    agent = _status(fetcher).json()["agents"][0]
    assert agent["stats"]["worker-restarts"] == 0, fetcher.tail()  # nothing escaped the loop
    assert fetcher.process is not None and fetcher.process.poll() is None

    auth = RunningApp(build_app(settings, load_credentials(settings)), port=port)
    try:
        consumed = consume_until([fetcher.topics.triggers_raw.name], total, deadline=240, settle=2)
        ids = [header(m.headers(), "message-id") for m in consumed.messages]
        assert len(ids) == total and len(set(ids)) == total, fetcher.tail()
        wait_until(
            lambda: _status(fetcher, "readyz").status_code == 200,
            30,
            every=0.5,
            what=lambda: f"readiness again: {_status(fetcher, 'readyz').text}",
        )
    finally:
        auth.stop()

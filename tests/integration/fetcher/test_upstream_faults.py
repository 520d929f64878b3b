"""Upstream faults: 401 after a revoked token, 503 with Retry-After, dropped streams, expired
pointers. Each ends with every upstream message in committed `triggers.raw` exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from services.common.kafka import header
from tests.conftest import Consumed
from tests.integration.fetcher.conftest import FetcherProcess, upstream_positions
from tests.integration.processor.triggers import adobe_envelope
from tests.support.deadlines import wait_until

Stack = Callable[..., Any]


def _stats(fetcher: FetcherProcess) -> dict[str, Any]:
    url = f"http://127.0.0.1:{fetcher.status_port}/pipelined/status"

    def agent() -> dict[str, Any]:
        found: dict[str, Any] = requests.get(url, timeout=5).json()["agents"][0]
        return found

    return wait_until(
        agent,
        30,
        every=0.2,
        what=lambda: f"the fetcher's status page:\n{fetcher.tail()}",
        ignoring=(requests.RequestException,),
    )


def _fault(simulator: Any, **faults: Any) -> None:
    requests.post(f"{simulator.url}/simulator/faults", json=faults, timeout=5).raise_for_status()


def _exactly_once(consumed: Consumed, total: int, fetcher: FetcherProcess) -> None:
    positions = upstream_positions(consumed)
    repeated = {pos: n for pos, n in positions.items() if n > 1}
    assert not repeated, f"{len(repeated)} repeated: {list(repeated.items())[:5]}"
    assert len(positions) == total, f"{total - len(positions)} missing\n{fetcher.tail()}"


def test_a_revoked_token_is_replaced_through_auth_and_nothing_is_lost(
    stack: Stack, fetcher_factory: Callable[..., FetcherProcess], consume_until: Any
) -> None:
    total = 1500
    simulator, auth = stack(simulator={"generate": True, "triggers": total, "rate": 500})
    fetcher = fetcher_factory(simulator.url, auth.url)
    fetcher.start()
    wait_until(
        lambda: _stats(fetcher)["stats"]["trigger-received"] > 0,
        30,
        every=0.2,
        what="the fetcher reading with its first token",
    )
    _fault(simulator, revoke_tokens=True)  # open streams end; the cached token now gets 401
    consumed = consume_until([fetcher.topics.triggers_raw.name], total, deadline=60, settle=2)
    _exactly_once(consumed, total, fetcher)
    assert "fresh token" in fetcher.tail()
    # the fetcher only ever held its own credential at auth, never the IMS secret or key
    assert not [k for k in fetcher.env if k.startswith(("TRIGGERLINE_AUTH_", "TRIGGERLINE_SIM"))]
    stats = requests.get(f"{simulator.url}/simulator/stats", timeout=5).json()
    assert stats["ims_calls"]["token_v3"] >= 2, stats  # auth fetched a second token


def test_503_with_retry_after_is_honoured(
    stack: Stack, fetcher_factory: Callable[..., FetcherProcess], consume_until: Any
) -> None:
    total = 200
    simulator, auth = stack(simulator={"generate": True, "triggers": total, "rate": 0})
    _fault(simulator, pipeline_503=4, retry_after=2)
    started = time.monotonic()
    fetcher = fetcher_factory(simulator.url, auth.url, processing_threads="1")
    fetcher.start()
    consumed = consume_until([fetcher.topics.triggers_raw.name], total, deadline=60, settle=1)
    _exactly_once(consumed, total, fetcher)
    # four 503s, each asking for 2 s: the one worker cannot have got through in under 8 s
    assert time.monotonic() - started >= 8
    assert _stats(fetcher)["http-request"]["last-failed-cnx-ms-ago"] is not None


def test_streams_dropped_mid_envelope_resume_from_the_pointer(
    stack: Stack, fetcher_factory: Callable[..., FetcherProcess], consume_until: Any
) -> None:
    total = 2000
    simulator, auth = stack(simulator={"generate": True, "triggers": total, "rate": 800})
    _fault(simulator, drop_streams=6, drop_after=150)
    fetcher = fetcher_factory(simulator.url, auth.url)
    fetcher.start()
    consumed = consume_until([fetcher.topics.triggers_raw.name], total, deadline=60, settle=2)
    _exactly_once(consumed, total, fetcher)
    assert _stats(fetcher)["stats"]["trigger-failures"] == 0  # half envelopes are not messages


def test_an_expired_pointer_is_reported_as_data_loss_with_the_count(
    stack: Stack, fetcher_factory: Callable[..., FetcherProcess], consume_until: Any
) -> None:
    simulator, auth = stack(simulator={"partitions": 1, "retention_messages": 50})
    fetcher = fetcher_factory(simulator.url, auth.url, upstream_partitions="1")
    fetcher.start()

    def inject(count: int, tag: str) -> None:
        mcid = "12345678901234567890123456789012345678"
        lines = [adobe_envelope(mcid=mcid, message_id=f"{tag}-{i}") for i in range(count)]
        requests.post(
            f"{simulator.url}/simulator/envelopes", json=lines, timeout=10
        ).raise_for_status()

    inject(10, "before")
    consume_until([fetcher.topics.triggers_raw.name], 10, deadline=30)
    fetcher.stop()  # pointer: partition 0 -> offset 10
    inject(200, "while-down")  # offsets 10..209; retention keeps only the last 50
    fetcher.start()
    consumed = consume_until([fetcher.topics.triggers_raw.name], 60, deadline=30, settle=2)
    ids = [header(m.headers(), "message-id") for m in consumed.messages]
    assert len(ids) == 60 and ids[-1] == "while-down-199"
    stats = _stats(fetcher)["stats"]
    assert stats["upstream-resets"] == 1
    assert stats["upstream-skipped-messages"] == 150  # offsets 10..159 expired unread
    assert "DATA LOSS upstream" in fetcher.tail()

"""The broker goes away mid-ingest: the fetcher stops reading upstream, holds its memory, and
when the broker returns every upstream message is in `triggers.raw` exactly once."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import requests

from services.common.kafka import header
from tests.integration.fetcher.conftest import FetcherProcess


def _current_messages(fetcher: FetcherProcess) -> int:
    url = f"http://127.0.0.1:{fetcher.status_port}/pipelined/status"
    stats = requests.get(url, timeout=5).json()["agents"][0]["stats"]
    return int(stats["current-messages"])


def test_broker_restart_loses_and_repeats_nothing_and_reading_pauses(
    stack: Callable[..., Any],
    fetcher_factory: Callable[..., FetcherProcess],
    local_broker: Callable[[str], None],
    consume_until: Any,
) -> None:
    total = 6000
    simulator, auth = stack(simulator={"generate": True, "triggers": total, "rate": 600})
    fetcher = fetcher_factory(simulator.url, auth.url, max_buffered_bytes="2000000")
    fetcher.start()
    # sleeps: the fault's schedule, three seconds into the ingest, then the broker stays away
    # three seconds, then four more in which the fetcher must not keep reading into memory
    time.sleep(3)
    local_broker("down")
    time.sleep(3)
    held = _current_messages(fetcher)
    time.sleep(4)
    # upstream keeps producing, but the fetcher does not keep reading into memory
    assert _current_messages(fetcher) - held < 2000
    local_broker("up")
    consumed = consume_until([fetcher.topics.triggers_raw.name], total, deadline=150, settle=3)
    seen: Counter[tuple[str | None, str | None]] = Counter(
        (header(m.headers(), "upstream-partition"), header(m.headers(), "upstream-offset"))
        for m in consumed.messages
    )
    repeated = {k: n for k, n in seen.items() if n > 1}
    assert not repeated, list(repeated.items())[:5]
    assert len(seen) == total, f"{total - len(seen)} missing\n{fetcher.tail()}"

"""Exactly-once ingestion from the simulator into committed `triggers.raw`, crashes included."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from services.common.kafka import header
from services.common.models import Outcome, OutcomeStatus
from services.common.serde import envelope_serde, outcome_serde
from tests.integration.fetcher.conftest import FetcherProcess, upstream_positions
from tests.integration.processor.triggers import adobe_envelope
from tests.support.deadlines import wait_until

Stack = Callable[..., Any]


def _status(fetcher: FetcherProcess) -> dict[str, Any]:
    url = f"http://127.0.0.1:{fetcher.status_port}/pipelined/status"
    body: dict[str, Any] = requests.get(url, timeout=5).json()
    return body


def _wait_status(fetcher: FetcherProcess, deadline: float = 30) -> dict[str, Any]:
    return wait_until(
        lambda: _status(fetcher),
        deadline,
        every=0.2,
        what=lambda: f"the fetcher's status page:\n{fetcher.tail()}",
        ignoring=(requests.RequestException,),
    )


def test_every_upstream_message_lands_once_with_its_headers(
    stack: Stack,
    fetcher_factory: Callable[..., FetcherProcess],
    consume_until: Any,
    tmp_path: Path,
) -> None:
    total = 400
    simulator, auth = stack(simulator={"generate": True, "triggers": total, "rate": 0, "seed": 3})
    dump = tmp_path / "pipelined.json"
    fetcher = fetcher_factory(
        simulator.url, auth.url, dump_state_period_sec="0.5", dump_state_path=str(dump)
    )
    fetcher.start()
    consumed = consume_until([fetcher.topics.triggers_raw.name], total, deadline=60, settle=2)
    positions = upstream_positions(consumed)
    assert len(positions) == total, fetcher.tail()
    assert max(positions.values()) == 1
    records = [(m, envelope_serde().decode(m.value())) for m in consumed.messages]
    for message, record in records:
        assert (
            header(message.headers(), "message-id")
            == record["pipelineMessage"]["header"]["messageId"]
        )
        assert message.key() and message.key().strip(b"0"), "no placeholder mcId as a key"
    # The simulator also makes triggers without a usable mcId (keyed otherwise: unit tests);
    # one with a real mcId is keyed by it.
    with_mcid = [
        (message, record)
        for message, record in records
        if str(record["pipelineMessage"]["trigger"].get("mcId") or "").strip("0 ")
    ]
    assert with_mcid
    message, record = with_mcid[0]
    assert message.key().decode() == record["pipelineMessage"]["trigger"]["mcId"]
    status = _wait_status(fetcher)["agents"][0]
    assert status["stats"]["trigger-processed"] == total
    assert status["stats"]["pointer-flushes"] >= 1
    assert status["stats"]["ping-received"] >= 1
    assert len(status["pointer"]["current-offsets"].split(",")) == 15
    # dumpStatePeriodSec: the same document, written to a file
    wait_until(dump.exists, 10, every=0.2, what=f"the state dump {dump}")
    dumped = json.loads(dump.read_text())
    assert dumped["agents"][0]["consumer"] == status["consumer"]


def test_kill_minus_nine_at_random_moments_loses_and_repeats_nothing(
    stack: Stack, fetcher_factory: Callable[..., FetcherProcess], consume_until: Any
) -> None:
    total = 6000
    simulator, auth = stack(
        simulator={"generate": True, "triggers": total, "rate": 1500, "seed": 11}
    )
    fetcher = fetcher_factory(
        simulator.url, auth.url, pointer_flush_message_count="200", linger_ms="20"
    )
    rng = random.Random(5)
    for _ in range(4):
        fetcher.start()
        time.sleep(rng.uniform(0.8, 2.5))  # a sleep: the kill's random moment is the subject
        fetcher.kill()  # SIGKILL: no flush, no abort, an open transaction left behind
    fetcher.start()
    consumed = consume_until([fetcher.topics.triggers_raw.name], total, deadline=120, settle=3)
    positions = upstream_positions(consumed)
    duplicates = {pos: n for pos, n in positions.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} repeated, e.g. {list(duplicates.items())[:5]}"
    assert len(positions) == total, f"{total - len(positions)} missing\n{fetcher.tail()}"


def test_malformed_envelopes_go_to_the_dlq_with_an_outcome_and_the_stream_goes_on(
    stack: Stack, fetcher_factory: Callable[..., FetcherProcess], consume_until: Any
) -> None:
    simulator, auth = stack()
    fetcher = fetcher_factory(simulator.url, auth.url)
    fetcher.start()
    good = adobe_envelope(mcid="1" * 38, message_id="good-after-bad")
    response = requests.post(
        f"{simulator.url}/simulator/envelopes",
        json=['{"envelopeType": "DATA", "topic": ', good],
        timeout=5,
    )
    assert response.status_code == 200, response.text
    dlq = consume_until([fetcher.topics.triggers_dlq.name], 1, deadline=60)
    assert len(dlq.messages) == 1, fetcher.tail()
    assert dlq.messages[0].value() == b'{"envelopeType": "DATA", "topic": '
    assert header(dlq.messages[0].headers(), "x-error-reason") == "not_json"
    assert header(dlq.messages[0].headers(), "x-service") == "fetcher"
    raw = consume_until([fetcher.topics.triggers_raw.name], 1, deadline=30)
    assert header(raw.messages[0].headers(), "message-id") == "good-after-bad"
    outcomes = consume_until([fetcher.topics.outcomes.name], 1, deadline=30)
    outcome = Outcome.from_record(outcome_serde().decode(outcomes.messages[0].value()))
    assert outcome.status is OutcomeStatus.INVALID and outcome.reason == "not_json"
    assert _wait_status(fetcher)["agents"][0]["stats"]["trigger-failures"] == 1


def test_two_replicas_split_the_partitions_without_overlap(
    stack: Stack, fetcher_factory: Callable[..., FetcherProcess], consume_until: Any
) -> None:
    total = 3000
    simulator, auth = stack(simulator={"generate": True, "triggers": total, "rate": 0, "seed": 9})
    replicas = [
        fetcher_factory(simulator.url, auth.url, replica_count="2", replica_index=str(index))
        for index in range(2)
    ]
    for replica in replicas:
        replica.start()
    consumed = consume_until([replicas[0].topics.triggers_raw.name], total, deadline=60, settle=2)
    positions = upstream_positions(consumed)
    assert len(positions) == total and max(positions.values()) == 1
    owned = []
    for replica in replicas:
        offsets = _wait_status(replica)["agents"][0]["pointer"]["current-offsets"]
        owned.append({int(item.split(":")[0]) for item in offsets.split(",")})
    assert owned[0] == set(range(0, 15, 2)) and owned[1] == set(range(1, 15, 2))

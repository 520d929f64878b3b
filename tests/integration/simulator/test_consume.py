"""The pipeline consume API over real HTTP: tokens, parameters, offsets, retention, SYNC, faults."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from services.fetcher.envelopes import Data, parse_envelope
from services.simulator.generator import PIPELINE_MESSAGE, TRIGGER
from tests.integration.servers import RunningApp, read_stream
from tests.integration.simulator.conftest import oauth_token
from tests.support.deadlines import wait_until

TOPIC_PATH = "/pipeline/topics/triggers/messages"


def envelope(number: int, partition: int | None = None) -> dict[str, Any]:
    """A valid DATA envelope (Adobe's composed fixture, section 4.3), numbered by messageId."""
    document: dict[str, Any] = {
        "envelopeType": "DATA",
        PIPELINE_MESSAGE: {
            "header": {
                "messageType": "TRIGGER",
                "source": "triggers",
                "sentTime": 1469164250100,
                "imsOrg": "C5E7154A5A1B2C3D4E5F98A4@AdobeOrg",
                "messageId": f"00000000-0000-4000-8000-{number:012d}",
                "properties": [{"name": "trace", "value": "false"}],
            },
            TRIGGER: {
                "triggerId": "3e8a2ba7-fccc-49bb-bdac-33ee33cf02bf",
                "triggerTimestamp": 1469164250100,
                "mcId": "12345678901234567890123456789012345678",
                "enrichments": {"analyticsHitSummary": {"products": {}, "dimensions": {}}},
                "triggerPath": [],
            },
        },
    }
    if partition is not None:
        document["partition"] = partition
    return copy.deepcopy(document)


def inject(url: str, items: list[Any]) -> list[dict[str, int]]:
    reply = requests.post(f"{url}/simulator/envelopes", json=items, timeout=5)
    assert reply.status_code == 200, reply.text
    return list(reply.json())


def message_number(doc: dict[str, Any]) -> int:
    return int(doc[PIPELINE_MESSAGE]["header"]["messageId"].rsplit("-", 1)[1])


def is_data(doc: dict[str, Any]) -> bool:
    return doc.get("envelopeType") == "DATA"


def test_the_stream_refuses_a_missing_unknown_or_expired_token(
    simulator_factory: Callable[..., RunningApp],
) -> None:
    sim = simulator_factory(oauth_token_lifetime="1s")
    url = f"{sim.url}{TOPIC_PATH}"
    missing = requests.get(url, params={"group": "g"}, timeout=5)
    unknown = requests.get(
        url, params={"group": "g"}, headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert (missing.status_code, unknown.status_code) == (401, 401)
    assert missing.json()["error"] == "unauthorized"
    token = oauth_token(sim.url).json()["access_token"]
    with requests.get(
        url,
        params={"group": "g"},
        headers={"Authorization": f"Bearer {token}"},
        stream=True,
        timeout=5,
    ) as fresh:
        assert fresh.status_code == 200
    time.sleep(1.1)  # a sleep: the token's one-second lifetime must run out
    expired = requests.get(
        url, params={"group": "g"}, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert expired.status_code == 401


def test_group_is_required_and_bad_parameters_get_400(simulator: RunningApp, token: str) -> None:
    url = f"{simulator.url}{TOPIC_PATH}"
    headers = {"Authorization": f"Bearer {token}"}
    for params in (
        {},
        {"group": "g", "assign": "0-1"},
        {"group": "g", "assign": "99:0"},
        {"group": "g", "reset": "smallest"},
        {"group": "g", "syncInterval": "often"},
    ):
        reply = requests.get(url, params=params, headers=headers, timeout=5)
        assert reply.status_code == 400, params
        assert reply.json()["error"] == "bad_request"
    unknown_topic = requests.get(
        f"{simulator.url}/pipeline/topics/nope/messages",
        params={"group": "g"},
        headers=headers,
        timeout=5,
    )
    assert unknown_topic.status_code == 404


def test_assign_streams_only_the_named_partitions_from_the_given_offsets(
    simulator: RunningApp, token: str
) -> None:
    inject(simulator.url, [envelope(i, partition=2) for i in range(5)])
    inject(simulator.url, [envelope(100 + i, partition=7) for i in range(3)])
    got = read_stream(
        f"{simulator.url}{TOPIC_PATH}",
        {"group": "g", "assign": "2:3"},
        token,
        count=2,
        match=is_data,
    )
    data = [doc for doc in got if is_data(doc)]
    assert [(d["partition"], d["offset"], message_number(d)) for d in data] == [
        (2, 3, 3),
        (2, 4, 4),
    ]
    # nothing from partition 7 follows, even after waiting a little
    more = read_stream(
        f"{simulator.url}{TOPIC_PATH}",
        {"group": "g", "assign": "2:5"},
        token,
        count=1,
        deadline=0.8,
        match=is_data,
    )
    assert [doc for doc in more if is_data(doc)] == []


def test_an_expired_offset_falls_back_to_reset(
    simulator_factory: Callable[..., RunningApp],
) -> None:
    sim = simulator_factory(retention_messages=3)
    token = oauth_token(sim.url).json()["access_token"]
    inject(sim.url, [envelope(i, partition=1) for i in range(6)])  # offsets 0..5, 3..5 kept
    url = f"{sim.url}{TOPIC_PATH}"
    earliest = read_stream(
        url, {"group": "g", "assign": "1:0", "reset": "earliest"}, token, 3, match=is_data
    )
    assert [d["offset"] for d in earliest if is_data(d)] == [3, 4, 5]
    later: list[dict[str, Any]] = []

    def inject_soon() -> None:
        # once the reader below has been reset to the end (the second reset), so it must see
        # only this one
        wait_until(
            lambda: requests.get(f"{sim.url}/simulator/stats", timeout=5).json()["resets"] >= 2,
            what="the reader's reset to latest",
        )
        inject(sim.url, [envelope(99, partition=1)])

    writer = threading.Thread(target=inject_soon)
    writer.start()
    later = read_stream(url, {"group": "g", "assign": "1:0"}, token, 1, match=is_data)
    writer.join()
    # reset defaults to latest: the expired offset skips the backlog, only the new one comes
    assert [(d["offset"], message_number(d)) for d in later if is_data(d)] == [(6, 99)]
    stats = requests.get(f"{sim.url}/simulator/stats", timeout=5).json()
    assert stats["resets"] == 2
    assert stats["partitions"]["1"] == {"earliest": 4, "high": 7}


def test_sync_markers_arrive_at_the_interval_and_commit_group_offsets(
    simulator: RunningApp, token: str
) -> None:
    inject(simulator.url, [envelope(i, partition=4) for i in range(4)])
    url = f"{simulator.url}{TOPIC_PATH}"
    started = time.monotonic()
    got = read_stream(
        url,
        {"group": "sg", "reset": "earliest", "syncInterval": "200"},
        token,
        count=4,
        match=lambda doc: doc.get("envelopeType") == "SYNC",
    )
    elapsed = time.monotonic() - started
    syncs = [doc for doc in got if doc.get("envelopeType") == "SYNC"]
    assert len(syncs) == 4 and 0.6 <= elapsed < 2.5, (elapsed, got)
    assert set(syncs[-1]) == {"envelopeType", "syncMarker"}
    assert len([doc for doc in got if is_data(doc)]) == 4
    reply = requests.post(
        f"{simulator.url}/pipeline/consumer/sync",
        data=syncs[-1]["syncMarker"],
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        timeout=5,
    )
    assert reply.status_code == 200, reply.text
    inject(simulator.url, [envelope(50, partition=4)])
    resumed = read_stream(url, {"group": "sg", "reset": "earliest"}, token, 1, match=is_data)
    assert [(d["offset"], message_number(d)) for d in resumed if is_data(d)] == [(4, 50)]
    bad = requests.post(
        f"{simulator.url}/pipeline/consumer/sync",
        data="not-a-marker",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        timeout=5,
    )
    assert bad.status_code == 400
    unauthenticated = requests.post(
        f"{simulator.url}/pipeline/consumer/sync", data=syncs[-1]["syncMarker"], timeout=5
    )
    assert unauthenticated.status_code == 401


def test_generated_stream_is_ndjson_and_every_envelope_parses(
    simulator_factory: Callable[..., RunningApp],
) -> None:
    sim = simulator_factory(generate=True, triggers=40, rate=0, seed=7)
    token = oauth_token(sim.url).json()["access_token"]
    stats = wait_until(
        lambda: (s := requests.get(f"{sim.url}/simulator/stats", timeout=5).json())["done"] and s
    )
    assert stats["emitted"] == 40 and stats["target"] == 40
    assert sum(p["high"] for p in stats["partitions"].values()) == 40
    got = read_stream(
        f"{sim.url}{TOPIC_PATH}", {"group": "g", "reset": "earliest"}, token, 40, match=is_data
    )
    data = [doc for doc in got if is_data(doc)]
    assert len(data) == 40
    last: dict[int, int] = {}
    for doc in data:
        parsed = parse_envelope(json.dumps(doc).encode())
        assert isinstance(parsed, Data)
        assert parsed.offset > last.get(parsed.partition, -1)
        last[parsed.partition] = parsed.offset


def test_faults_503_500_drop_and_revoke(simulator: RunningApp, token: str) -> None:
    url = f"{simulator.url}{TOPIC_PATH}"
    headers = {"Authorization": f"Bearer {token}"}
    faults = f"{simulator.url}/simulator/faults"
    assert requests.post(faults, json={"pipeline_503": 1, "retry_after": 7}, timeout=5).ok
    unavailable = requests.get(url, params={"group": "g"}, headers=headers, timeout=5)
    assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "7"
    assert requests.post(faults, json={"pipeline_500": 1}, timeout=5).ok
    assert requests.get(url, params={"group": "g"}, headers=headers, timeout=5).status_code == 500
    inject(simulator.url, [envelope(i, partition=3) for i in range(3)])
    assert requests.post(faults, json={"drop_streams": 1, "drop_after": 1}, timeout=5).ok
    received = b""
    with requests.get(
        url, params={"group": "g", "assign": "3:0"}, headers=headers, stream=True, timeout=(2, 2)
    ) as reply:
        try:
            for chunk in reply.iter_content(chunk_size=None):
                received += chunk
        except requests.exceptions.ChunkedEncodingError:
            pass  # the connection was cut: what the fault is for
    whole, _, partial = received.partition(b"\n")
    assert parse_envelope(whole).offset == 0  # type: ignore[union-attr]
    assert partial and b"\n" not in partial  # the second envelope was cut mid-way
    assert len(partial) < len(whole)
    assert requests.post(faults, json={"nonsense": 1}, timeout=5).status_code == 400
    revoked = requests.post(faults, json={"revoke_tokens": True}, timeout=5).json()
    assert revoked["revoked_tokens"] >= 1
    assert requests.get(url, params={"group": "g"}, headers=headers, timeout=5).status_code == 401


def test_raw_lines_can_be_injected_for_malformed_envelopes(
    simulator: RunningApp, token: str
) -> None:
    reply = requests.post(
        f"{simulator.url}/simulator/envelopes?partition=5",
        data='{"envelopeType": "DATA", \n',
        headers={"Content-Type": "text/plain"},
        timeout=5,
    )
    assert reply.json() == [{"partition": 5, "offset": 0}]
    got = read_stream(f"{simulator.url}{TOPIC_PATH}", {"group": "g", "assign": "5:0"}, token, 1)
    assert got == [{"_raw": '{"envelopeType": "DATA", '}]

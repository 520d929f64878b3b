"""`/pipelined/status` speaks Adobe's language: every documented indicator that means something
here is on the page, with values measured from what the workers did."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from services.fetcher.rules.cursor import Cursor
from services.fetcher.status import FetcherStatus

# Adobe's documented indicators, copied from the project's reference so a bare checkout can test
# them; the copy is checked against the reference wherever the reference is beside the checkout.
DOCUMENTED = Path(__file__).parents[2] / "fixtures" / "adobe_pipelined_status.md"
REFERENCE = Path(__file__).parents[3].parent / "shared" / "reference" / "adobe-pipeline.md"
# Shown by Adobe, meaningless in a fetcher (docs/operations.md says why): other message kinds,
# and JavaScript routing, which is the processor's job here.
NOT_MEANINGFUL = {"profile-received", "push-id-received", "routing-JS-custom"}
# Parts of the sample that are data, not indicators: routing table entries and the agent name.
NOT_INDICATORS = {"aliases", "triggers", "name"}


def section_9(text: str) -> str:
    start = text.index("## 9. Status endpoint")
    end = text.find("## 10.", start)
    return text[start : end if end >= 0 else len(text)].strip()


def documented_names() -> set[str]:
    section = section_9(DOCUMENTED.read_text())
    quoted = re.findall(r'"([a-zA-Z][a-zA-Z-]+)":', section)
    coded = [name.split(".")[-1] for name in re.findall(r"`([a-zA-Z.-]+)`", section)]
    return {
        n
        for n in quoted + coded
        if "-" in n or n in {"agents", "consumer", "pointer", "routing", "stats", "settings"}
    }


def test_the_copy_of_adobes_indicators_matches_the_reference() -> None:
    copy = section_9(DOCUMENTED.read_text())
    if REFERENCE.exists():  # beside the checkout in CI and on developer machines
        assert section_9(REFERENCE.read_text()) == copy
    assert "pending-release-messages" in copy and "trigger-discarded" in copy


def keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for child in value.values() for k in keys(child)}
    if isinstance(value, list):
        return {k for child in value for k in keys(child)}
    return set()


def busy_status() -> FetcherStatus:
    status = FetcherStatus("prod_consumer", "pipeline.example", 1000, 5000, 2, {"triggers": {}})
    status.register("triggers-w0", [0, 2])
    status.register("triggers-w1", [1])
    status.resumed("triggers-w0", "triggers", {0: 10, 2: 30})
    status.resumed("triggers-w1", "triggers", {1: 20})
    status.read("triggers-w0", 5000, 5)
    status.handled("triggers-w0", 5, 4, 1, pending=4, seconds=0.002)
    status.retries("triggers-w0", 1)
    status.failed_envelope("triggers-w0")
    status.discarded_envelope()
    status.flushed("triggers-w0", "triggers", {0: Cursor(14)}, 4, 0.015)
    status.worker_down("triggers-w1", "RecursionError: boom")
    return status


def test_every_meaningful_indicator_of_adobes_page_is_on_ours() -> None:
    documented = documented_names() - NOT_INDICATORS
    assert len(documented) > 30  # the parse found the section's names
    page = keys(busy_status().snapshot())
    missing = sorted(documented - NOT_MEANINGFUL - page)
    assert not missing, f"documented indicators missing from /pipelined/status: {missing}"
    assert not NOT_MEANINGFUL & page  # left out, never shown as a constant


def test_the_page_reports_what_the_workers_did() -> None:
    agent = busy_status().snapshot()["agents"][0]
    stats = agent["stats"]
    assert agent["pointer"]["current-offsets"] == "0:14,1:20,2:30"  # from start-up, then flushes
    assert stats["trigger-received"] == 4 and stats["ping-received"] == 1
    assert stats["trigger-processed"] == 4 and stats["trigger-failures"] == 1
    assert stats["current-retries"] == 1 and stats["trigger-discarded"] == 1
    assert stats["pending-release-messages"] == 0  # the flush released them
    assert stats["average-trigger-processing-time-ms"] == 0.5  # 2 ms over 4 envelopes
    assert stats["average-pointer-flush-time-ms"] == 15.0
    assert stats["worker-restarts"] == 1
    threads = {t["name"]: t for t in agent["threads"]}
    assert threads["triggers-w1"]["state"] == "restarting"
    assert threads["triggers-w0"]["partitions"] == "0,2"
    assert agent["settings"]["retry-validity-duration-ms"] == 300000

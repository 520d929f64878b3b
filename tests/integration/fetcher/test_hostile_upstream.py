"""Data our simulator never makes, through the real fetcher on the real broker.

The corpus (tests/fixtures/upstream_corpus.jsonl) starts from Adobe's published samples and
varies them: absent or zero ids, missing and extra dimensions, huge arrays, numbers as strings,
truncated JSON, invalid UTF-8, 2,000-deep nesting, 1 MB and 10 MB lines. Every line must end in
its documented outcome, the workers must never die, and `triggers.raw` plus the dead-letter
topic must account for every line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from confluent_kafka import Message

from tests.conftest import Consumed
from tests.integration.fetcher.conftest import FetcherProcess
from tests.support.kafka_messages import header_of
from tests.support.upstream_corpus import CorpusCase, load_corpus

Stack = Callable[..., Any]
# The fetcher's resident memory must stay under this while it reads a 10 MB line, a 20,000-hit
# array and everything else: it holds at most max_line_bytes (1 MB) of one line, plus the
# 64 KiB head of an oversized one. Measured: 70 MiB peak over the whole corpus (resting ~60).
RSS_BOUND_MIB = 100


def _positioned(case: CorpusCase, offset: int) -> bytes:
    """A valid line placed where the simulator stores it: partition 0, the given offset.

    The fetcher trusts the envelope's own position (that is what exactly-once is keyed on), so
    a valid line must say where it is; only its digits change, strings stay strings.
    """
    line = re.sub(rb'("partition"\s*:\s*"?)\d+', rb"\g<1>0", case.line, count=1)
    return re.sub(rb'("offset"\s*:\s*"?)\d+', rb"\g<1>%d" % offset, line, count=1)


def _peak_rss_mib(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def _status(fetcher: FetcherProcess, page: str = "pipelined/status") -> requests.Response:
    return requests.get(f"http://127.0.0.1:{fetcher.status_port}/{page}", timeout=5)


def _dead_letter_digest(message: Message) -> str:
    return (
        header_of(message, "x-original-sha256")
        or hashlib.sha256(message.value() or b"").hexdigest()
    )


def test_every_corpus_line_ends_in_its_documented_outcome(
    stack: Stack, fetcher_factory: Callable[..., FetcherProcess], consume_until: Any
) -> None:
    corpus = load_corpus()
    simulator, auth = stack(simulator={"partitions": 1})
    lines = [
        _positioned(case, i) if case.expect == "raw" else case.line for i, case in enumerate(corpus)
    ]
    reply = requests.post(
        f"{simulator.url}/simulator/envelopes",
        data=b"\n".join(lines) + b"\n",
        headers={"Content-Type": "application/octet-stream"},
        timeout=60,
    )
    reply.raise_for_status()
    assert [p["offset"] for p in reply.json()] == list(range(len(corpus)))

    fetcher = fetcher_factory(
        simulator.url, auth.url, upstream_partitions="1", processing_threads="1"
    )
    fetcher.start()
    raw_cases = [c for c in corpus if c.expect == "raw"]
    dlq_cases = [c for c in corpus if c.expect == "dlq"]
    topics = fetcher.topics
    raw: Consumed = consume_until([topics.triggers_raw.name], len(raw_cases), deadline=90)
    dlq: Consumed = consume_until([topics.triggers_dlq.name], len(dlq_cases), deadline=60, settle=2)

    written = {int(header_of(m, "upstream-offset") or -1) for m in raw.messages}
    expected_raw = {i for i, case in enumerate(corpus) if case.expect == "raw"}
    missing = sorted(corpus[i].name for i in expected_raw - written)
    assert not missing, f"valid lines not in triggers.raw: {missing}\n{fetcher.tail()}"
    assert len(raw.messages) == len(raw_cases), "a valid line was written twice"

    reasons = {_dead_letter_digest(m): header_of(m, "x-error-reason") for m in dlq.messages}
    wrong = {
        case.name: (case.reason, reasons.get(hashlib.sha256(case.line).hexdigest(), "absent"))
        for case in dlq_cases
        if reasons.get(hashlib.sha256(case.line).hexdigest()) != case.reason
    }
    assert not wrong, f"case: (expected reason, got): {wrong}"
    assert len(dlq.messages) == len(dlq_cases), "a bad line was dead-lettered twice"
    for message in dlq.messages:  # every dead letter fits, and says what it cut
        assert len(message.value() or b"") <= 256 * 1024
        if header_of(message, "x-truncated"):
            assert int(header_of(message, "x-original-size") or 0) > 256 * 1024

    agent = _status(fetcher).json()["agents"][0]
    assert agent["stats"]["worker-restarts"] == 0, fetcher.tail()
    assert agent["stats"]["trigger-failures"] == len(dlq_cases)
    assert all(thread["state"] == "running" for thread in agent["threads"])
    assert _status(fetcher, "readyz").status_code == 200
    assert fetcher.process is not None and fetcher.process.poll() is None
    peak = _peak_rss_mib(fetcher.process.pid)
    print(f"fetcher peak RSS over the corpus: {peak:.0f} MiB (bound {RSS_BOUND_MIB})")
    assert peak < RSS_BOUND_MIB, f"fetcher peaked at {peak:.0f} MiB"

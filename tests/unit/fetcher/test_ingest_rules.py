"""The fetcher's new pure pieces: framing bounds, identities, cursors, handling, retries, health."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from services.common.dlq import DEAD_LETTER_MAX_VALUE, bounded_value
from services.common.errors import InvalidInput
from services.fetcher.buffer import Closed, LineBuffer
from services.fetcher.envelopes import (
    Data,
    EnvelopeRules,
    Rejected,
    Sync,
    parse_line,
)
from services.fetcher.framing import HEAD_BYTES, LineFramer, Oversized
from services.fetcher.positions import position_hint
from services.fetcher.rules.cursor import Cursor
from services.fetcher.rules.handling import DeadLetter, Ping, Skip, Write, decide
from services.fetcher.rules.health import WorkerView, not_ready_reason
from services.fetcher.rules.partitions import marker_partitions, uncovered
from services.fetcher.rules.retry import RetryPolicy, Verdict, after_failure, first_failure
from services.simulator.rules.consume import encode_marker

FIXTURES = Path(__file__).parents[2] / "fixtures"
RULES = EnvelopeRules()
TRIGGER = "com.adobe.mcloud.protocol.trigger"
MESSAGE = "com.adobe.mcloud.pipeline.pipelineMessage"


def composed() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / "campaign_composed.json").read_text())
    return document


def line(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


# --- framing -------------------------------------------------------------------------------


def test_framer_splits_lines_keeps_partial_ones_and_skips_keep_alives() -> None:
    framer = LineFramer(100)
    assert framer.feed(b'{"a":1}\r\n\n  \n{"b"') == [b'{"a":1}\r']
    assert framer.feed(b":2}\n") == [b'{"b":2}']
    assert framer.remainder() is None


def test_a_line_over_the_bound_is_never_buffered_whole() -> None:
    framer = LineFramer(1000)
    big = b"x" * 5000
    frames = []
    for start in range(0, len(big), 700):
        frames += framer.feed(big[start : start + 700])
        assert framer.buffered <= 1000  # memory stays at the bound however long the line
    frames += framer.feed(b'\n{"next":1}\n')
    oversized, following = frames
    assert isinstance(oversized, Oversized)
    assert oversized.size == 5000
    assert oversized.sha256 == hashlib.sha256(big).hexdigest()
    assert oversized.head == big[:HEAD_BYTES]
    assert following == b'{"next":1}'


def test_a_stream_that_ends_inside_an_oversized_line_yields_it() -> None:
    framer = LineFramer(1024)
    assert framer.feed(b"y" * 3000) == []
    rest = framer.remainder()
    assert isinstance(rest, Oversized) and rest.size == 3000


def test_a_complete_line_over_the_bound_in_one_chunk_is_oversized_too() -> None:
    (frame,) = LineFramer(1024).feed(b"z" * 2000 + b"\n")
    assert isinstance(frame, Oversized) and frame.size == 2000


# --- envelopes: identities, depth, numbers -------------------------------------------------


@pytest.mark.parametrize("mc_id", [None, "", "   ", "0" * 38, 0])
def test_a_trigger_without_a_usable_mcid_is_keyed_by_its_declared_id(mc_id: object) -> None:
    document = composed()
    if mc_id is None:
        del document[MESSAGE][TRIGGER]["mcId"]
    else:
        document[MESSAGE][TRIGGER]["mcId"] = mc_id
    (parsed,) = parse_line(line(document), RULES)
    assert isinstance(parsed, Data)
    assert parsed.key == "PI4INE1ETDF6UK35GO13X7HO2ITLJHVH"


def test_no_identity_at_all_is_rejected_with_its_position() -> None:
    document: dict[str, Any] = json.loads((FIXTURES / "adobe_io_sample.json").read_text())
    (parsed,) = parse_line(line(document), RULES)
    assert isinstance(parsed, Rejected)
    assert parsed.error.reason == "no_identity"
    assert parsed.position == (13, 438465548)


def test_an_email_only_trigger_is_keyed_by_its_message_id() -> None:
    document = composed()
    trigger = document[MESSAGE][TRIGGER]
    trigger["mcId"] = "0" * 38
    dims = trigger["enrichments"]["analyticsHitSummary"]["dimensions"]
    for key in [k for k in dims if k.strip() == "eVar01"]:
        del dims[key]
    dims["eVar9"] = {"data": ["", "Shopper@Example.com"]}
    (parsed,) = parse_line(line(document), EnvelopeRules(email_dimensions=("eVar9",)))
    assert isinstance(parsed, Data)
    assert parsed.key == document[MESSAGE]["header"]["messageId"]


def test_back_to_back_objects_on_one_line_are_each_read() -> None:
    first, second = composed(), composed()
    second["offset"] += 1
    parsed = parse_line(line(first) + b" " + line(second) + b'{"envelopeType":"SYNC"}', RULES)
    assert [type(p) for p in parsed] == [Data, Data, Sync]
    assert [p.offset for p in parsed if isinstance(p, Data)] == [1500435, 1500436]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"offset": 2**63}, "bad_field"),
        ({"offset": "1.5"}, "bad_field"),
        ({"offset": True}, "bad_field"),
        ({"partition": {"p": 1}}, "bad_field"),
        ({"envelopeType": "data"}, "unknown_envelope_type"),
    ],
)
def test_bad_numbers_are_rejected_not_raised(change: dict[str, Any], reason: str) -> None:
    (parsed,) = parse_line(line({**composed(), **change}), RULES)
    assert isinstance(parsed, Rejected)
    assert parsed.error.reason == reason


def test_numbers_as_strings_and_a_null_sent_time_are_read() -> None:
    document = {**composed(), "offset": "1500435", "partition": "4", "createTime": "1469164250123"}
    document[MESSAGE]["header"]["sentTime"] = None
    (parsed,) = parse_line(line(document), RULES)
    assert isinstance(parsed, Data)
    assert (parsed.partition, parsed.offset) == (4, 1500435)
    assert parsed.record["pipelineMessage"]["header"]["sentTime"] is None


@pytest.mark.parametrize("depth", [100, 300, 2000])
def test_deep_nesting_is_rejected_at_the_configured_depth(depth: int) -> None:
    document = composed()
    document[MESSAGE][TRIGGER]["enrichments"]["deep"] = "HOLE"
    nested = b'{"n":' * depth + b'"leaf"' + b"}" * depth
    (parsed,) = parse_line(line(document).replace(b'"HOLE"', nested), EnvelopeRules(max_depth=64))
    assert isinstance(parsed, Rejected)
    assert parsed.error.reason == "too_deep"


def test_position_hint_reads_the_start_of_a_line_too_long_to_parse() -> None:
    assert position_hint(line(composed())[:300]) == (4, 1500435)
    assert position_hint(b'{"envelopeType":"DATA","x":"') is None


# --- dead letters always fit ----------------------------------------------------------------


def test_a_dead_letter_value_is_cut_with_its_size_and_digest() -> None:
    raw = b"q" * (DEAD_LETTER_MAX_VALUE + 10)
    value, headers = bounded_value(raw)
    assert len(value) == DEAD_LETTER_MAX_VALUE
    assert dict(headers)["x-original-size"] == str(len(raw)).encode()
    assert dict(headers)["x-original-sha256"] == hashlib.sha256(raw).hexdigest().encode()
    assert bounded_value(b"small") == (b"small", [])
    # a head of a line never buffered whole keeps the digest measured while streaming
    _, headers = bounded_value(b"head", size=10_000_000, sha256="ab" * 32)
    assert dict(headers)["x-original-size"] == b"10000000"


# --- cursors, handling, retries -------------------------------------------------------------


def test_cursor_resumes_at_the_oldest_retry_and_skips_what_was_written() -> None:
    cursor = Cursor(10).retry(10).advanced(11).advanced(12)
    assert cursor == Cursor(13, frozenset({10}))
    assert cursor.resume_at == 10
    assert not cursor.done(10) and cursor.done(11) and not cursor.done(13)
    assert Cursor.decode(cursor.encode()) == cursor
    assert Cursor.decode(b'{"offset": 7}') == Cursor(7)  # the one-number form of earlier pointers
    assert cursor.advanced(10) == Cursor(13)


def test_decide_per_envelope() -> None:
    (data,) = parse_line(line(composed()), RULES)
    assert isinstance(data, Data)
    cursors = {4: Cursor(1500435)}
    assert decide(data, cursors, [4]) == Write(data)
    assert decide(data, {4: Cursor(1500436)}, [4]) == Skip(4, 1500435)
    assert decide(data, cursors, [4], waiting={(4, 1500435)}) == Skip(4, 1500435)
    foreign = decide(data, cursors, [0, 1])  # upstream sent a partition it was not asked for
    assert isinstance(foreign, DeadLetter) and foreign.error.reason == "unassigned_partition"
    assert decide(Sync("m"), cursors, [4]) == Ping("m")
    rejected = Rejected(b"x", InvalidInput("no_identity"), (4, 1500435))
    assert decide(rejected, cursors, [4]) == DeadLetter(b"x", rejected.error, (4, 1500435))
    assert decide(rejected, cursors, [7]) == DeadLetter(b"x", rejected.error, None)
    # a bad line claiming a position already passed is dead-lettered, never skipped
    assert decide(rejected, {4: Cursor(1500440)}, [4]) == DeadLetter(b"x", rejected.error, None)


def test_a_failing_envelope_is_retried_each_period_then_dead_lettered() -> None:
    policy = RetryPolicy(period=30, validity=300)
    pending = first_failure(b"l", 1, 2, ValueError("boom"), now=0, policy=policy)
    assert pending.next_at == 30
    verdict, pending = after_failure(pending, ValueError("again"), now=30, policy=policy)
    assert verdict is Verdict.RETRY and pending.next_at == 60 and pending.attempts == 2
    verdict, pending = after_failure(pending, ValueError("last"), now=300, policy=policy)
    assert verdict is Verdict.DEAD_LETTER and "last" in pending.error


# --- partitions, health ----------------------------------------------------------------------


def test_markers_reveal_partitions_the_fetcher_does_not_read() -> None:
    marker = encode_marker("g", {p: 0 for p in range(20)})
    seen = marker_partitions(marker)
    assert seen is not None and uncovered(seen, 15) == [15, 16, 17, 18, 19]
    assert marker_partitions("0:5,1:7") == frozenset({0, 1})
    assert marker_partitions("opaque-value!") is None


@pytest.mark.parametrize(
    ("view", "ready"),
    [
        (WorkerView(True, 1.0, True, ""), True),
        (WorkerView(False, 1.0, True, "RecursionError"), False),
        (WorkerView(True, 120.0, True, "unauthorized"), False),  # token refused for 2 minutes
        (WorkerView(True, 120.0, False, "pipeline unreachable"), True),  # upstream's outage
    ],
)
def test_readiness_of_a_worker(view: WorkerView, ready: bool) -> None:
    assert (not_ready_reason(view, stall_after=60) is None) is ready


def test_the_line_buffer_bounds_bytes_and_releases_a_blocked_reader() -> None:
    buffer = LineBuffer(100)
    buffer.put("a", 80)
    blocked = threading.Thread(target=lambda: _put_expect_closed(buffer), daemon=True)
    blocked.start()
    time.sleep(0.2)  # a sleep: time in which an unbounded put would have returned
    assert blocked.is_alive() and buffer.bytes == 80  # the second item waits for room
    buffer.close()
    blocked.join(2)
    assert not blocked.is_alive()


def _put_expect_closed(buffer: LineBuffer) -> None:
    with pytest.raises(Closed):
        buffer.put("b", 80)

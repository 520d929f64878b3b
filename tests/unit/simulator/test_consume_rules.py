"""Start offsets, assign parsing, sync markers, partitioning and the in-memory log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.simulator.faults import FaultError, Faults
from services.simulator.log import PartitionLog
from services.simulator.rules.consume import (
    BadRequest,
    Start,
    decode_marker,
    encode_marker,
    parse_assign,
    parse_reset,
    partition_for,
    start_offset,
)


def test_parse_assign() -> None:
    assert parse_assign("0:12, 3:40", 15) == {0: 12, 3: 40}
    for bad in ("", "0", "0:x", "-1:0", "15:0", "1:0,1:5", "0:-3"):
        with pytest.raises(BadRequest):
            parse_assign(bad, 15)


def test_parse_reset_defaults_to_latest() -> None:
    assert parse_reset(None) == parse_reset("") == "latest"
    assert parse_reset("earliest") == "earliest"
    with pytest.raises(BadRequest):
        parse_reset("smallest")


@pytest.mark.parametrize(
    ("wanted", "reset", "expected"),
    [
        (5, "latest", Start(5, False)),
        (10, "earliest", Start(10, False)),  # the high mark itself: wait for the next one
        (2, "latest", Start(10, True)),  # expired
        (2, "earliest", Start(4, True)),
        (11, "earliest", Start(4, True)),  # beyond the log
        (None, "latest", Start(10, True)),
        (None, "earliest", Start(4, True)),
    ],
)
def test_start_offset(wanted: int | None, reset: str, expected: Start) -> None:
    assert start_offset(wanted, earliest=4, high=10, reset=reset) == expected  # type: ignore[arg-type]


def test_sync_marker_round_trip_and_refusal() -> None:
    marker = encode_marker("grp", {3: 7, 0: 1})
    assert decode_marker(marker) == ("grp", {0: 1, 3: 7})
    with pytest.raises(BadRequest):
        decode_marker("garbage!")


def test_partition_is_stable_per_visitor_and_spread() -> None:
    assert partition_for("123", 15) == partition_for("123", 15)
    assert len({partition_for(str(i), 15) for i in range(300)}) == 15


def test_partition_log_retention_by_count_and_age() -> None:
    log = PartitionLog(max_entries=3, max_age=timedelta(seconds=10))
    for i in range(5):
        log.append(lambda offset: f"e{offset}".encode(), now_ms=1000 + i)
    assert (log.earliest(1004), log.high) == (2, 5)
    assert [e.line for e in log.read(0, 10, 1004)] == []  # expired offsets are gone
    assert [e.offset for e in log.read(3, 10, 1004)] == [3, 4]
    assert log.earliest(1000 + 10_004) == 4  # offset 3 is now older than 10 s
    assert log.earliest(1000 + 20_000) == 5  # all gone: earliest == high


def test_faults_are_taken_once_each() -> None:
    faults = Faults()
    faults.update({"pipeline_503": 1, "pipeline_500": 1})
    assert [faults.take_status("pipeline") for _ in range(3)] == [503, 500, None]
    faults.update({"ims_down": True})
    assert faults.take_status("ims") == faults.take_status("ims") == 503
    faults.update({"drop_streams": 1, "drop_after": 4})
    assert (faults.take_drop(), faults.take_drop()) == (4, None)
    for bad in ({"pipeline_503": -1}, {"ims_down": 1}, {"what": 1}):
        with pytest.raises(FaultError):
            faults.update(bad)

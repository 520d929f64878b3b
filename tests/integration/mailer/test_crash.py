"""kill -9 of a mailer process mid-batch, then a restart: still exactly one email per request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from services.common.kafka import header
from services.common.models import OutcomeStatus
from services.common.settings import REPO_ROOT
from services.mailer.publishing import message_headers
from services.simulator.sink_faults import Fault
from tests.support.deadlines import wait_until
from tests.support.mailer_world import Scenario, decode_outcome, outcome_for

pytestmark = pytest.mark.kafka

STARTED = "mailer started: "  # the mailer's log line once its signal handlers are in place


def start_mailer_process(scenario: Scenario, log_file: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **scenario.token_environment(),
        "TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS": scenario.kafka.bootstrap_servers,
        "TRIGGERLINE_DB_URL": scenario.db_url,
        "TRIGGERLINE_PIPELINE_CONFIG": str(scenario.pipeline_file),
        "TRIGGERLINE_PIPELINE_TEMPLATES_DIR": str(scenario.templates_dir),
        "TRIGGERLINE_MAILER_SMTP_PORT": str(scenario.sink.port),
        "TRIGGERLINE_MAILER_SMTP_POOL_SIZE": "2",
        "TRIGGERLINE_MAILER_GROUP_ID": f"test-mailer-{scenario.unique}",
        "TRIGGERLINE_MAILER_CAMPAIGN_PATTERN": scenario.campaign,
        "TRIGGERLINE_MAILER_RETRY_DELAYS": "1s,2s",
        "TRIGGERLINE_MAILER_CLAIM_TIMEOUT": "3s",
        "TRIGGERLINE_MAILER_TOPIC_REFRESH": "1s",
        "TRIGGERLINE_MAILER_POLL_TIMEOUT": "300ms",
        "TRIGGERLINE_MAILER_HEALTH_PORT": "0",
        # the broker's minimum: the killed member's partitions move on after 6s, not 45s
        "TRIGGERLINE_MAILER_SESSION_TIMEOUT": "6s",
    }
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "mailer"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def kill_after(scenario: Scenario, log_file: Path, arrivals: int) -> None:
    """Start a mailer, let `arrivals` messages reach the sink, then kill -9 it mid-batch (a
    fault still holding one message) and lift the sink's faults for the next instance."""
    first = start_mailer_process(scenario, log_file)
    try:
        arrived = scenario.sink.wait_for(arrivals, timeout=60)
        assert len(arrived) == arrivals, log_file.read_text()[-3000:]
        time.sleep(0.5)  # a sleep: the kill's moment, while the fault still holds one message
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert first.returncode == -signal.SIGKILL
    scenario.sink.clear_faults()


@contextmanager
def restarted(scenario: Scenario, log_file: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A second mailer for the rest of the block, then stopped with SIGTERM (killed if stuck).

    The SIGTERM waits for the mailer's start line: the block may end at once (when the first
    mailer sent everything before its kill), and a process still importing has no handler yet.
    """
    started = log_file.read_text(errors="replace").count(STARTED)
    second = start_mailer_process(scenario, log_file)
    try:
        yield second
        wait_until(
            lambda: log_file.read_text(errors="replace").count(STARTED) > started,
            deadline=60,
            what=lambda: f"the second mailer's start: {log_file.read_text()[-2000:]}",
        )
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(10)


def test_kill_9_mid_batch_then_restart_sends_each_email_once(scenario: Scenario) -> None:
    requests = [scenario.request(n) for n in range(30)]
    keys = {r.idempotency_key for r in requests}
    # One recipient's RCPT stalls: that request is claimed but not sent when the process dies,
    # and the batch around it is sent but its offsets are not stored yet.
    stalled = requests[17]
    scenario.sink.set_fault(stalled.email, Fault("rcpt", delay=120, times=1))
    scenario.produce(requests)
    log_file = scenario.tmp_path / "mailer.log"

    kill_after(scenario, log_file, len(requests) - 1)  # one RCPT still stalls

    with restarted(scenario, log_file) as second:
        outcomes = [
            decode_outcome(m)
            for m in scenario.outcomes.read(outcome_for(keys), len(keys), deadline=90)
        ]
        sent_keys = {o.idempotency_key for o in outcomes if o.status is OutcomeStatus.SENT}
        deadline = time.monotonic() + 60
        while sent_keys != keys and time.monotonic() < deadline:
            more = scenario.outcomes.read(outcome_for(keys), len(outcomes) + 1, deadline=2)
            outcomes = [decode_outcome(m) for m in more]
            sent_keys = {o.idempotency_key for o in outcomes if o.status is OutcomeStatus.SENT}
        time.sleep(2)  # a sleep: room for a duplicate email to show up

    assert sent_keys == keys, log_file.read_text()[-3000:]
    assert {o.status for o in outcomes} == {OutcomeStatus.SENT}
    per_message_id = Counter(m.message_id for m in scenario.sink.messages)
    assert len(per_message_id) == len(requests)
    assert max(per_message_id.values()) == 1, per_message_id.most_common(3)
    assert Counter(r for m in scenario.sink.messages for r in m.rcpt_tos) == Counter(
        r.email for r in requests
    )
    # the crash really hit a batch in flight: sent requests came back and were not resent
    assert any(o.detail.get("redelivered") == "true" for o in outcomes)
    assert second.returncode == 0, log_file.read_text()[-3000:]


def test_kill_9_while_the_server_holds_a_message_settles_it_unknown_never_twice(
    scenario: Scenario,
) -> None:
    """The server has one message's data and holds its reply when the mailer dies: the message
    may have been delivered, so the next instance settles it `unknown` and never sends it again;
    the others, already saved as sent, are reported sent."""
    requests = [scenario.request(n) for n in range(6)]
    keys = {r.idempotency_key for r in requests}
    held = requests[3]
    # the sink stores the message, then keeps the connection open without a reply
    scenario.sink.set_fault(held.email, Fault("drop", delay=120, times=1))
    scenario.produce(requests)
    log_file = scenario.tmp_path / "mailer.log"

    kill_after(scenario, log_file, len(requests))  # the held reply is still awaited

    with restarted(scenario, log_file):
        records = scenario.outcomes.read(outcome_for(keys), len(keys), deadline=90, settle=2)
        dead = scenario.dlq.read(lambda m: m.key() == held.profile_id.encode(), 1, deadline=30)
    statuses: dict[str | None, set[OutcomeStatus]] = {}
    reasons: set[str | None] = set()
    for outcome in map(decode_outcome, records):
        statuses.setdefault(outcome.idempotency_key, set()).add(outcome.status)
        if outcome.idempotency_key == held.idempotency_key:
            reasons.add(outcome.reason)

    assert set(statuses) == keys, log_file.read_text()[-3000:]
    assert statuses.pop(held.idempotency_key) == {OutcomeStatus.UNKNOWN}
    # reported lost mid-handover (or, on a machine slow enough for the held reply to outlast
    # the 10 s SMTP timeout before the kill, dropped after its data), and dead-lettered where an
    # operator can resend it
    assert reasons & {"holder_lost", "smtp_unknown"}, reasons
    assert {header(message_headers(m), "x-error-reason") for m in dead} == {"smtp_unknown"}
    assert all(seen == {OutcomeStatus.SENT} for seen in statuses.values()), statuses
    # one message per recipient reached the server, the held one included, none twice
    assert Counter(r for m in scenario.sink.messages for r in m.rcpt_tos) == Counter(
        r.email for r in requests
    )

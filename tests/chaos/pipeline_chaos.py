"""Chaos under load: the whole stack at 1M/h while services are killed, the broker restarts, the
database stops and the SMTP server misbehaves; then every trigger must have exactly one outcome
and every email must have arrived exactly once.

The faults, each at a moment drawn from a seeded random source (the seed is in the report):

* `kill -9` of the fetcher, each of the two processors, the mailer and auth, at random moments
  (one round per 10,000 triggers, at least five kills); a supervisor starts every dead child
  again after a second, as Kubernetes would;
* the broker stopped and started once (`deploy/local/kafka.sh down; up`);
* PostgreSQL stopped for `fault_seconds` (`deploy/local/postgres.sh down; up`);
* the SMTP server answering `451 4.3.0` at RCPT to every message for `fault_seconds`, then
  dropping the connection after the message data (before its reply) for a number of messages,
  and later losing a few: the connection closed after the data, the message not kept.

A message whose reply never came is `unknown` to the mailer (it may have arrived), so nothing
resends it. At the end the harness does what the runbook asks of an operator: it compares the
`unknown` deliveries with the relay's log (the sink's journal) and resends exactly the missing
ones with `triggerline replay redrive --resend-unknown`. The verdict is read after that.

The mailer runs with shorter waits than production so a run fits CI: retry delays 15s/30s/60s
(together longer than the SMTP fault, so no email exhausts its retries) and a 20 s claim timeout
(the claims a killed mailer held are taken over after it).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import create_engine, select

from bench.pipeline.accounting import Reconciliation, reconcile
from bench.pipeline.harness import Pipeline, RunConfig
from bench.pipeline.records import RunRecords, read_journal, read_run
from services.common.db.tables import deliveries
from services.common.kafka import high_watermark
from services.common.message_ids import message_digest
from services.common.pipeline_config import load_pipeline_config
from services.common.settings import PipelineConfigSettings, load
from services.ops.processes import ServiceProcess

NOMINAL = 1_000_000 / 3600  # 1M triggers an hour
KILLABLE = ("fetcher", "processor", "processor-2", "mailer", "auth")
RESTART_AFTER = 1.0  # seconds a dead child stays down before the supervisor starts it again
# Past the deadline, waiting for mail ends after this long without a new email: more than the
# longest retry delay (60 s), the claim timeout (20 s) and a consumer-group rebalance together.
STALL_SECONDS = 150.0

Control = Callable[[str], None]  # "down" / "up" of the broker or the database


@dataclass(frozen=True)
class ChaosPlan:
    """When each fault happens, in seconds from the start of the trigger flow."""

    triggers: int
    seed: int
    fault_seconds: float
    kills: list[tuple[float, str]]
    smtp_refusal_at: float
    drops_at: float
    drops: int
    losses_at: float
    losses: int
    database_down_at: float
    broker_restart_at: float

    @classmethod
    def drawn(cls, triggers: int, seed: int | None = None) -> ChaosPlan:
        """A plan for `triggers` at 1M/h: faults spread over the flow, kills at random."""
        seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        rng = random.Random(seed)
        flow = triggers / NOMINAL
        long = triggers >= 50_000
        fault_seconds = 60.0 if long else 15.0
        rounds = max(1, triggers // 10_000)
        kills = sorted(
            (round(rng.uniform(0.05, 0.95) * flow, 1), name)
            for _ in range(rounds)
            for name in KILLABLE
        )
        return cls(
            triggers=triggers,
            seed=seed,
            fault_seconds=fault_seconds,
            kills=kills,
            smtp_refusal_at=round(0.08 * flow, 1),
            drops_at=round(0.08 * flow + fault_seconds + 2, 1),
            drops=10 if not long else 30,
            losses_at=round(0.6 * flow, 1),
            losses=5 if not long else 10,
            database_down_at=round(0.25 * flow if long else 0.3 * flow, 1),
            broker_restart_at=round(0.8 * flow, 1),
        )


@dataclass
class ChaosLog:
    """What actually happened, with times in seconds from the start of the flow."""

    events: list[dict[str, Any]] = field(default_factory=list)
    restarts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def note(self, started: float, what: str, **detail: Any) -> None:
        with self.lock:
            self.events.append(
                {"at_s": round(time.monotonic() - started, 1), "what": what, **detail}
            )


class Supervisor:
    """Starts every dead child again after `RESTART_AFTER` seconds; counts unexpected exits."""

    def __init__(self, pipeline: Pipeline, log: ChaosLog, started: float) -> None:
        self._pipeline = pipeline
        self._log = log
        self._started = started
        self.killed: set[str] = set()  # labels killed on purpose, not yet restarted
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._dead_since: dict[str, float] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            for label, child in self._pipeline.labels().items():
                if child.alive:
                    self._dead_since.pop(label, None)
                    continue
                since = self._dead_since.setdefault(label, time.monotonic())
                if time.monotonic() - since < RESTART_AFTER:
                    continue
                expected = label in self.killed
                self.killed.discard(label)
                code = child.process.returncode if child.process else None
                try:
                    child.start()
                except OSError as exc:
                    self._log.note(self._started, "restart_failed", service=label, error=str(exc))
                    continue
                self._dead_since.pop(label, None)
                with self._log.lock:
                    self._log.restarts.append(
                        {
                            "at_s": round(time.monotonic() - self._started, 1),
                            "service": label,
                            "after": "kill -9" if expected else f"exit {code}",
                        }
                    )


def verdict(document: dict[str, Any]) -> list[str]:
    """What a chaos report says went wrong; empty when every trigger has exactly one outcome,
    every email arrived exactly once and no retry topic holds anything."""
    found = []
    counts = document["reconciliation"]
    for name in (
        "lost",
        "duplicate_emails",
        "duplicate_message_ids",
        "without_outcome",
        "rewritten_upstream",
        "conflicting_outcomes",
    ):
        if counts[name]:
            found.append(f"{name}: {counts[name]}")
    if not document["retry_topics_drained"]:
        found.append(f"retry topics not drained: {document['retry_topic_lag']}")
    return found


def retry_lag(pipeline: Pipeline) -> dict[str, int]:
    """Records of each retry topic the mailer's group has not consumed yet."""
    consumer = Consumer(
        {
            "bootstrap.servers": pipeline.config.bootstrap,
            "group.id": pipeline.env["TRIGGERLINE_MAILER_GROUP_ID"],
            "enable.auto.commit": False,
        }
    )
    lag: dict[str, int] = {}
    try:
        for spec in pipeline.topics.email_retries():
            parts = [TopicPartition(spec.name, p) for p in range(spec.partitions)]
            committed = consumer.committed(parts, timeout=30)
            lag[spec.name] = sum(
                high_watermark(consumer, spec.name, tp.partition) - max(tp.offset, 0)
                for tp in committed
            )
    finally:
        consumer.close()
    return lag


@dataclass
class ChaosReport:
    plan: ChaosPlan
    log: ChaosLog
    total: Reconciliation
    retry_lag: dict[str, int]
    records: dict[str, Any]
    seconds: float
    loadavg: dict[str, tuple[float, float, float]]

    @property
    def retry_topics_drained(self) -> bool:
        return not any(self.retry_lag.values())

    def document(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "benchmark": "chaos",
            "command": f"make chaos CHAOS_TRIGGERS={plan.triggers} CHAOS_SEED={plan.seed}",
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "triggers": self.plan.triggers,
            "seconds": round(self.seconds, 1),
            "machine_load": self.loadavg,
            "plan": asdict(self.plan),
            "events": self.log.events,
            "restarts": self.log.restarts,
            "every_trigger_one_outcome": self.total.without_outcome == 0
            and self.total.conflicting_outcomes == 0,
            "every_email_exactly_once": self.total.lost == 0
            and self.total.duplicate_emails == 0
            and self.total.duplicate_message_ids == 0,
            "retry_topics_drained": self.retry_topics_drained,
            "retry_topic_lag": self.retry_lag,
            "reconciliation": asdict(self.total),
            "records": self.records,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.document(), indent=2) + "\n")


def run_chaos(
    plan: ChaosPlan,
    var: Path,
    bootstrap: str,
    database_url: str,
    broker: Control,
    database: Control,
    deadline: float,
) -> ChaosReport:
    """Run the plan on a stack of its own and read back what happened."""
    load_start = os.getloadavg()
    config = RunConfig(
        plan.triggers,
        var,
        bootstrap,
        database_url=database_url,
        env={
            "TRIGGERLINE_MAILER_RETRY_DELAYS": "15s,30s,60s",
            "TRIGGERLINE_MAILER_CLAIM_TIMEOUT": "20s",
            "TRIGGERLINE_MAILER_MIGRATE_ON_START": "false",
        },
        seed=plan.seed,
    )
    pipeline = Pipeline(config)
    log = ChaosLog()
    begun = time.monotonic()
    try:
        pipeline.start()
        pipeline.add_processor()
        started = time.monotonic()
        supervisor = Supervisor(pipeline, log, started)
        supervisor.start()
        pipeline.generate(plan.triggers, NOMINAL)
        log.note(started, "flow", triggers=plan.triggers, rate=round(NOMINAL, 1))
        _inject(plan, pipeline, supervisor, log, started, broker, database)
        pipeline.wait_generated(plan.triggers, deadline)
        accepted = _wait_for_mail(pipeline, plan.triggers, started, deadline)
        log.note(started, "sink", accepted=accepted, **_lost_at_sink(pipeline))
        resend = resend_missing(pipeline, database_url)
        log.note(started, "operator resend of unknowns missing at the relay", **resend)
        if resend["redriven"]:
            again = time.monotonic()
            accepted = _wait_for_mail(pipeline, plan.triggers, again, STALL_SECONDS, excuse=False)
            log.note(started, "sink", accepted=accepted)
        lag = _wait_for_retries(pipeline, max(started + deadline, time.monotonic() + STALL_SECONDS))
        supervisor.stop()
    finally:
        pipeline.stop()
    campaigns = sorted(load_pipeline_config(load(PipelineConfigSettings).config).campaigns)
    records = read_run(
        bootstrap,
        pipeline.topics,
        campaigns,
        pipeline.env["TRIGGERLINE_FETCHER_CONSUMER"],
        pipeline.journal,
        sample_payloads=0,
    )
    pipeline.delete_topics()
    total = reconcile(0, plan.triggers, records.mail, list(records.journeys.values()))
    return ChaosReport(
        plan,
        log,
        total,
        lag,
        _record_counts(records),
        time.monotonic() - begun,
        {"start": load_start, "end": os.getloadavg()},
    )


def _inject(
    plan: ChaosPlan,
    pipeline: Pipeline,
    supervisor: Supervisor,
    log: ChaosLog,
    started: float,
    broker: Control,
    database: Control,
) -> None:
    """Run the plan's faults at their moments (a broker restart holds the next ones up)."""
    down = plan.fault_seconds

    def kill(label: str) -> Callable[[], None]:
        def act() -> None:
            child: ServiceProcess = pipeline.labels()[label]
            supervisor.killed.add(label)
            child.kill()
            log.note(started, "kill -9", service=label)

        return act

    def smtp_refusal() -> None:
        pipeline.sink_fault("rcpt", "451 4.3.0 Try again later", seconds=down)
        log.note(started, "smtp 451 at RCPT", seconds=down)

    def drops() -> None:
        pipeline.sink_fault("drop", times=plan.drops)
        log.note(started, "smtp drop after DATA", times=plan.drops)

    def losses() -> None:
        pipeline.sink_fault("lose", times=plan.losses)
        log.note(started, "smtp lose after DATA", times=plan.losses)

    def database_control(action: str) -> Callable[[], None]:
        def act() -> None:
            database(action)
            log.note(started, f"database {action}")

        return act

    def broker_restart() -> None:
        log.note(started, "broker down")
        broker("down")
        broker("up")
        log.note(started, "broker up")

    events: list[tuple[float, Callable[[], None]]] = [
        *((at, kill(label)) for at, label in plan.kills),
        (plan.smtp_refusal_at, smtp_refusal),
        (plan.drops_at, drops),
        (plan.losses_at, losses),
        (plan.database_down_at, database_control("down")),
        (plan.database_down_at + down, database_control("up")),
        (plan.broker_restart_at, broker_restart),
    ]
    for at, action in sorted(events, key=lambda event: event[0]):
        time.sleep(max(0.0, started + at - time.monotonic()))  # a sleep: the plan's schedule
        action()


def _wait_for_mail(
    pipeline: Pipeline, count: int, started: float, deadline: float, excuse: bool = True
) -> int:
    """Until the sink has `count` emails, less (with `excuse`) those it lost on purpose (the
    `lose` fault: they wait for the operator's resend); past the deadline, for as long as
    emails keep coming.

    A drain slowed by the faults is not a loss: the verdict counts what never arrives. Waiting
    ends `STALL_SECONDS` after the last new email once the deadline has passed (longer than the
    longest retry delay, the claim timeout and a rebalance together), or at twice the deadline;
    the report's `sink` event says when. Then 5 s more for any duplicate.
    """
    expected, cap = started + deadline, started + 2 * deadline
    accepted, progressed = 0, time.monotonic()
    while (now := time.monotonic()) < cap:
        counts = pipeline.sink_counts()
        if counts["accepted"] > accepted:
            accepted, progressed = counts["accepted"], now
        if accepted >= count - (counts["lost"] if excuse else 0):
            break
        if now > expected and now - progressed > STALL_SECONDS:
            break
        time.sleep(1.0)  # poll interval: a shortfall is the verdict's to count, not a failure
    time.sleep(5.0)  # a sleep: room for a duplicate email to show up
    return int(pipeline.sink_counts()["accepted"])


def _lost_at_sink(pipeline: Pipeline) -> dict[str, int]:
    counts = pipeline.sink_counts()
    return {"dropped": counts["dropped"], "lost": counts["lost"]}


def resend_missing(pipeline: Pipeline, database_url: str) -> dict[str, int]:
    """The operator's reconciliation: `unknown` deliveries whose Message-ID the relay's log
    (the sink's journal) lacks are resent with `triggerline replay redrive --resend-unknown`;
    the others arrived and stay as they are."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            keys = conn.execute(
                select(deliveries.c.idempotency_key).where(deliveries.c.status == "unknown")
            ).scalars()
            unknown = {message_digest(key) for key in keys}
    finally:
        engine.dispose()
    arrived = {mail.digest for mail in read_journal(pipeline.journal)}
    missing = sorted(unknown - arrived)
    redriven = 0
    if missing:
        listed = pipeline.config.var / "missing-at-relay.txt"
        listed.write_text("".join(f"{digest}\n" for digest in missing))
        command = [
            sys.executable, "-m", "services.cli", "replay", "redrive", "--from", "emails.dlq",
            "--reason", "smtp_unknown", "--message-ids-file", str(listed), "--resend-unknown",
            "--execute",
        ]  # fmt: skip
        done = subprocess.run(
            command, env={**os.environ, **pipeline.env}, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"the operator's resend failed: {done.stderr[-2000:]}")
        redriven = int(done.stdout.split("re-drove ")[1].split()[0])
    return {"unknown": len(unknown), "missing_at_relay": len(missing), "redriven": redriven}


def _wait_for_retries(pipeline: Pipeline, end: float) -> dict[str, int]:
    """Until the mailer has consumed every retry record (or `end`); the lag at the end."""
    while True:
        lag = retry_lag(pipeline)
        if not any(lag.values()) or time.monotonic() > end:
            return lag
        time.sleep(2.0)  # poll interval: the lag left at `end` goes into the report


def _record_counts(records: RunRecords) -> dict[str, Any]:
    return {
        "triggers_raw": records.raw_records,
        "email_requests": records.request_records,
        "outcomes": records.outcome_records,
        "retry_topic_records": records.retry_records,
        "email_dlq_records": records.email_dlq_records,
        "emails_at_sink": len(records.mail),
        "dropped_at_sink": sum(1 for m in records.mail if m.dropped),
    }

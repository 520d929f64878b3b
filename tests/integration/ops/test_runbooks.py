"""The runbooks of docs/operations.md, run as an operator runs them, on one live stack.

A processor and a mailer run as `triggerline` processes in a topic namespace of their own, on
the real broker, a PostgreSQL database and an SMTP sink; every operator step is the
`triggerline` command the runbook names, with the same environment. Triggers are produced to
`triggers.raw` as the fetcher writes them. The tests run in file order on the same stack, each
with shoppers of its own.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from confluent_kafka import Consumer, Producer
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.common.db.engine import make_engine, upgrade
from services.common.kafka import ensure_topics, make_admin
from services.common.message_ids import digest_of, message_digest
from services.common.models import Outcome
from services.common.serde import outcome_serde
from services.common.settings import REPO_ROOT, DatabaseSettings, KafkaSettings, load
from services.common.topics import Topics, topics_for
from services.ops.redrive import ClaimReopener, redrive
from services.ops.rules.moments import iso
from services.ops.rules.redrive import RedriveFilter
from services.simulator.catalog import CART_ABANDONMENT
from services.simulator.population import Shopper, shopper
from services.simulator.sink_faults import Fault
from services.simulator.smtp_sink import SmtpSink
from tests.conftest import free_port
from tests.integration.processor.triggers import adobe_envelope, build, random_mcid
from tests.support.databases import POSTGRES_SERVER
from tests.support.deadlines import wait_until

pytestmark = pytest.mark.kafka

EXECUTABLE = REPO_ROOT / ".venv" / "bin" / "triggerline"
BROWSE = "697514a8-3337-4efc-ba75-1f0ba896c288"
CAMPAIGNS = ("cart_abandonment", "browse_abandonment", "search_abandonment")


@dataclasses.dataclass
class Stack:
    """The running stack and what the tests need to drive and observe it."""

    env: dict[str, str]
    topics: Topics
    kafka: KafkaSettings
    db_url: str
    sink: SmtpSink
    templates: Path
    folder: Path
    producer: Producer
    processes: dict[str, subprocess.Popen[bytes]] = dataclasses.field(default_factory=dict)
    outcomes: list[Outcome] = dataclasses.field(default_factory=list)
    sent_ids: list[str] = dataclasses.field(default_factory=list)
    _reader: Consumer | None = None

    @property
    def processor_group(self) -> str:
        return self.env["TRIGGERLINE_PROCESSOR_APP_ID"]

    @property
    def mailer_group(self) -> str:
        return self.env["TRIGGERLINE_MAILER_GROUP_ID"]

    def triggerline(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """One operator command, in the stack's environment."""
        done = subprocess.run(
            [str(EXECUTABLE), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check:
            assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done

    def start(self, service: str) -> None:
        with (self.folder / f"{service}.log").open("ab") as log:
            self.processes[service] = subprocess.Popen(
                [str(EXECUTABLE), service],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
            )
        port = self.env[
            "TRIGGERLINE_PROCESSOR_WEB_PORT" if service == "processor" else
            "TRIGGERLINE_MAILER_HEALTH_PORT"
        ]  # fmt: skip

        def ready() -> bool:
            assert self.processes[service].poll() is None, self.log(service)
            return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).ok

        wait_until(
            ready,
            90,
            every=0.3,
            what=lambda: f"{service} to be ready:\n{self.log(service)}",
            ignoring=(requests.RequestException,),
        )

    def stop(self, service: str) -> None:
        process = self.processes.pop(service)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def log(self, service: str, lines: int = 40) -> str:
        path = self.folder / f"{service}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def send_triggers(self, shoppers: list[Shopper], trigger_id: str) -> list[str]:
        """One trigger per shopper on triggers.raw, as the fetcher writes it; message ids."""
        ids = []
        for s in shoppers:
            built = build(adobe_envelope(mcid=s.mcid, trigger_id=trigger_id))
            self.producer.produce(
                self.topics.triggers_raw.name,
                key=built.key,
                value=built.value,
                headers=[("message-id", built.message_id.encode())],
            )
            ids.append(built.message_id)
        assert self.producer.flush(10) == 0
        self.sent_ids += ids
        return ids

    def wait_outcomes(
        self,
        ids: list[str],
        done: Callable[[Outcome], bool],
        deadline: float = 60,
        after: int = 0,
    ) -> list[Outcome]:
        """Outcomes of these triggers (from the `after`-th outcome read on) until each has one
        that `done` accepts."""
        assert self._reader is not None
        wanted = set(ids)
        end = time.monotonic() + deadline
        mine: list[Outcome] = []
        while time.monotonic() < end:
            for message in self._reader.consume(500, 0.3):
                if message.error() is None:
                    self.outcomes.append(
                        Outcome.from_record(outcome_serde().decode(message.value()))
                    )
            mine = [o for o in self.outcomes[after:] if o.message_id in wanted]
            if {o.message_id for o in mine if done(o)} == wanted:
                return mine
        logs = f"{self.log('processor')}\n{self.log('mailer')}"
        pytest.fail(f"outcomes of {ids}: {[(o.message_id, o.label) for o in mine]}\n{logs}")

    def mails_to(self, shoppers: list[Shopper]) -> dict[str, int]:
        wanted = {s.email.lower() for s in shoppers}
        counts = dict.fromkeys(sorted(wanted), 0)
        for mail in self.sink.messages:
            for rcpt in mail.rcpt_tos:
                if rcpt.lower() in wanted:
                    counts[rcpt.lower()] += 1
        return counts

    def wait_mails(self, shoppers: list[Shopper], deadline: float = 60) -> dict[str, int]:
        wait_until(
            lambda: 0 not in self.mails_to(shoppers).values(),
            deadline,
            every=0.2,
            what=lambda: f"an email to each of them: {self.mails_to(shoppers)}",
        )
        time.sleep(2)  # a sleep: a second copy of any of them would have arrived by now
        return self.mails_to(shoppers)


def people(tag: str, count: int) -> list[Shopper]:
    return [
        dataclasses.replace(
            shopper(i),
            profile_id=f"P-{tag}-{i}",
            mcid=random_mcid(),
            declared_id=f"D-{tag}-{i}",
            email=f"{tag}{i}@example.com",
        )
        for i in range(count)
    ]


def profiles_file(path: Path, shoppers: list[Shopper], extra: list[list[str]] = ()) -> Path:  # type: ignore[assignment]
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["profile_id", "email", "first_name", "locale", "timezone", "mcid"])
        for s in shoppers:
            out.writerow([s.profile_id, s.email, s.first_name, s.locale, s.timezone, s.mcid])
        out.writerows(extra)
    return path


SEEDED = {
    "template": people("tpl", 3),
    "relay": people("relay", 6),
    "move": people("move", 2),
    "unknown": people("unk", 3),
}


@pytest.fixture(scope="module")
def stack(
    kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    unique = uuid.uuid4().hex[:8]
    folder = tmp_path_factory.mktemp("runbooks")
    prefix = f"rb-{unique}."
    topics = topics_for(prefix)
    admin = make_admin(kafka_settings)
    ensure_topics(admin, [*topics.fixed(), *(topics.emails(c) for c in CAMPAIGNS)])
    name = f"test_rb_{unique}"
    server = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db_url = make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(load(DatabaseSettings, {"url": SecretStr(db_url)}))
    upgrade(engine)
    engine.dispose()
    templates = folder / "templates"
    shutil.copytree(REPO_ROOT / "config" / "templates", templates)
    # the browse campaign's template is broken from the start: runbook "a template was wrong"
    (templates / "browse_abandonment" / "subject.txt").write_text("{{ missing.thing }}\n")
    sink = SmtpSink(maildir=folder / "mail").start()
    env = {
        "TRIGGERLINE_TOPICS_PREFIX": prefix,
        "TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "TRIGGERLINE_DB_URL": db_url,
        "TRIGGERLINE_PIPELINE_TEMPLATES_DIR": str(templates),
        "TRIGGERLINE_PROCESSOR_APP_ID": f"rb-processor-{unique}",
        "TRIGGERLINE_PROCESSOR_DATA_DIR": str(folder / "processor"),
        "TRIGGERLINE_PROCESSOR_WEB_PORT": str(free_port()),
        "TRIGGERLINE_PROCESSOR_STORE": "memory",
        "TRIGGERLINE_PROCESSOR_COMMIT_INTERVAL": "0.5s",
        "TRIGGERLINE_PROCESSOR_STANDBY_REPLICAS": "0",
        "TRIGGERLINE_PROCESSOR_PROFILE_CACHE_TTL": "1s",
        "TRIGGERLINE_MAILER_GROUP_ID": f"rb-mailer-{unique}",
        "TRIGGERLINE_MAILER_SMTP_PORT": str(sink.port),
        "TRIGGERLINE_MAILER_HEALTH_PORT": str(free_port()),
        "TRIGGERLINE_MAILER_RETRY_DELAYS": "1s,1s,1s",
        "TRIGGERLINE_MAILER_TOPIC_REFRESH": "1s",
        "TRIGGERLINE_MAILER_POLL_TIMEOUT": "200ms",
        "TRIGGERLINE_MAILER_MIGRATE_ON_START": "false",
        # a throwaway key; the development flag allows the default link and bounce domain
        "TRIGGERLINE_TOKENS_KEY": secrets.token_urlsafe(48),
        "TRIGGERLINE_TOKENS_DEVELOPMENT": "true",
    }
    producer = Producer(
        {"bootstrap.servers": kafka_settings.bootstrap_servers, "enable.idempotence": True}
    )
    world = Stack(env, topics, kafka_settings, db_url, sink, templates, folder, producer)
    reader = Consumer(
        {
            "bootstrap.servers": kafka_settings.bootstrap_servers,
            "group.id": f"rb-reader-{unique}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    reader.subscribe([topics.outcomes.name])
    world._reader = reader
    try:
        seeded = [s for group in SEEDED.values() for s in group]
        world.triggerline("profiles", "import", str(profiles_file(folder / "seed.csv", seeded)))
        world.start("processor")
        world.start("mailer")
        yield world
    finally:
        for service in list(world.processes):
            world.stop(service)
        reader.close()
        producer.flush(10)
        sink.stop()
        ours = [
            n
            for n in admin.list_topics(timeout=10).topics
            if n.startswith((prefix, world.processor_group))
        ]
        if ours:
            admin.delete_topics(ours, operation_timeout=30)
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def _report(stack: Stack, since: datetime, campaign: str) -> dict[str, Any]:
    done = stack.triggerline("outcomes", "--since", iso(since), "--campaign", campaign, "--json")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_a_template_was_wrong_for_two_hours(stack: Stack) -> None:
    """Broken template: failed outcomes and dead letters; after the fix, a re-drive by reason
    sends each email once, and `outcomes` accounts for every trigger both times."""
    since = datetime.now(UTC)
    shoppers = SEEDED["template"]
    ids = stack.send_triggers(shoppers, BROWSE)
    stack.wait_outcomes(ids, lambda o: o.label == "failed")
    before = _report(stack, since, "browse_abandonment")
    assert before["outcomes"] == [{"status": "failed", "reason": "template_error", "triggers": 3}]
    assert (before["triggers_in"], before["triggers_out"], before["open"]) == (3, 3, 0)
    # the fix: the template as shipped, and a mailer that loads it
    shutil.copy(
        REPO_ROOT / "config" / "templates" / "browse_abandonment" / "subject.txt",
        stack.templates / "browse_abandonment" / "subject.txt",
    )
    stack.stop("mailer")
    stack.start("mailer")
    args = ["replay", "redrive", "--from", "emails.dlq", "--reason", "template_error",
            "--since", iso(since)]  # fmt: skip
    plan = stack.triggerline(*args).stdout
    assert "template_error" in plan and "would re-drive 3 in total" in plan, plan
    assert stack.mails_to(shoppers) == dict.fromkeys(sorted(s.email for s in shoppers), 0)
    done = stack.triggerline(*args, "--execute").stdout
    assert "re-drove 3 in total" in done and "reopened 3 failed delivery claims" in done, done
    assert set(stack.wait_mails(shoppers).values()) == {1}
    stack.wait_outcomes(ids, lambda o: o.label == "sent")
    after = _report(stack, since, "browse_abandonment")
    assert after["outcomes"] == [{"status": "sent", "reason": None, "triggers": 3}]
    assert after["open"] == 0 and [h["in"] - h["out"] for h in after["hours"]] == [0] * len(
        after["hours"]
    )
    assert after["outcome_records"] >= 6


def test_profiles_arrived_late(stack: Stack, tmp_path: Path) -> None:
    """Unmatched triggers wait in triggers.unmatched; once the profiles are imported, a re-drive
    filtered by reason mails exactly the shoppers who now have a profile."""
    since = datetime.now(UTC)
    late = people("late", 4)
    ids = stack.send_triggers(late, CART_ABANDONMENT.trigger_id)
    stack.wait_outcomes(ids, lambda o: o.label == "unmatched")
    imported = profiles_file(
        tmp_path / "late.csv", late[:3], [["", "nobody@example.com", "", "", "", ""]]
    )
    out = stack.triggerline("profiles", "import", str(imported)).stdout
    assert "insert 3" in out and "rejected 1" in out, out
    time.sleep(1.5)  # a sleep: the processor trusts a cached "no profile" for its TTL (1 s)
    plan = stack.triggerline(
        "replay", "redrive", "--from", "triggers.unmatched", "--reason", "no_profile",
        "--reason", "profile_gone", "--since", iso(since),
    ).stdout  # fmt: skip
    assert "no_profile" in plan and "would re-drive 4 in total" in plan, plan
    stack.triggerline(
        "replay", "redrive", "--from", "triggers.unmatched", "--reason", "no_profile",
        "--reason", "profile_gone", "--since", iso(since), "--execute",
    )  # fmt: skip
    assert set(stack.wait_mails(late[:3]).values()) == {1}
    stack.wait_outcomes(ids[:3], lambda o: o.label == "sent")
    assert stack.mails_to(late[3:]) == {late[3].email: 0}
    unmatched_again = [o for o in stack.wait_outcomes(ids[3:], lambda o: True)]
    assert {o.label for o in unmatched_again} == {"unmatched"}


def test_the_smtp_relay_was_down_overnight(stack: Stack) -> None:
    """4xx for every attempt: the requests end in emails.dlq. After the relay is back, a
    re-drive killed half-way and run again sends each email exactly once."""
    since = datetime.now(UTC)
    shoppers = SEEDED["relay"]
    for s in shoppers:
        stack.sink.set_fault(s.email, Fault("rcpt", "451 4.3.0 Relay unavailable, try later"))
    ids = stack.send_triggers(shoppers, CART_ABANDONMENT.trigger_id)
    stack.wait_outcomes(ids, lambda o: o.label == "failed" and o.reason == "retries_exhausted")
    for s in shoppers:
        stack.sink.clear_faults(s.email)

    class Crash(BaseException):
        """Stands for the pod being killed: escapes every handler, aborts nothing."""

    handled = 0

    def killed_half_way(count: int) -> None:
        nonlocal handled
        handled += count
        if handled == 5:  # two batches of two committed, the fifth record in flight
            raise Crash

    group = f"rb-redrive-{uuid.uuid4().hex[:6]}"
    wanted = RedriveFilter(reasons=frozenset({"retries_exhausted"}), since=since, spelling=("x",))
    engine = make_engine(load(DatabaseSettings, {"url": SecretStr(stack.db_url)}))
    try:
        with pytest.raises(Crash):
            redrive(
                stack.kafka, stack.topics.emails_dlq.name, wanted=wanted, execute=True,
                group=group, batch_size=2, progress=killed_half_way,
                claims=ClaimReopener(engine), topics=stack.topics,
            )  # fmt: skip
    finally:
        engine.dispose()
    resumed = stack.triggerline(
        "replay", "redrive", "--from", "emails.dlq", "--reason", "retries_exhausted",
        "--since", iso(since), "--group", group, "--batch-size", "2", "--execute",
    ).stdout  # fmt: skip
    redriven = int(resumed.split("re-drove ")[1].split()[0])
    assert 0 < redriven < len(shoppers), resumed  # it resumed where the killed run stopped
    assert set(stack.wait_mails(shoppers).values()) == {1}
    stack.wait_outcomes(ids, lambda o: o.label == "sent")


def test_the_relay_lost_a_message_after_its_data(stack: Stack, tmp_path: Path) -> None:
    """Connections closed after the data: the mailer cannot tell whether the relay kept the
    message, so it reports `unknown` and resends nothing. The relay's log shows one was lost;
    the operator resends that one by Message-ID, and nobody gets a second copy."""
    kept, lost, quiet = SEEDED["unknown"]
    stack.sink.set_fault(kept.email, Fault("drop", times=1))  # queued, then the client lost
    stack.sink.set_fault(lost.email, Fault("lose", times=1))  # the relay died before queueing
    ids = stack.send_triggers([kept, lost, quiet], CART_ABANDONMENT.trigger_id)
    ends = stack.wait_outcomes(ids, lambda o: o.label in ("sent", "unknown"))
    keys = {o.profile_id: o.idempotency_key or "" for o in ends if o.reason == "smtp_unknown"}
    assert set(keys) == {kept.profile_id, lost.profile_id}
    assert stack.mails_to([kept, lost, quiet]) == {kept.email: 1, lost.email: 0, quiet.email: 1}

    # the relay's log lacks the lost one's Message-ID: that one is resent, nothing else
    relay_log = {digest_of(m.message_id or "") for m in stack.sink.messages}
    missing = sorted({message_digest(key) for key in keys.values()} - relay_log)
    assert missing == [message_digest(keys[lost.profile_id])]
    listed = tmp_path / "missing-at-relay.txt"
    listed.write_text("".join(f"<{d}@relay.example>\n" for d in missing))
    refused = stack.triggerline(
        "replay", "redrive", "--from", "emails.dlq", "--reason", "smtp_unknown",
        "--resend-unknown", "--execute", check=False,
    )  # fmt: skip
    assert refused.returncode == 2 and "Message-IDs" in refused.stderr, refused.stderr
    done = stack.triggerline(
        "replay", "redrive", "--from", "emails.dlq", "--reason", "smtp_unknown",
        "--message-ids-file", str(listed), "--resend-unknown", "--execute",
    ).stdout  # fmt: skip
    assert "re-drove 1 in total" in done and "reopened 1 failed or unknown" in done, done
    assert stack.wait_mails([lost]) == {lost.email: 1}
    stack.wait_outcomes([ids[1]], lambda o: o.label == "sent")
    assert stack.mails_to([kept, quiet]) == {kept.email: 1, quiet.email: 1}


def test_move_to_a_new_cluster_rewinding_the_last_hour_mails_nobody_twice(stack: Stack) -> None:
    """Start both groups an hour back (the overlap a cluster move leaves); every trigger and
    email request of that hour is read again, and nobody gets a second email."""
    ids = stack.send_triggers(SEEDED["move"], CART_ABANDONMENT.trigger_id)
    stack.wait_outcomes(ids, lambda o: o.label == "sent")
    before = len(stack.sink.messages)
    assert before >= 11
    live = stack.triggerline(
        "replay", "rewind", "--group", stack.processor_group, "--to-duration", "1h", "--execute",
        check=False,
    )  # fmt: skip
    assert live.returncode == 2 and "live members" in live.stderr
    # one line of ours; librdkafka may add its own (`%6|...|BGQUEUE|...` as a client closes)
    ours = [line for line in live.stderr.strip().splitlines() if not line.startswith("%")]
    assert len(ours) == 1, live.stderr
    stack.stop("processor")
    stack.stop("mailer")
    for group, topic in ((stack.processor_group, ["--topic", "triggers.raw"]),
                         (stack.mailer_group, [])):  # fmt: skip
        plan = stack.triggerline("replay", "rewind", "--group", group, *topic,
                                 "--to-duration", "1h", "--execute").stdout  # fmt: skip
        assert "applied" in plan and "total to reprocess: 0" not in plan, plan
    mailed = sorted({o.message_id for o in stack.outcomes if o.label == "sent"})
    mark = len(stack.outcomes)
    stack.start("processor")
    stack.start("mailer")
    # every trigger of the hour is read again (the processor reports it a duplicate), and every
    # request that was mailed is read again and answered from its claim, not sent
    stack.wait_outcomes(stack.sent_ids, lambda o: True, after=mark)
    stack.wait_outcomes(mailed, lambda o: o.detail.get("redelivered") == "true", after=mark)
    time.sleep(2)  # a sleep: a second email from the rewind would have arrived by now
    assert len(stack.sink.messages) == before, stack.log("mailer")
    repeats = {k: n for k, n in stack.sink.count_by_message_id().items() if n > 1}
    assert repeats == {}

"""What a run left on its topics and at the SMTP sink, read back after the run, per trigger.

Every timestamp is one the pipeline already writes: the envelope's upstream `createTime`, the
Kafka record timestamps (producer CreateTime) of `triggers.raw` (the fetcher), of the fetcher's
pointer record (produced last in each transaction, just before the commit), of the processor's
repartition topic (stage 1, resolve) and of `emails.<campaign>` (stage 2, decide), the first
`sent` outcome (the mailer), and the SMTP sink's journal (acceptance).
"""

from __future__ import annotations

import bisect
import json
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from services.common.headers import MESSAGE_ID, UPSTREAM_OFFSET, UPSTREAM_PARTITION, X_SOURCE
from services.common.kafka import Headers, header
from services.common.message_ids import digest_of, message_digest
from services.common.serde import email_request_serde, envelope_serde, outcome_serde
from services.common.topics import Topics

ENVELOPE_PREFIX = ("topic", "partition", "offset", "createTime")
# The simulator's shoppers' addresses (services/simulator/population.py), as the envelope's
# Avro strings carry them: UTF-8, unescaped.
SHOPPER_EMAIL = re.compile(rb"shopper\d+@example\.com")


@dataclass
class Journey:
    """One trigger's way through the pipeline; epoch milliseconds, None where it never got."""

    message_id: str
    created: float | None = None  # upstream createTime
    raw: float | None = None  # triggers.raw record (fetcher produce)
    committed: float | None = None  # the pointer record of the transaction that made it visible
    resolved: float | None = None  # repartition record (processor stage 1)
    decided: float | None = None  # emails.<campaign> record (processor stage 2)
    accepted: float | None = None  # first acceptance at the SMTP sink
    recorded: float | None = None  # first `sent` outcome record (mailer)
    upstream: tuple[int, int] | None = None  # upstream partition and offset
    rewritten: int = 0  # further triggers.raw records of that same upstream message (the fetcher)
    raw_position: tuple[int, int] | None = None  # its triggers.raw partition and offset
    raw_email: str | None = None  # the first shopper address its envelope carries, if any
    raw_key: str | None = None  # its triggers.raw key: the visitor's mcId or declared id
    recipient: str | None = None
    profile_id: str | None = None  # from its email request or outcome: names its shopper
    idempotency_key: str | None = None
    outcomes: Counter[str] = field(default_factory=Counter)  # label -> records
    emails: int = 0  # messages at the sink with this trigger's Message-ID


@dataclass(frozen=True)
class SinkMail:
    """One line of the sink's journal."""

    at: float
    message_id: str
    recipients: tuple[str, ...]
    dropped: bool

    @property
    def digest(self) -> str:
        return digest_of(self.message_id)


@dataclass
class RunRecords:
    """Everything read back: journeys by upstream messageId, the sink's mail, and the counts a
    reconciliation needs."""

    journeys: dict[str, Journey]
    mail: list[SinkMail]
    raw_records: int = 0
    request_records: int = 0
    outcome_records: int = 0
    retry_records: dict[str, int] = field(default_factory=dict)
    email_dlq_records: int = 0
    payload_sample: list[tuple[bytes | None, bytes]] = field(default_factory=list)


def read_journal(path: Path) -> list[SinkMail]:
    mail: list[SinkMail] = []
    if not path.exists():
        return mail
    for line in path.read_text(encoding="utf-8").splitlines():
        at, message_id, recipients, dropped = line.split("\t")
        mail.append(SinkMail(float(at), message_id, tuple(recipients.split(",")), dropped == "1"))
    return mail


def read_topics(
    bootstrap: str, names: Iterable[str], handle: Callable[[Message], None], timeout: float = 120
) -> None:
    """Every committed record of `names` from the beginning to the end, to `handle`."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"e2e-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "fetch.max.bytes": 64 * 1024 * 1024,
        }
    )
    try:
        wanted = []
        for name in names:
            metadata = consumer.list_topics(name, timeout=30).topics[name]
            wanted += [TopicPartition(name, p, OFFSET_BEGINNING) for p in metadata.partitions]
        if not wanted:
            return
        consumer.assign(wanted)
        waiting = {(tp.topic, tp.partition) for tp in wanted}
        idle = 0.0
        while waiting and idle < timeout:
            batch = consumer.consume(5000, 1.0)
            idle = 0.0 if batch else idle + 1.0
            for message in batch:
                error = message.error()
                if error is None:
                    handle(message)
                elif error.code() == KafkaError._PARTITION_EOF:
                    waiting.discard((str(message.topic()), int(message.partition() or 0)))
    finally:
        consumer.close()


@cache
def _prefix_readable() -> bool:
    """Whether the envelope schema starts with the four fields `create_time_ms` parses."""
    fields = [f["name"] for f in envelope_serde().schema["fields"][: len(ENVELOPE_PREFIX)]]
    return tuple(fields) == ENVELOPE_PREFIX


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """An Avro (zigzag) long at `at`; returns it and where the next value starts."""
    shift = result = 0
    while True:
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), at


def create_time_ms(value: bytes) -> float:
    """The envelope's upstream `createTime`, read from the front of the Avro body: a full decode
    of 100,000 envelopes (2% of them with thousands of hits) takes longer than the run."""
    serde = envelope_serde()
    if _prefix_readable() and value[2:10] == serde.fingerprint:
        at = 10
        length, at = _varint(value, at)  # topic: a string
        at += length
        _, at = _varint(value, at)  # partition
        _, at = _varint(value, at)  # offset
        created, _ = _varint(value, at)
        return float(created)
    created_at = serde.decode(value)["createTime"]
    return float(created_at.timestamp() * 1000)


def _headers(message: Message) -> Headers:
    found = message.headers()
    return found if isinstance(found, list) else []


def _position(message: Message) -> tuple[int, int]:
    return int(message.partition() or 0), int(message.offset() or 0)


def read_run(
    bootstrap: str,
    topics: Topics,
    campaigns: Iterable[str],
    upstream_consumer: str,
    journal: Path,
    sample_payloads: int = 20_000,
) -> RunRecords:
    """Read every topic of the run and the sink's journal into journeys by messageId."""
    journeys: dict[str, Journey] = {}
    records = RunRecords(journeys, read_journal(journal))
    by_position: dict[tuple[int, int], str] = {}  # triggers.raw partition, offset -> messageId

    def journey(message_id: str) -> Journey:
        found = journeys.get(message_id)
        if found is None:
            found = journeys[message_id] = Journey(message_id)
        return found

    def stamp(message: Message) -> float:
        return float(message.timestamp()[1])

    def on_raw(message: Message) -> None:
        records.raw_records += 1
        headers = _headers(message)
        message_id = header(headers, MESSAGE_ID) or f"raw:{message.offset()}"
        trip = journey(message_id)
        partition = header(headers, UPSTREAM_PARTITION)
        offset = header(headers, UPSTREAM_OFFSET)
        upstream = (int(partition), int(offset)) if partition and offset else None
        if trip.raw is not None and upstream is not None and upstream == trip.upstream:
            trip.rewritten += 1  # an upstream repeat has a position of its own
        if trip.raw is None:
            value = message.value() or b""
            trip.raw = stamp(message)
            trip.created = create_time_ms(value)
            trip.raw_key = (message.key() or b"").decode(errors="replace")
            shopper_email = SHOPPER_EMAIL.search(value)  # names an email-only trigger's shopper
            trip.raw_email = shopper_email.group().decode() if shopper_email else None
            trip.raw_position = _position(message)
            trip.upstream = upstream
            if len(records.payload_sample) < sample_payloads:
                records.payload_sample.append((message.key(), value))
        by_position[_position(message)] = message_id

    read_topics(bootstrap, [topics.triggers_raw.name], on_raw)

    pointers: dict[int, list[tuple[int, float]]] = defaultdict(list)  # upstream p -> (next, ts)
    pointer_prefix = f"{upstream_consumer}|".encode()

    def on_pointer(message: Message) -> None:
        key = message.key() or b""
        if key.startswith(pointer_prefix) and message.value():
            partition = int(key.rsplit(b"|", 1)[1])
            offset = int(json.loads(message.value() or b"{}")["offset"])
            pointers[partition].append((offset, stamp(message)))

    read_topics(bootstrap, [topics.fetcher_pointers.name], on_pointer)
    _commit_times(journeys.values(), pointers)

    def on_repartition(message: Message) -> None:
        source = header(_headers(message), X_SOURCE)
        if source is None:
            return  # a release tick, not a trigger
        _, partition, offset = source.rsplit(":", 2)
        message_id = by_position.get((int(partition), int(offset)))
        if message_id is not None:
            trip = journey(message_id)
            trip.resolved = trip.resolved or stamp(message)
            key = message.key()
            if trip.profile_id is None and key:
                trip.profile_id = key.decode()  # stage 1 re-keys by profile id

    read_topics(bootstrap, [topics.processor_by_profile.name], on_repartition)

    requests_serde = email_request_serde()
    by_digest: dict[str, str] = {}

    def on_request(message: Message) -> None:
        records.request_records += 1
        request = requests_serde.decode(message.value())
        trip = journey(request["messageId"])
        trip.decided = trip.decided or stamp(message)
        trip.recipient = request["email"]
        trip.profile_id = request["profileId"]
        trip.idempotency_key = request["idempotencyKey"]
        by_digest[message_digest(request["idempotencyKey"])] = request["messageId"]

    read_topics(bootstrap, [topics.emails(c).name for c in campaigns], on_request)

    outcomes = outcome_serde()

    def on_outcome(message: Message) -> None:
        records.outcome_records += 1
        outcome = outcomes.decode(message.value())
        status = str(outcome["status"]).lower()
        label = f"{status}:{outcome['reason']}" if outcome.get("reason") else status
        trip = journey(outcome["messageId"])
        trip.outcomes[label] += 1
        trip.profile_id = trip.profile_id or outcome.get("profileId")
        if status == "sent" and trip.recorded is None:
            trip.recorded = stamp(message)

    read_topics(bootstrap, [topics.outcomes.name], on_outcome)

    def on_retry(message: Message) -> None:
        name = str(message.topic())
        records.retry_records[name] = records.retry_records.get(name, 0) + 1

    read_topics(bootstrap, [t.name for t in topics.email_retries()], on_retry)

    def on_email_dlq(_message: Message) -> None:
        records.email_dlq_records += 1

    read_topics(bootstrap, [topics.emails_dlq.name], on_email_dlq)

    for mail in records.mail:
        owner = by_digest.get(mail.digest)
        if owner is None:
            continue
        trip = journey(owner)
        trip.emails += 1
        if trip.accepted is None or mail.at < trip.accepted:
            trip.accepted = mail.at
    return records


def _commit_times(
    journeys: Iterable[Journey], pointers: dict[int, list[tuple[int, float]]]
) -> None:
    """A record became visible with the first pointer record of its upstream partition that
    moved past its offset: that record is the transaction's last, produced just before the
    commit."""
    ordered = {p: sorted(entries) for p, entries in pointers.items()}
    offsets = {p: [offset for offset, _ in entries] for p, entries in ordered.items()}
    for trip in journeys:
        if trip.upstream is None or trip.upstream[0] not in ordered:
            continue
        partition, offset = trip.upstream
        at = bisect.bisect_right(offsets[partition], offset)
        if at < len(offsets[partition]):
            trip.committed = ordered[partition][at][1]

"""Re-driving dead letters: back to their original topic, selected by filter, exactly once.

A re-drive reads a dead-letter topic with a consumer group of its own and produces each selected
record back to its `x-original-topic` with its key, bytes and headers (minus the error headers,
plus `x-redrive-count`). Records and progress travel together: every batch is one Kafka
transaction holding the re-driven records *and* the group's new offsets
(`send_offsets_to_transaction`), so an interrupted re-drive (Ctrl-C, a killed pod) resumes from
its last committed batch, and a batch cut short is aborted: readers use `read_committed` and
never see it. The transactional id is derived from the group, so a resumed run fences a
half-dead earlier one before reading its position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from sqlalchemy import Engine, bindparam, update

from services.common.db.tables import deliveries
from services.common.headers import X_FAILED_AT
from services.common.kafka import Headers, high_watermark, make_admin, make_consumer, make_producer
from services.common.message_ids import message_digest
from services.common.models import EmailRequest
from services.common.serde import email_request_serde, envelope_serde
from services.common.settings import KafkaSettings
from services.common.topics import Topics
from services.common.topics import topics as configured_topics  # `topics` names parameters here
from services.ops.errors import OperatorError
from services.ops.groups import redrive_group
from services.ops.rules.redrive import (
    DeadLetter,
    Redrive,
    RedriveFilter,
    RedriveTally,
    progress_group,
    select_dead_letter,
)
from services.ops.rules.replay import redrive_headers
from services.ops.topic_window import partitions_of

# Records per transaction: each commit costs the broker about 10 ms, whatever its size.
DEFAULT_BATCH = 500
_IDLE_POLLS = 5

Progress = Callable[[int], None]  # called with the number of records just handled
CampaignOf = Callable[[str], str | None]  # trigger id -> campaign (the routing file)


def redrivable_topics(settings: KafkaSettings, topics: Topics) -> set[str]:
    """Where dead letters may go back to: the trigger input and the email topics."""
    emails_prefix = f"{topics.prefix}emails."
    existing = make_admin(settings).list_topics(timeout=30).topics
    emails = {n for n in existing if n.startswith(emails_prefix) and n != topics.emails_dlq.name}
    return {topics.triggers_raw.name} | emails


class ClaimReopener:
    """Gives settled delivery claims back, so a re-driven email request can be sent.

    The mailer settles a request it could not send as `failed` (a broken template, retries spent
    while the relay was down) and answers a later copy of it with that status. Re-driving such a
    request is the operator saying "try again": its claim goes back to `pending` with no holder,
    which the mailer's claim takes over like one a crashed instance let go. `sent` rows never
    move. `unknown` rows (the message may have been delivered) move only with `resend_unknown`:
    the operator has checked the relay's log and names the messages that never reached it.
    """

    def __init__(self, engine: Engine, *, resend_unknown: bool = False) -> None:
        self._engine = engine
        statuses = ["failed", "unknown"] if resend_unknown else ["failed"]
        self._statement = (
            update(deliveries)
            .where(
                deliveries.c.idempotency_key.in_(bindparam("b_keys", expanding=True)),
                deliveries.c.status.in_(statuses),
            )
            .values(status="pending", claimed_by=None, updated_at=bindparam("b_now"))
        )

    def reopen(self, keys: Iterable[str]) -> int:
        wanted = sorted(set(keys))
        if not wanted:
            return 0
        reopened = 0
        with self._engine.begin() as conn:
            for at in range(0, len(wanted), 500):
                params = {"b_keys": wanted[at : at + 500], "b_now": datetime.now(UTC)}
                reopened += conn.execute(self._statement, params).rowcount
        return reopened


@dataclass(frozen=True)
class RedriveRun:
    """What one `redrive` call did (or, without `execute`, would do)."""

    tally: RedriveTally
    group: str
    claims_reopened: int = 0


def _headers(message: Message) -> Headers:
    raw = message.headers() or []
    return list(raw.items()) if isinstance(raw, dict) else list(raw)


def _failed_at(decoded: dict[str, str], message: Message) -> datetime | None:
    text = decoded.get(X_FAILED_AT)
    if text and text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    kind, stamp = message.timestamp()
    return datetime.fromtimestamp(stamp / 1000, UTC) if kind and stamp > 0 else None


def _email_request(value: bytes | None) -> EmailRequest | None:
    try:
        return EmailRequest.from_record(email_request_serde().decode(value))
    except Exception:  # undecodable: no campaign or trigger id, so no such filter selects it
        return None


def dead_letter_of(
    message: Message, wanted: RedriveFilter, topics: Topics, campaign_of: CampaignOf | None
) -> DeadLetter:
    """The record as the selection rule sees it; the value is decoded only when a filter on
    campaign or trigger id needs it."""
    decoded = {
        k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
        for k, v in _headers(message)
        if v is not None
    }
    letter = DeadLetter(decoded, _failed_at(decoded, message))
    if not wanted.needs_value:
        return letter
    original = letter.original_topic or ""
    if original.startswith(f"{topics.prefix}emails."):
        request = _email_request(message.value())
        if request is None:
            return letter
        digest = message_digest(request.idempotency_key)
        return DeadLetter(decoded, letter.failed_at, request.campaign, request.trigger_id, digest)
    try:
        envelope = envelope_serde().decode(message.value())
        trigger_id = str(envelope["pipelineMessage"]["trigger"]["triggerId"]).strip()
    except Exception:  # not an envelope: only reason and time filters can select it
        return letter
    campaign = campaign_of(trigger_id) if campaign_of is not None else None
    return DeadLetter(decoded, letter.failed_at, campaign, trigger_id)


def redrive(
    settings: KafkaSettings,
    source: str,
    *,
    wanted: RedriveFilter | None = None,
    execute: bool = False,
    limit: int | None = None,
    group: str | None = None,
    allowed: set[str] | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
    claims: ClaimReopener | None = None,
    campaign_of: CampaignOf | None = None,
    topics: Topics | None = None,
) -> RedriveRun:
    """Send the selected dead letters of `source` back where they came from.

    Without `execute` nothing is produced or committed: the tally is the plan. `on_start` gets
    the number of records to read (for a progress bar); `limit` stops after that many re-driven
    records, committing exactly the position after the last one handled. `topics` defaults to
    this environment's declaration.
    """
    topics = configured_topics() if topics is None else topics
    wanted = wanted or RedriveFilter()
    group = group or progress_group(redrive_group(), wanted)
    allowed = redrivable_topics(settings, topics) if allowed is None else allowed
    consumer = make_consumer(
        settings,
        group,
        "triggerline-redrive",
        overrides={"enable.auto.commit": False, "enable.partition.eof": True},
    )
    tally = RedriveTally()
    reopened = 0
    producer: Producer | None = None
    try:
        if execute:
            # One transactional id per group and source: a resumed run fences the one it
            # replaces (aborting that run's open batch) before it reads the committed position.
            producer = make_producer(settings, "triggerline-redrive", f"{group}.{source}")
            producer.init_transactions(60)
        partitions = partitions_of(consumer, source)
        ends = {p: high_watermark(consumer, source, p) for p in partitions}
        committed = consumer.committed([TopicPartition(source, p) for p in partitions], 30)
        starts = {
            tp.partition: tp.offset
            if tp.offset >= 0
            else consumer.get_watermark_offsets(TopicPartition(source, tp.partition), 30)[0]
            for tp in committed
        }
        if on_start is not None:
            on_start(sum(max(0, ends[p] - starts[p]) for p in partitions))
        todo = {p for p in partitions if starts[p] < ends[p]}
        consumer.assign([TopicPartition(source, p, starts[p]) for p in todo])
        positions: dict[int, int] = {}
        batch_keys: list[str] = []
        in_batch = 0
        idle = 0
        if producer is not None:
            producer.begin_transaction()
        while todo and (limit is None or tally.total < limit):
            message = consumer.poll(1.0)
            if message is None:
                # under read_committed the end may be a marker, never delivered: stop once the
                # topic has been quiet for a while
                idle += 1
                if idle >= _IDLE_POLLS:
                    break
                continue
            idle = 0
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    todo.discard(message.partition() or 0)
                    continue
                raise OperatorError(f"reading {source}: {error.str()}")
            partition = message.partition() or 0
            offset = message.offset() or 0
            if partition not in todo or offset >= ends[partition]:
                todo.discard(partition)
                continue
            letter = dead_letter_of(message, wanted, topics, campaign_of)
            choice = select_dead_letter(letter, wanted, allowed)
            tally.add(letter, choice)
            if producer is not None and isinstance(choice, Redrive):
                headers = [(k, v) for k, v in _headers(message) if isinstance(v, bytes)]
                producer.produce(
                    choice.destination,
                    value=message.value(),
                    key=message.key(),
                    headers=list(redrive_headers(headers)),
                )
                producer.poll(0)
                if claims is not None:
                    request = _email_request(message.value())
                    if request is not None:
                        batch_keys.append(request.idempotency_key)
            positions[partition] = offset + 1
            if offset + 1 >= ends[partition]:
                todo.discard(partition)
            in_batch += 1
            if progress is not None:
                progress(1)
            if producer is not None and in_batch >= batch_size:
                reopened += _commit(producer, consumer, source, positions, claims, batch_keys)
                batch_keys, in_batch = [], 0
                producer.begin_transaction()
        if producer is not None:
            reopened += _commit(producer, consumer, source, positions, claims, batch_keys)
        return RedriveRun(tally, group, reopened)
    except KeyboardInterrupt:
        if producer is not None:
            # The open batch is dropped as a whole; committed batches stay re-driven, and the
            # same command resumes after them.
            producer.abort_transaction(30)
        raise
    finally:
        consumer.close()


def _commit(
    producer: Producer,
    consumer: Consumer,
    source: str,
    positions: dict[int, int],
    claims: ClaimReopener | None,
    keys: list[str],
) -> int:
    """Reopen the batch's failed claims, then commit its records and offsets as one.

    The claims go first: if the Kafka commit then fails, a reopened claim without a request is
    harmless (pending, held by nobody), and the resumed run re-drives the request.
    """
    reopened = claims.reopen(keys) if claims is not None and keys else 0
    if positions:
        offsets = [TopicPartition(source, p, o) for p, o in sorted(positions.items())]
        producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 60)
    producer.commit_transaction(60)
    return reopened

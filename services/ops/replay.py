"""`triggerline replay`: rewind a stopped consumer group, or re-drive dead letters.

    triggerline replay rewind --group triggerline-processor --topic triggers.raw \\
        --to-datetime 2026-11-28T00:00:00Z            # shows the plan
    ... --execute                                      # applies it (the group must be stopped)
    triggerline replay redrive --from triggers.unmatched [--limit 1000] [--execute]

A rewind commits new offsets for a group with no live member (Kafka refuses otherwise, and so
do we, before asking). A re-drive reads a dead-letter topic with its own consumer group and
produces each record back to its `x-original-topic`, with its original key, bytes and headers
plus `x-redrive-count`; the mailer's claims and the validity window keep either from mailing
anyone twice or late.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import UTC, datetime

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from services.common.kafka import Headers, high_watermark, make_admin, make_producer
from services.common.settings import KafkaSettings, load
from services.common.topics import TOPICS
from services.ops.rules.replay import (
    PartitionMove,
    describe_plan,
    redrive_destination,
    redrive_headers,
    rewind_target,
)

REDRIVE_GROUP = "triggerline-redrive"
_IDLE_POLLS = 5


class GroupActive(RuntimeError):
    """The group has live members; stop them (scale to 0) before rewinding."""


def rewind_plan(
    settings: KafkaSettings,
    group: str,
    topic: str,
    mode: str,
    when: datetime | None = None,
    offset: int | None = None,
) -> list[PartitionMove]:
    """Per partition: where the group is, and where it would restart."""
    consumer = Consumer(
        {**settings.client_config(), "group.id": group, "enable.auto.commit": False}
    )
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], 30)
        by_time: dict[int, int] = {}
        if mode == "datetime" and when is not None:
            stamp = int(when.timestamp() * 1000)
            found = consumer.offsets_for_times(
                [TopicPartition(topic, p, stamp) for p in partitions], 30
            )
            by_time = {tp.partition: tp.offset for tp in found}
        moves = []
        for tp in committed:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 30)
            target = rewind_target(mode, low, high, by_time.get(tp.partition), offset)
            moves.append(
                PartitionMove(
                    tp.partition, tp.offset if tp.offset >= 0 else None, target, low, high
                )
            )
        return moves
    finally:
        consumer.close()


def ensure_stopped(admin: AdminClient, group: str) -> None:
    description = admin.describe_consumer_groups([group], request_timeout=30)[group].result()
    if description.state not in (ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD):
        members = ", ".join(m.client_id for m in description.members) or "?"
        raise GroupActive(
            f"group {group} is {description.state.name.lower()} with members {members}; "
            "stop them first (scale the Deployment or StatefulSet to 0)"
        )


def apply_rewind(
    settings: KafkaSettings, group: str, topic: str, moves: list[PartitionMove]
) -> None:
    admin = make_admin(settings)
    ensure_stopped(admin, group)
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, m.partition, m.target) for m in moves]
    )
    admin.alter_consumer_group_offsets([request], request_timeout=30)[group].result()


def redrivable_topics(settings: KafkaSettings) -> set[str]:
    """Where dead letters may go back to: the trigger input and the email topics."""
    emails_prefix = f"{TOPICS.prefix}emails."
    existing = make_admin(settings).list_topics(timeout=30).topics
    emails = {n for n in existing if n.startswith(emails_prefix) and n != TOPICS.emails_dlq.name}
    return {TOPICS.triggers_raw.name} | emails


def redrive(
    settings: KafkaSettings,
    source: str,
    limit: int | None,
    execute: bool,
    group: str = REDRIVE_GROUP,
    allowed: set[str] | None = None,
) -> Counter[str]:
    """Send dead letters of `source` back where they came from; returns counts per destination.

    Without `execute` nothing is produced or committed: the counts are the plan.
    """
    allowed = redrivable_topics(settings) if allowed is None else allowed
    consumer = Consumer(
        {
            **settings.client_config(),
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    producer: Producer | None = make_producer(settings, "triggerline-redrive") if execute else None
    counts: Counter[str] = Counter()
    try:
        partitions = consumer.list_topics(source, timeout=30).topics[source].partitions
        ends = {p: high_watermark(consumer, source, p) for p in partitions}
        committed = consumer.committed([TopicPartition(source, p) for p in partitions], 30)
        starts = {
            tp.partition: tp.offset if tp.offset >= 0 else OFFSET_BEGINNING for tp in committed
        }
        consumer.assign([TopicPartition(source, p, starts[p]) for p in partitions])
        done = {p for p in partitions if starts[p] != OFFSET_BEGINNING and starts[p] >= ends[p]}
        positions: dict[int, int] = {}
        idle = 0
        while len(done) < len(partitions) and (limit is None or counts.total() < limit):
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
                if error.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(str(error))
                continue
            partition = message.partition() or 0
            raw_headers = message.headers() or []
            headers: Headers = (
                list(raw_headers.items()) if isinstance(raw_headers, dict) else list(raw_headers)
            )
            decoded = {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
                       for k, v in headers if v is not None}  # fmt: skip
            destination = redrive_destination(decoded, allowed) or "(not re-drivable)"
            counts[destination] += 1
            if producer is not None and destination in allowed:
                producer.produce(
                    destination,
                    value=message.value(),
                    key=message.key(),
                    headers=list(
                        redrive_headers([(k, v) for k, v in headers if isinstance(v, bytes)])
                    ),
                )
                producer.poll(0)
            positions[partition] = (message.offset() or 0) + 1
            if positions[partition] >= ends[partition]:
                done.add(partition)
        if producer is not None:
            if producer.flush(60):
                raise RuntimeError("re-driven records were not all acknowledged; nothing committed")
            if positions:
                consumer.commit(
                    offsets=[TopicPartition(source, p, o) for p, o in positions.items()],
                    asynchronous=False,
                )
        return counts
    finally:
        consumer.close()


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="triggerline replay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True)
    rewind = sub.add_parser("rewind", help="move a stopped group's offsets")
    rewind.add_argument("--group", required=True)
    rewind.add_argument("--topic", default=TOPICS.triggers_raw.name)
    where = rewind.add_mutually_exclusive_group(required=True)
    where.add_argument("--to-datetime", type=_parse_time, help="ISO time, UTC unless given")
    where.add_argument("--to-offset", type=int)
    where.add_argument("--to-earliest", action="store_true")
    where.add_argument("--to-latest", action="store_true")
    rewind.add_argument("--execute", action="store_true", help="apply the plan")
    again = sub.add_parser("redrive", help="send dead letters back to their original topic")
    again.add_argument("--from", dest="source", required=True,
                       help="triggers.dlq, triggers.unmatched or emails.dlq")  # fmt: skip
    again.add_argument("--limit", type=int, default=None)
    again.add_argument("--execute", action="store_true", help="produce and commit")
    args = parser.parse_args(argv)
    settings = load(KafkaSettings)
    if args.action == "redrive":
        counts = redrive(settings, args.source, args.limit, args.execute)
        verb = "re-drove" if args.execute else "would re-drive"
        for destination, count in counts.most_common():
            print(f"{verb} {count:>8} to {destination}")
        if not args.execute:
            print("(plan only: add --execute to apply)")
        return 0
    mode = ("datetime" if args.to_datetime else "offset" if args.to_offset is not None
            else "earliest" if args.to_earliest else "latest")  # fmt: skip
    moves = rewind_plan(settings, args.group, args.topic, mode, args.to_datetime, args.to_offset)
    print(describe_plan(args.group, args.topic, moves))
    if not args.execute:
        print("(plan only: add --execute to apply; the group must be stopped)")
        return 0
    try:
        apply_rewind(settings, args.group, args.topic, moves)
    except GroupActive as exc:
        print(f"triggerline replay: {exc}", file=sys.stderr)
        return 1
    print("applied")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""confluent-kafka client factories and topic administration, configured one way everywhere."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

# Defined in the C extension; confluent_kafka.admin re-exports them without `__all__`.
from confluent_kafka.cimpl import NewPartitions, NewTopic

from services.common.settings import KafkaSettings
from services.common.topics import TopicSpec

log = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]


def _merge(
    settings: KafkaSettings, overrides: Mapping[str, Any] | None, base: dict[str, Any]
) -> dict[str, Any]:
    return {**settings.client_config(), **base, **dict(overrides or {})}


def make_producer(
    settings: KafkaSettings,
    client_id: str,
    transactional_id: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Producer:
    """An idempotent producer (acks=all); transactional when given a transactional id."""
    base: dict[str, Any] = {
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
    }
    if transactional_id:
        base["transactional.id"] = transactional_id
    return Producer(_merge(settings, overrides, base))


def make_consumer(
    settings: KafkaSettings,
    group_id: str,
    client_id: str,
    overrides: Mapping[str, Any] | None = None,
) -> Consumer:
    """A consumer that commits only what the caller stored and reads committed data only.

    `read_committed` because `triggers.raw` is written in transactions: an aborted batch of a
    crashed fetcher must never reach a reader. Offsets are stored explicitly after the effect of
    a message is durable, and committed in the background from that store.
    """
    base: dict[str, Any] = {
        "group.id": group_id,
        "client.id": client_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
    }
    return Consumer(_merge(settings, overrides, base))


def make_reader(
    settings: KafkaSettings, client_id: str, overrides: Mapping[str, Any] | None = None
) -> Consumer:
    """A consumer that reads partitions it assigns itself and never commits: for pointers,
    tallies and lag probes. Its group id is throwaway (librdkafka requires one); committed
    data only, for the same reason as `make_consumer`."""
    base: dict[str, Any] = {
        "group.id": f"{client_id}-{uuid.uuid4().hex[:8]}",
        "client.id": client_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
    }
    return Consumer(_merge(settings, overrides, base))


def make_admin(settings: KafkaSettings) -> AdminClient:
    return AdminClient(settings.client_config())


def ensure_topics(
    admin: AdminClient,
    specs: Iterable[TopicSpec],
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> list[str]:
    """Create missing topics and raise partition counts that are too low; idempotent.

    Returns the names of topics it created. Existing topics keep their configuration: a changed
    retention is applied by the platform (Strimzi), not by a start-up race between services.
    """
    specs = list(specs)
    metadata = admin.list_topics(timeout=timeout)
    created: list[str] = []
    new = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=replication_factor,
            config=spec.config(),
        )
        for spec in specs
        if spec.name not in metadata.topics
    ]
    if new:
        for name, future in admin.create_topics(new, request_timeout=timeout).items():
            try:
                future.result()
                created.append(name)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    if created:
        _wait_for_leaders(admin, created, timeout)
    grow = [
        NewPartitions(spec.name, spec.partitions)
        for spec in specs
        if spec.name in metadata.topics
        and len(metadata.topics[spec.name].partitions) < spec.partitions
    ]
    if grow:
        for name, future in admin.create_partitions(grow, request_timeout=timeout).items():
            future.result()
            log.warning("raised the partition count of %s; keyed order changes for new data", name)
    return created


def _wait_for_leaders(admin: AdminClient, names: list[str], timeout: float) -> None:
    """Block until every partition of `names` has a leader.

    A topic is usable a moment after CreateTopics returns; a client that asks for offsets or
    produces in that moment gets NOT_LEADER errors, so creation is only done once it is usable.
    """
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        ready = all(
            name in topics
            and topics[name].error is None
            and topics[name].partitions
            and all(p.leader >= 0 and p.error is None for p in topics[name].partitions.values())
            for name in names
        )
        if ready:
            return
        if time.monotonic() > deadline:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"no leaders yet for {names}"))
        time.sleep(0.1)


def high_watermark(consumer: Consumer, topic: str, partition: int, deadline: float = 30.0) -> int:
    """The partition's end offset, retried while a just-created partition has no leader yet."""
    end = time.monotonic() + deadline
    while True:
        try:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            return int(high)
        except KafkaException as exc:
            retriable = exc.args[0].code() in (
                KafkaError.NOT_LEADER_FOR_PARTITION,
                KafkaError.LEADER_NOT_AVAILABLE,
                KafkaError.UNKNOWN_TOPIC_OR_PART,
                KafkaError._TIMED_OUT,
            )
            if not retriable or time.monotonic() > end:
                raise
            time.sleep(0.2)


def header(headers: Headers | None, name: str) -> str | None:
    """The last value of one header, decoded as UTF-8."""
    value = None
    for key, raw in headers or []:
        if key == name and raw is not None:
            value = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return value

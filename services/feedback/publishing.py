"""Publishes recipient events on `outcomes`, keyed by profile id, and reports what Kafka acked."""

from __future__ import annotations

import logging
import threading

from confluent_kafka import KafkaError, Message, Producer

from services.common.kafka import make_producer
from services.common.models import Outcome
from services.common.serde import outcome_serde
from services.common.settings import KafkaSettings
from services.common.topics import topics
from services.feedback import metrics
from services.feedback.store import EventKey

log = logging.getLogger(__name__)


def outcome_producer(settings: KafkaSettings) -> Producer:
    """An idempotent producer that partitions keys as Java clients and faust do (murmur2).

    librdkafka's default partitioner hashes keys differently, so without this a profile's
    suppression would land on another partition number than the profile's email requests and
    the processor's by-profile topic; with it, a consumer co-partitioned with those (same key,
    same partition count) meets the event on the worker that holds the profile.
    """
    return make_producer(
        settings, client_id="triggerline-feedback", overrides={"partitioner": "murmur2_random"}
    )


class OutcomePublisher:
    """Sends outcomes without waiting; `acknowledged` hands back the events Kafka confirmed,
    so the store can mark them published."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._lock = threading.Lock()
        self._acked: list[EventKey] = []

    def publish(self, event: EventKey, outcome: Outcome) -> None:
        key = outcome.profile_id or outcome.message_id
        value = outcome_serde().encode(outcome.to_record())

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                metrics.PUBLISH_FAILURES.inc()
                log.warning("outcome %s of %s not published (%s); sent again later", *event, error)
                return
            with self._lock:
                self._acked.append(event)

        while True:
            try:
                self._producer.produce(
                    topics().outcomes.name, key=key.encode(), value=value, on_delivery=delivered
                )
                break
            except BufferError:
                self._producer.poll(0.1)  # local queue full: let deliveries drain first
        self._producer.poll(0)

    def acknowledged(self) -> list[EventKey]:
        """The events acknowledged since the last call (serves delivery callbacks first)."""
        self._producer.poll(0)
        with self._lock:
            acked, self._acked = self._acked, []
        return acked

    def flush(self, timeout: float) -> int:
        """Wait for outstanding outcomes; how many are still unacknowledged."""
        return int(self._producer.flush(timeout))

"""Count outcomes from a starting point: how a run proves triggers in = outcomes out."""

from __future__ import annotations

from collections import Counter

from confluent_kafka import TopicPartition

from services.common.kafka import high_watermark, make_reader
from services.common.models import Outcome
from services.common.serde import outcome_serde
from services.common.settings import KafkaSettings
from services.common.topics import topics


class OutcomeTally:
    """Reads `outcomes` from the offsets it found at creation; counts outcome labels."""

    def __init__(self, settings: KafkaSettings, topic: str | None = None) -> None:
        self._consumer = make_reader(settings, "triggerline-tally")
        name = topic or topics().outcomes.name
        partitions = self._consumer.list_topics(name, timeout=30).topics[name].partitions
        starts = [
            TopicPartition(name, p, high_watermark(self._consumer, name, p)) for p in partitions
        ]
        self._consumer.assign(starts)
        self._serde = outcome_serde()
        self.counts: Counter[str] = Counter()
        self.outcomes: list[Outcome] = []
        # unsubscribes, bounces, complaints: about emails already `sent`, so not in the balance
        self.recipient_events: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def poll(self, seconds: float = 0.5) -> int:
        """Read what has arrived; returns how many outcomes were new."""
        new = 0
        for message in self._consumer.consume(10000, seconds):
            if message.error():
                continue
            outcome = Outcome.from_record(self._serde.decode(message.value()))
            if outcome.status.is_recipient_event:
                self.recipient_events[outcome.label] += 1
                continue
            self.counts[outcome.label] += 1
            self.outcomes.append(outcome)
            new += 1
        return new

    def summary(self) -> str:
        width = max((len(label) for label in self.counts), default=8)
        lines = [f"  {label:<{width}}  {count:>8}" for label, count in self.counts.most_common()]
        lines.append(f"  {'total':<{width}}  {self.total:>8}")
        for label, count in self.recipient_events.most_common():
            lines.append(f"  {label:<{width}}  {count:>8}  (recipient event)")
        return "\n".join(lines)

    def close(self) -> None:
        self._consumer.close()

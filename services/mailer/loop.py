"""The consume loop: campaign and retry topics in, reports published, then offsets stored.

One consumer reads every `emails.<campaign>` topic (by regex, so campaigns added later are
found at the next metadata refresh) and the retry topics. A retry record that is not due yet
pauses its partition until its `x-not-before`; the records behind it are later still, since
every record of one retry topic waited the same delay.

Requests of one poll are handled together: the database is read and claims are taken once for
the poll, then the messages are all handed to the SMTP pool, which keeps every one of its
connections busy from this thread. The batch's
outcomes, retry records and dead letters are flushed before any of its offsets is stored, so a
crash anywhere redelivers the request and the claim table stops a second email.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from services.common.errors import InvalidInput
from services.common.headers import X_NOT_BEFORE
from services.common.health import Probes
from services.common.kafka import header
from services.common.models import EmailRequest, Outcome, OutcomeStatus
from services.common.serde import email_request_serde
from services.common.topics import topics
from services.mailer import metrics
from services.mailer.delivery import Delivery
from services.mailer.publishing import Publisher, message_headers
from services.mailer.rules.report import SERVICE, Report, internal_error
from services.mailer.rules.retry import RetryTopic

log = logging.getLogger(__name__)

Partition = tuple[str, int]


@dataclass(frozen=True)
class LoopOptions:
    campaign_pattern: str
    retries: Sequence[RetryTopic]
    batch_size: int
    poll_timeout: float
    flush_timeout: float = 30.0
    max_backoff: float = 30.0


@dataclass(frozen=True)
class _Work:
    message: Message
    request: EmailRequest | None = None
    invalid: InvalidInput | None = None


class MailerLoop:
    """Poll, admit, deliver, publish, flush, store: one turn at a time on the caller's thread."""

    def __init__(
        self,
        consumer: Consumer,
        publisher: Publisher,
        delivery: Delivery,
        options: LoopOptions,
        probes: Probes,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._consumer = consumer
        self._publisher = publisher
        self._delivery = delivery
        self._options = options
        self._probes = probes
        self._clock = clock
        self._campaigns = re.compile(rf"^(?:{options.campaign_pattern or '.*'})$")
        self._retry_topics = {retry.name for retry in options.retries}
        self._paused: dict[Partition, datetime] = {}
        self._backoff = 0.0

    def subscribe(self) -> None:
        pattern = topics().emails_pattern(self._options.campaign_pattern or None)
        subscription = [pattern, *sorted(self._retry_topics)]
        self._consumer.subscribe(subscription, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._probes.ready("kafka")

    def run(self, stop: threading.Event) -> None:
        """Turn until `stop` is set; the batch in flight is finished and committed first."""
        try:
            while not stop.is_set():
                self.turn(stop)
        finally:
            self.close()

    def close(self) -> None:
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("final commit failed: %s", exc)
        self._consumer.close()

    def turn(self, stop: threading.Event | None = None) -> int:
        """One poll and everything it brought; returns how many requests were handled."""
        self._resume_due()
        # Wait for the first request only, then take whatever has already arrived: asking for a
        # whole batch would make a request wait up to poll_timeout whenever fewer than
        # batch_size are coming (every request below 1,000/s), for no gain in throughput.
        messages = self._consumer.consume(num_messages=1, timeout=self._options.poll_timeout)
        if messages and self._options.batch_size > 1:
            messages += self._consumer.consume(num_messages=self._options.batch_size - 1, timeout=0)
        self._probes.beat()
        work, cut = self._admit(messages)
        if not work:
            self._store(messages, cut)
            return 0
        requests = [item.request for item in work if item.request is not None]
        try:
            handled = iter(self._delivery.handle_many(requests))
        except Exception as exc:  # a bug must not stop the partitions: dead-letter and go on
            log.exception("unexpected error handling a batch of %d requests", len(requests))
            now = self._clock()
            handled = iter([internal_error(request, exc, now) for request in requests])
        reports = [next(handled) if item.request else self._invalid(item) for item in work]
        holds: dict[Partition, int] = {}
        for item, report in zip(work, reports, strict=True):
            if report.hold is not None:
                _hold(holds, item.message)
                metrics.HELD.labels(report.hold.split(":", 1)[0]).inc()
                continue
            self._publish(item, report)
        failures = self._publisher.flush(self._options.flush_timeout)
        if failures:
            # Nothing of this batch may count as done: read it all again (claims make it safe).
            log.error("publishing failed, re-reading the batch: %s", "; ".join(failures[:5]))
            for item in work:
                _hold(holds, item.message)
        for part, offset in holds.items():
            cut[part] = min(cut.get(part, offset), offset)
            self._consumer.seek(TopicPartition(part[0], part[1], offset))
        self._store(messages, cut)
        if holds:
            reasons = {r.hold for r in reports if r.hold} or {"publishing failed"}
            self._back_off(next(iter(reasons)), stop)
        else:
            self._backoff = 0.0
            self._probes.ready("delivery")
        return len(work) - len(holds)

    def _admit(self, messages: list[Message]) -> tuple[list[_Work], dict[Partition, int]]:
        """Decode what can be handled now; `cut` is, per partition, the first offset left over."""
        now = self._clock()
        work: list[_Work] = []
        cut: dict[Partition, int] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", error)
                continue
            topic, partition = message.topic() or "", message.partition() or 0
            offset = message.offset() or 0
            if (topic, partition) in cut:
                continue
            if topic in self._retry_topics:
                not_before = _not_before(message)
                if not_before is not None and now < not_before:
                    self._consumer.seek(TopicPartition(topic, partition, offset))
                    self._consumer.pause([TopicPartition(topic, partition)])
                    self._paused[(topic, partition)] = not_before
                    cut[(topic, partition)] = offset
                    continue
            try:
                request = EmailRequest.from_record(email_request_serde().decode(message.value()))
            except InvalidInput as exc:
                work.append(_Work(message, invalid=exc))
                continue
            except (KeyError, TypeError, ValueError) as exc:
                work.append(_Work(message, invalid=InvalidInput("invalid_request", str(exc))))
                continue
            if topic in self._retry_topics and not self._campaigns.match(request.campaign):
                continue  # another mailer deployment's request: not ours to send or judge
            work.append(_Work(message, request=request))
        return work, cut

    def _invalid(self, item: _Work) -> Report:
        """A record that is no email request: an `invalid` outcome and a dead letter."""
        assert item.invalid is not None
        message = item.message
        position = f"{message.topic()}:{message.partition()}:{message.offset()}"
        metrics.FAILED.labels("", item.invalid.reason).inc()
        return Report(
            outcome=Outcome(OutcomeStatus.INVALID, position, SERVICE, item.invalid.reason),
            dead_letter=item.invalid.reason,
            error=item.invalid,
        )

    def _publish(self, item: _Work, report: Report) -> None:
        attempt = item.request.attempt if item.request else None
        if report.retry is not None and item.request is not None:
            self._publisher.retry(
                item.message, item.request, report.retry, report.error, self._clock()
            )
        if report.dead_letter is not None:
            self._publisher.dead_letter(item.message, report.dead_letter, report.error, attempt)
            metrics.DEAD_LETTERED.labels(report.dead_letter).inc()
        if report.outcome is not None:
            self._publisher.outcome(report.outcome)

    def _store(self, messages: list[Message], cut: dict[Partition, int]) -> None:
        """Store, per partition, the offset after the last record handled before the cut."""
        last: dict[Partition, int] = {}
        for message in messages:
            if message.error() is not None:
                continue
            part = (message.topic() or "", message.partition() or 0)
            offset = message.offset() or 0
            if part in cut and offset >= cut[part]:
                continue
            last[part] = max(last.get(part, -1), offset)
        if last:
            self._consumer.store_offsets(
                offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
            )

    def _resume_due(self) -> None:
        if not self._paused:
            return
        now = self._clock()
        due = [part for part, at in self._paused.items() if at <= now]
        if due:
            self._consumer.resume([TopicPartition(t, p) for t, p in due])
            for part in due:
                del self._paused[part]

    def _back_off(self, reason: str, stop: threading.Event | None) -> None:
        """The SMTP server or database is down: wait, growing the wait, then read again."""
        self._backoff = min(self._options.max_backoff, max(0.5, self._backoff * 2))
        self._probes.not_ready("delivery", reason[:200])
        log.warning("holding delivery for %.1fs: %s", self._backoff, reason)
        if stop is not None:
            stop.wait(self._backoff)
        else:
            time.sleep(self._backoff)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Handling is synchronous in this thread, so nothing is in flight here: commit what
        # was stored so the next owner starts right after it.
        for p in partitions:
            self._paused.pop((p.topic, p.partition), None)
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("commit on revoke failed: %s", exc)


def _hold(holds: dict[Partition, int], message: Message) -> None:
    """Remember the earliest offset of the partition that must be read again."""
    part = (message.topic() or "", message.partition() or 0)
    offset = message.offset() or 0
    holds[part] = min(holds.get(part, offset), offset)


def _not_before(message: Message) -> datetime | None:
    raw = header(message_headers(message), X_NOT_BEFORE)
    if not raw:
        return None
    try:
        return datetime.fromtimestamp(int(raw) / 1000, UTC)
    except ValueError:
        return None

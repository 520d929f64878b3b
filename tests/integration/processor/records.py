"""Reading and writing the processor's topics in integration tests."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Message, Producer

from services.common.models import EmailRequest, Outcome
from services.common.serde import email_request_serde, outcome_serde
from services.common.topics import topics
from tests.conftest import Consumed


def produce(producer: Producer, *records: tuple[bytes, bytes]) -> None:
    for key, value in records:
        producer.produce(topics().triggers_raw.name, key=key, value=value)
    assert producer.flush(10) == 0


def requests_for(message_ids: set[str]) -> Callable[[Message], bool]:
    def match(message: Message) -> bool:
        record = email_request_serde().decode(message.value())
        return EmailRequest.from_record(record).message_id in message_ids

    return match


def outcomes_for(message_ids: set[str]) -> Callable[[Message], bool]:
    def match(message: Message) -> bool:
        return Outcome.from_record(outcome_serde().decode(message.value())).message_id in (
            message_ids
        )

    return match


def as_requests(consumed: Consumed) -> list[EmailRequest]:
    return [EmailRequest.from_record(email_request_serde().decode(v)) for v in consumed.values()]


def as_outcomes(consumed: Consumed) -> list[Outcome]:
    return [Outcome.from_record(outcome_serde().decode(v)) for v in consumed.values()]

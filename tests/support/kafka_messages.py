"""Reading consumed Kafka records in tests."""

from __future__ import annotations

from typing import cast

from confluent_kafka import Message

from services.common.kafka import Headers, header


def header_of(message: Message, name: str) -> str | None:
    """The last value of one header of a consumed record, decoded as UTF-8.

    confluent_kafka's stub types `Message.headers()` as a dict or a list; a consumed record's
    headers are always a list of (key, value) pairs, or None, which is what `header` reads.
    """
    return header(cast(Headers, message.headers()), name)

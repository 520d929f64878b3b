"""Upstream JSON envelopes -> `TriggerEnvelope` records: validation and unit conversion.

Upstream is lenient about shape (optional everything, strings for numbers, seconds beside
milliseconds); this is the one place that leniency is absorbed. What cannot become a valid
record raises `InvalidInput` with a reason that ends up in the DLQ headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from services.common.errors import InvalidInput

PIPELINE_MESSAGE = "com.adobe.mcloud.pipeline.pipelineMessage"
TRIGGER = "com.adobe.mcloud.protocol.trigger"
MAX_ENVELOPE_BYTES = 1_000_000  # upstream's own per-message limit
_MAX_MILLIS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


@dataclass(frozen=True)
class Sync:
    """A SYNC envelope: a ping carrying an opaque marker of offsets."""

    marker: str


@dataclass(frozen=True)
class Data:
    """A DATA envelope converted to a `TriggerEnvelope` record."""

    record: dict[str, Any]
    key: str  # mcId: one visitor's triggers stay in order
    message_id: str
    partition: int
    offset: int


def parse_envelope(line: bytes) -> Data | Sync:
    """Decode one streamed envelope; `InvalidInput` says why it cannot be used."""
    if len(line) > MAX_ENVELOPE_BYTES:
        raise InvalidInput("oversized", f"{len(line)} bytes, over {MAX_ENVELOPE_BYTES}")
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("not_json", str(exc)) from None
    if not isinstance(document, dict):
        raise InvalidInput("not_an_object", type(document).__name__)
    if "event" in document and "envelopeType" not in document:  # Adobe I/O Events wrapping
        document = document["event"]
        if not isinstance(document, dict):
            raise InvalidInput("not_an_object", "event is not an object")
    kind = document.get("envelopeType")
    if kind == "SYNC":
        return Sync(marker=str(document.get("syncMarker", "")))
    if kind != "DATA":
        raise InvalidInput("unknown_envelope_type", repr(kind))
    record = to_record(document)
    return Data(
        record=record,
        key=record["pipelineMessage"]["trigger"]["mcId"],
        message_id=record["pipelineMessage"]["header"]["messageId"],
        partition=record["partition"],
        offset=record["offset"],
    )


def to_record(envelope: dict[str, Any]) -> dict[str, Any]:
    """The Avro record of a DATA envelope; raises `InvalidInput` naming the bad field."""
    message = _object(envelope, PIPELINE_MESSAGE)
    header = _object(message, "header", PIPELINE_MESSAGE)
    trigger = _object(message, TRIGGER, PIPELINE_MESSAGE)
    enrichments = trigger.get("enrichments", {})
    if not isinstance(enrichments, dict):
        raise InvalidInput("bad_field", "trigger.enrichments must be an object")
    return {
        "topic": _text(envelope, "topic", required=True),
        "partition": _integer(envelope, "partition"),
        "offset": _integer(envelope, "offset"),
        "createTime": _millis(envelope, "createTime"),
        "pipelineMessage": {
            "header": {
                "messageType": _text(header, "messageType"),
                "source": _text(header, "source"),
                "sentTime": _millis(header, "sentTime") if "sentTime" in header else None,
                "imsOrg": _text(header, "imsOrg"),
                "messageId": _text(header, "messageId", required=True),
                "properties": [
                    {"name": str(p.get("name", "")), "value": str(p.get("value", ""))}
                    for p in _array(header, "properties")
                    if isinstance(p, dict)
                ],
            },
            "trigger": {
                "triggerId": _text(trigger, "triggerId", required=True),
                "triggerTimestamp": _millis(trigger, "triggerTimestamp"),
                "mcId": _text(trigger, "mcId", required=True),
                # Kept verbatim: dimensions vary per trigger and keys carry Adobe's quirks.
                "enrichments": orjson.dumps(enrichments).decode(),
                "triggerPath": [
                    {
                        "timestamp": _millis(step, "timestamp"),
                        "stateId": str(step.get("stateId", "")),
                        "transition": str(step.get("transition", "")),
                    }
                    for step in _array(trigger, "triggerPath")
                    if isinstance(step, dict)
                ],
            },
        },
    }


def _object(parent: dict[str, Any], name: str, where: str = "envelope") -> dict[str, Any]:
    value = parent.get(name)
    if not isinstance(value, dict):
        raise InvalidInput("missing_field", f"{where}.{name} is missing or not an object")
    return value


def _array(parent: dict[str, Any], name: str) -> list[Any]:
    """An optional list field: absent or null is empty; anything else is not a list."""
    value = parent.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput("bad_field", f"{name} must be an array, got {type(value).__name__}")
    return value


def _text(parent: dict[str, Any], name: str, required: bool = False) -> str:
    value = parent.get(name)
    if value is None or (required and str(value).strip() == ""):
        if required:
            raise InvalidInput("missing_field", f"{name} is required")
        return ""
    if isinstance(value, dict | list):
        raise InvalidInput("bad_field", f"{name} must be a string")
    return str(value)


def _integer(parent: dict[str, Any], name: str) -> int:
    value = parent.get(name)
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput("bad_field", f"{name} must be an integer, got {value!r}") from None
    if number < 0:
        raise InvalidInput("bad_field", f"{name} must not be negative")
    return number


def _millis(parent: dict[str, Any], name: str) -> int:
    """An epoch-milliseconds field, as the Avro `timestamp-millis` it becomes.

    A value that is plainly epoch seconds (under 1e10, i.e. before 2286 read as seconds) is
    accepted too: upstream mixes the units between fields, and producers have mixed them within
    one. Kept as an integer: readers get UTC datetimes from the logical type, and the fetcher
    skips building a datetime per field on its hot path.
    """
    number = _integer(parent, name)
    if number < 10_000_000_000:
        number *= 1000
    if number > _MAX_MILLIS:
        raise InvalidInput("bad_field", f"{name}={number} is not a time")
    return number

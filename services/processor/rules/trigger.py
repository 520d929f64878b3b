"""The fields of a decoded `TriggerEnvelope` the processor decides on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.common.errors import InvalidInput


@dataclass(frozen=True)
class Trigger:
    """One trigger, with its time as a tz-aware UTC datetime."""

    message_id: str
    trigger_id: str
    mc_id: str
    timestamp: datetime  # the Analytics trigger time (triggerTimestamp), not the Kafka time
    enrichments: str  # verbatim JSON text


def trigger_from_record(record: dict[str, Any]) -> Trigger:
    """Pick the trigger out of an envelope record; missing ids are `InvalidInput`."""
    try:
        message = record["pipelineMessage"]
        header, trigger = message["header"], message["trigger"]
        message_id = str(header["messageId"]).strip()
        trigger_id = str(trigger["triggerId"]).strip()
        timestamp = trigger["triggerTimestamp"]
        mc_id = str(trigger["mcId"]).strip()
        enrichments = str(trigger["enrichments"])
    except (KeyError, TypeError) as exc:
        raise InvalidInput("missing_field", f"envelope lacks {exc}") from None
    if not message_id:
        raise InvalidInput("missing_field", "header.messageId is empty")
    if not trigger_id:
        raise InvalidInput("missing_field", "trigger.triggerId is empty")
    if not isinstance(timestamp, datetime):
        raise InvalidInput("bad_field", "trigger.triggerTimestamp is not a time")
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    return Trigger(message_id, trigger_id, mc_id, timestamp.astimezone(UTC), enrichments)

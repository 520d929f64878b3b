"""The fields of a decoded `TriggerEnvelope` the processor decides on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.common.enrichments import Enrichments
from services.common.errors import InvalidInput
from services.common.models import OutcomeStatus
from services.processor.rules.decision import End
from services.processor.rules.rulebook import CampaignRules


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


@dataclass(frozen=True)
class ResolvedTrigger:
    """A trigger as stage 2 reads it: re-keyed by its profile, with its triggers.raw origin."""

    trigger: Trigger
    enrichments: Enrichments
    profile_id: str  # empty when the record came without a key
    origin: str  # the triggers.raw position it was first read from

    def end(
        self,
        status: OutcomeStatus,
        reason: str | None,
        campaign: CampaignRules | None,
        *,
        with_profile: bool = True,
        detail: Mapping[str, str] | None = None,
        unmatched: bool = False,
    ) -> End:
        """This trigger's outcome, with its origin in the detail."""
        return End(
            status,
            self.trigger.message_id,
            reason,
            self.trigger.trigger_id,
            None if campaign is None else campaign.name,
            self.profile_id if with_profile else None,
            self.origin,
            detail,
            unmatched,
        )

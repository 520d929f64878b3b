"""The email request a decision to send becomes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from services.common.models import EmailRequest
from services.processor.rules.enrichments import Enrichments, products, variables
from services.processor.rules.keys import idempotency_key
from services.processor.rules.trigger import Trigger


def build_email_request(
    *,
    campaign: str,
    trigger: Trigger,
    enrichments: Enrichments,
    profile_id: str,
    email: str,
    first_name: str | None,
    locale: str | None,
    product_dimensions: Sequence[str],
    variable_dimensions: Mapping[str, str],
    validity: timedelta,
    not_before: datetime | None = None,
) -> EmailRequest:
    """Address, personalise and time-box one request.

    `expiresAt` is the trigger's own time plus the campaign's validity, so the mailer refuses a
    request that a backlog or a replay made late, whatever the Kafka timestamps say.
    """
    return EmailRequest(
        idempotency_key=idempotency_key(campaign, profile_id, trigger.message_id),
        campaign=campaign,
        trigger_id=trigger.trigger_id,
        message_id=trigger.message_id,
        trigger_timestamp=trigger.timestamp,
        profile_id=profile_id,
        email=email,
        first_name=first_name,
        locale=locale,
        products=products(enrichments, product_dimensions),
        variables=variables(enrichments, variable_dimensions),
        not_before=not_before,
        expires_at=trigger.timestamp + validity,
    )

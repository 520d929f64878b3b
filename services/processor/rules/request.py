"""The email request a decision to send becomes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from services.common.enrichments import Enrichments, products
from services.common.models import EmailRequest
from services.common.personalisation import safe_names, single_line
from services.common.personalisation_config import Personalisation
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
    personalisation: Personalisation,
    variables: Mapping[str, str],
    validity: timedelta,
    not_before: datetime | None = None,
) -> EmailRequest:
    """Address, personalise and time-box one request.

    `variables` are the campaign's variables already made safe (`personalise`). The first name
    (from the CRM, which imports from anywhere) and the product names (from the visitor's
    session, read from `personalisation.product_dimensions`) get the same header-safe treatment
    and `max_length` cap, and at most `max_products` products are kept. `expiresAt` is the
    trigger's own time plus the campaign's validity, so the mailer refuses a request that a
    backlog or a replay made late, whatever the Kafka timestamps say.
    """
    limit = personalisation.max_length
    names = products(enrichments, personalisation.product_dimensions)
    return EmailRequest(
        idempotency_key=idempotency_key(campaign, profile_id, trigger.message_id),
        campaign=campaign,
        trigger_id=trigger.trigger_id,
        profile_id=profile_id,
        message_id=trigger.message_id,
        email=email,
        trigger_timestamp=trigger.timestamp,
        first_name=(single_line(first_name, limit) or None) if first_name else None,
        locale=locale,
        products=safe_names(names, personalisation.max_products, limit),
        variables=dict(variables),
        not_before=not_before,
        expires_at=trigger.timestamp + validity,
    )

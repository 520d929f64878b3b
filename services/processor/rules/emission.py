"""The last policy before an email request leaves: quiet hours in the profile's time zone."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from services.common.campaign_config import Campaign
from services.common.models import EmailRequest, OutcomeStatus
from services.processor.rules.decision import Emit, End
from services.processor.rules.policies import quiet_hours_end, quiet_zone
from services.processor.rules.profile import Profile


def emission(
    request: EmailRequest, policy: Campaign, profile: Profile, now: datetime, wait: bool = False
) -> Emit | End:
    """Emit the request, with `notBefore` at the quiet window's end when `now` falls in it.

    Quiet hours are judged on the wall clock (`now`), when the mail would land, not when the
    shopper acted. A window that ends at or after the request's `expiresAt` could only deliver
    it late, so the request ends `expired:quiet_hours` instead.
    """
    quiet = policy.quiet_hours
    if quiet is None:
        return Emit(request, wait=wait)
    zone = quiet_zone(profile.timezone, quiet.timezone)
    end = quiet_hours_end(now, quiet.start, quiet.end, zone)
    if end is None:
        return Emit(request, wait=wait)
    if request.expires_at is not None and end >= request.expires_at:
        return End(
            OutcomeStatus.EXPIRED,
            request.message_id,
            "quiet_hours",
            request.trigger_id,
            request.campaign,
            request.profile_id,
        )
    return Emit(replace(request, not_before=end), deferred=True, wait=wait)

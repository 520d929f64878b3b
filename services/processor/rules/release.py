"""Releasing a profile's held requests once due: validity and suppression are judged again."""

from __future__ import annotations

from datetime import datetime

from services.common.models import EmailRequest, OutcomeStatus
from services.processor.rules.cancel import due_pending, settle
from services.processor.rules.decision import Action, Decision, Emit, End, Lookup
from services.processor.rules.emission import emission
from services.processor.rules.policies import is_expired, suppression_reason
from services.processor.rules.profile import ProfileView
from services.processor.rules.rulebook import CampaignRules, Rulebook
from services.processor.rules.state import Pending, ProfileState, forget_request


def release_due(
    profile_id: str,
    state_view: ProfileState,
    profile_view: ProfileView | None,
    now: datetime,
    book: Rulebook,
) -> Decision | Lookup:
    """Each due hold (earliest first) is emitted or ends with its outcome, and leaves the state.

    The hold was decided on the trigger's data; what may have changed since is checked again,
    in this order: the campaign still exists (`unrouted:campaign_removed`), the request is still
    valid on the wall clock (`expired:expired_while_held`), the profile still exists
    (`unmatched:profile_gone`), it may still be mailed (`suppressed:<why>`). A request that is
    not sent also leaves the dedup and frequency-cap record: it never reached anyone.
    """
    due = due_pending(state_view, now)
    if not due:
        return Decision()
    if profile_view is None:
        return Lookup(profile_id)
    state = state_view
    actions: list[Action] = []
    for pending in due:
        request = book.codec.decode(pending.request)
        campaign = book.campaigns.get(pending.campaign)
        action = _released(pending, request, campaign, profile_view, now, profile_id)
        if not isinstance(action, Emit):
            state = forget_request(state, pending.campaign, pending.trigger_at)
        actions.append(action)
        state = settle(state, pending.message_id)
    return Decision(tuple(actions), state)


def _released(
    pending: Pending,
    request: EmailRequest,
    campaign: CampaignRules | None,
    view: ProfileView,
    now: datetime,
    profile_id: str,
) -> Emit | End:
    profile = view.profile
    if campaign is None:
        status, reason = OutcomeStatus.UNROUTED, "campaign_removed"
    elif is_expired(request.trigger_timestamp, now, campaign.policy.validity):
        status, reason = OutcomeStatus.EXPIRED, "expired_while_held"
    elif profile is None:
        status, reason = OutcomeStatus.UNMATCHED, "profile_gone"
    else:
        policy = campaign.policy
        why = suppression_reason(policy.category, profile.email_consent, view.suppressed_as)
        if why is None:
            return emission(request, policy, profile, now, wait=True)
        status, reason = OutcomeStatus.SUPPRESSED, why
    return End(status, pending.message_id, reason, pending.trigger_id, pending.campaign, profile_id)

"""Stage 2 as a pure function: one trigger, resolved to its profile, against that profile's state.

`decide` applies the campaign's policies in this order, and the first that says no ends the
trigger with its outcome:

1. dedup: the same messageId (`duplicate:repeat_message`), then the campaign's dedup window
   (`duplicate:dedup_window`). First, because a repeat must be recognised even when it would
   now fail a later check, and it needs no lookup.
2. validity, from the trigger's own time (`expired:stale_trigger`): still pure, and it stops a
   replay or a backlog before any database work.
3. personalisation: the campaign's variables from the enrichments, made safe; a required one
   without a usable value ends the trigger (`skipped:missing_data`, the variable in the
   outcome's detail). Pure too, and before the cap, so a trigger that cannot be mailed never
   counts towards it.
4. consent and suppression list (`suppressed:no_consent`, `suppressed:<reason>`): needs the
   profile (cached lookups; `Lookup` when the store has no answer at hand), and must come
   before the cap so a request never sent never counts. A profile deleted since stage 1 ends
   `unmatched:profile_gone`, re-drivable like any unmatched trigger.
5. frequency cap across the profile's non-transactional requests
   (`suppressed:frequency_capped`); transactional campaigns bypass it.
6. cancel window: a campaign with a `delay` holds the request in the profile's state (it counts
   towards dedup and caps from now on); a `cancel_on` trigger in `[trigger time, due]` cancels
   it (`cancelled`), including one that arrived first (`cancelled:cancel_arrived_first`). A
   timer releases due holds (`rules.release`), re-checking validity and suppression.
7. quiet hours, on the wall clock in the profile's time zone: last, because only the actual
   release time matters (`rules.emission`).
8. emit the email request (its outcome is the mailer's to record).

Ahead of the policies: a trigger no campaign mails (the routing file changed since stage 1)
ends `unrouted:no_campaign`; one dated more than the future skew ahead of `now` ends
`invalid:future_timestamp` (stage 1 refuses these, but a worker whose clock is behind stage
1's may still meet one, and its time must never reach the state); a trigger named in a
campaign's `cancel_on` cancels the profile's held requests, and one that mails nothing more
ends `unrouted:cancel_signal`.

Every trigger ends in exactly one outcome or one request. At-least-once delivery can hand the
same triggers.raw record over again after a crash or rebalance: the profile's state remembers
the record's position and decision, so a redelivery repeats that decision (same outcome, or a
request with the same idempotency key) instead of calling it a duplicate of itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.common.enrichments import Enrichments
from services.common.models import EmailRequest, OutcomeStatus
from services.common.personalisation import MissingData, Personalised, personalise
from services.processor.rules.cancel import (
    cancel_pending,
    cancelled_in_advance,
    hold,
    remember_cancel,
)
from services.processor.rules.decision import (
    HELD,
    REQUESTED,
    Cancel,
    Decision,
    Emit,
    End,
    Hold,
    Lookup,
    parse_label,
    remembered_as,
)
from services.processor.rules.dedup import Dedup, dedup_decision
from services.processor.rules.emission import emission
from services.processor.rules.policies import (
    FREQUENCY_CAPPED,
    FUTURE_TIMESTAMP,
    MISSING_DATA,
    is_expired,
    is_future_dated,
    sends_counted_by_caps,
    suppression_reason,
    within_frequency_cap,
)
from services.processor.rules.profile import Profile, ProfileView
from services.processor.rules.request import build_email_request
from services.processor.rules.rulebook import CampaignRules, Rulebook
from services.processor.rules.state import (
    Pending,
    ProfileState,
    from_millis,
    remember_message,
    remember_request,
    to_millis,
)
from services.processor.rules.trigger import ResolvedTrigger


def decide(
    trigger: ResolvedTrigger,
    profile_view: ProfileView | None,
    state_view: ProfileState,
    campaign: CampaignRules | None,
    now: datetime,
    book: Rulebook,
) -> Decision | Lookup:
    """The decision for one trigger: the policies in the module docstring's order.

    `campaign` is the one `book.route` found for the trigger id (None: no campaign mails it);
    `profile_view` is what the profile store had at hand (None: nothing yet); `now` is the wall
    clock, which only the future skew, validity and quiet hours read.
    """
    message = trigger.trigger
    cancels = book.cancels(message.trigger_id)
    if (campaign is None and not cancels) or not trigger.profile_id:
        unrouted = trigger.end(OutcomeStatus.UNROUTED, "no_campaign", None, with_profile=False)
        return Decision((unrouted,))
    if is_future_dated(message.timestamp, now, book.limits.future_skew):
        return Decision((trigger.end(OutcomeStatus.INVALID, FUTURE_TIMESTAMP, campaign),))
    seen = state_view.seen.get(message.message_id)
    if seen is not None:
        if seen.source == trigger.origin and seen.result:
            return _repeat(seen.result, trigger, profile_view, campaign, now, book)
        repeat = Dedup.REPEAT_MESSAGE.value
        return Decision((trigger.end(OutcomeStatus.DUPLICATE, repeat, campaign),))
    state = state_view
    cancelled: tuple[Cancel, ...] = ()
    if cancels:
        state, held = cancel_pending(state, message.trigger_id, message.timestamp, book.cancel_on)
        cancelled = tuple(Cancel(p, message.message_id, trigger.profile_id) for p in held)
        state = remember_cancel(state, message.trigger_id, message.timestamp)
    if campaign is None:
        ruled = Decision((trigger.end(OutcomeStatus.UNROUTED, "cancel_signal", None),), state)
    else:
        found = _policies(trigger, profile_view, state, campaign, now, book)
        if isinstance(found, Lookup):
            return found
        ruled = found
    assert ruled.state is not None
    result = remembered_as(ruled.actions[-1])
    state = remember_message(
        ruled.state, message.message_id, message.timestamp, trigger.origin, result
    )
    return Decision((*cancelled, *ruled.actions), state, ruled.fallbacks)


def _policies(
    trigger: ResolvedTrigger,
    view: ProfileView | None,
    state: ProfileState,
    campaign: CampaignRules,
    now: datetime,
    book: Rulebook,
) -> Decision | Lookup:
    """Policies 1-3: the ones that need no profile; then `_for_profile` for the rest."""
    message, policy = trigger.trigger, campaign.policy
    window = dedup_decision(
        state, message.message_id, campaign.name, message.timestamp, policy.dedup_window
    )
    if window is Dedup.WITHIN_WINDOW:
        return Decision((trigger.end(OutcomeStatus.DUPLICATE, window.value, campaign),), state)
    if is_expired(message.timestamp, now, policy.validity):
        return Decision((trigger.end(OutcomeStatus.EXPIRED, "stale_trigger", campaign),), state)
    personal = _personalise(campaign, trigger.enrichments, book)
    if isinstance(personal, MissingData):
        detail = personal.detail()
        skipped = trigger.end(OutcomeStatus.SKIPPED, MISSING_DATA, campaign, detail=detail)
        return Decision((skipped,), state)
    if view is None:
        return Lookup(trigger.profile_id)
    action, state = _for_profile(trigger, view, state, campaign, personal, now, book)
    return Decision((action,), state, _fallbacks(campaign, personal))


def _for_profile(
    trigger: ResolvedTrigger,
    view: ProfileView,
    state: ProfileState,
    campaign: CampaignRules,
    personal: Personalised,
    now: datetime,
    book: Rulebook,
) -> tuple[Emit | Hold | End, ProfileState]:
    """Policies 4-8, with the profile at hand: how the trigger ends, and the state after."""
    message, policy, at = trigger.trigger, campaign.policy, trigger.trigger.timestamp
    profile = view.profile
    if profile is None:
        gone = trigger.end(OutcomeStatus.UNMATCHED, "profile_gone", campaign, unmatched=True)
        return gone, state
    suppressed = suppression_reason(policy.category, profile.email_consent, view.suppressed_as)
    if suppressed is not None:
        return trigger.end(OutcomeStatus.SUPPRESSED, suppressed, campaign), state
    cap = policy.frequency_cap
    if cap is not None and policy.category != "transactional":
        earlier = sends_counted_by_caps(
            {c: [from_millis(t) for t in times] for c, times in state.sends.items()},
            book.transactional,
        )
        if not within_frequency_cap(earlier, at, cap.count, cap.window):
            capped = trigger.end(OutcomeStatus.SUPPRESSED, FREQUENCY_CAPPED, campaign)
            return capped, state
    request = _request(campaign, trigger, personal, profile, book)
    if policy.delay > timedelta(0):
        due = at + policy.delay
        if cancelled_in_advance(state, policy.cancel_on, at, due):
            first = trigger.end(OutcomeStatus.CANCELLED, "cancel_arrived_first", campaign)
            return first, state
        if due > now:
            pending = Pending(
                campaign.name,
                message.message_id,
                message.trigger_id,
                to_millis(at),
                to_millis(due),
                book.codec.encode(request),
            )
            return Hold(pending), hold(remember_request(state, campaign.name, at), pending)
    action = emission(request, policy, profile, now)
    if isinstance(action, Emit):
        state = remember_request(state, campaign.name, at)
    return action, state


def _repeat(
    result: str,
    trigger: ResolvedTrigger,
    view: ProfileView | None,
    campaign: CampaignRules | None,
    now: datetime,
    book: Rulebook,
) -> Decision | Lookup:
    """A redelivered record: the same decision again, idempotently, and no state to write.

    A held request is left to its timer or a cancel; a request is emitted again (same
    idempotency key); an outcome is recorded again.
    """
    if result == HELD:
        return Decision()
    skipped = result.startswith(f"{OutcomeStatus.SKIPPED.value}:")
    personal: Personalised | MissingData | None = None
    if campaign is not None and (result == REQUESTED or skipped):
        personal = _personalise(campaign, trigger.enrichments, book)
    fallbacks = _fallbacks(campaign, personal)
    if result == REQUESTED and isinstance(personal, Personalised) and campaign is not None:
        if view is None:
            return Lookup(trigger.profile_id)
        if view.profile is not None:
            request = _request(campaign, trigger, personal, view.profile, book)
            action = emission(request, campaign.policy, view.profile, now)
            return Decision((action,), fallbacks=fallbacks)
    status, reason = parse_label(result)  # "request" with no profile left: ValueError
    detail = personal.detail() if isinstance(personal, MissingData) else None
    return Decision((trigger.end(status, reason, campaign, detail=detail),), fallbacks=fallbacks)


def _personalise(
    campaign: CampaignRules, enrichments: Enrichments, book: Rulebook
) -> Personalised | MissingData:
    max_length = book.personalisation.max_length
    return personalise(enrichments, campaign.declarations, campaign.links, max_length)


def _fallbacks(
    campaign: CampaignRules | None, personal: Personalised | MissingData | None
) -> tuple[tuple[str, str, str], ...]:
    if campaign is None or not isinstance(personal, Personalised):
        return ()
    return tuple((campaign.name, variable, why) for variable, why in personal.fallbacks)


def _request(
    campaign: CampaignRules,
    trigger: ResolvedTrigger,
    personal: Personalised,
    profile: Profile,
    book: Rulebook,
) -> EmailRequest:
    return build_email_request(
        campaign=campaign.name,
        trigger=trigger.trigger,
        enrichments=trigger.enrichments,
        profile_id=profile.profile_id,
        email=profile.email,
        first_name=profile.first_name,
        locale=profile.locale,
        personalisation=book.personalisation,
        variables=personal.values,
        validity=campaign.policy.validity,
    )

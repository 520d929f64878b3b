"""What becomes of an email request before any SMTP traffic, decided on values: `verdict`.

The checks run in this order; the first that settles the request wins:

1. the campaign is known (else: retry later, the routing file may be ahead of this instance;
   dead-lettered `failed:unknown_campaign` once every retry is spent);
2. still valid on the wall clock (`expired:validity`), judged from the trigger's own time;
3. due (`notBefore` passed; else it waits in the first delay topic, spending no attempt);
4. not on the suppression list for this campaign's category (`suppressed:<reason>`; an
   unsubscribe leaves transactional mail alone, `applies_to`);
5. the idempotency key claimed by this instance: a key another live instance holds waits like
   an early request; a key settled before is reported as it stands (`already`), never resent.

A check that needs the database comes after every check that does not, and the loop asks the
database once per poll: `verdict` says what it still needs (`Need`) and is asked again.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.common.campaign_config import Campaign
from services.common.errors import InvalidInput, TransientFailure
from services.common.models import EmailRequest, OutcomeStatus
from services.common.suppression import applies_to
from services.mailer.rules.claim import Claim, ClaimState, DeliveryStatus
from services.mailer.rules.report import Report, already, defer, outcome_for
from services.mailer.rules.retry import (
    Exhausted,
    Expired,
    Retry,
    RetryTopic,
    defer_topic,
    next_retry_topic,
)
from services.mailer.rules.validity import expiry, is_due, is_expired


class Unasked(enum.Enum):
    """A fact the database has not been asked for yet."""

    UNASKED = "unasked"


UNASKED = Unasked.UNASKED


@dataclass(frozen=True)
class Publish:
    """Nothing to write: publish the report."""

    report: Report


@dataclass(frozen=True)
class Settle:
    """Write the key's final status (it was never sent), then publish the report.

    With `existing_wins`, a key that is already final with another status is reported as it
    stands instead (`already`): a replayed request sent long ago is reported sent, not expired.
    """

    status: DeliveryStatus
    why: str
    report: Report
    existing_wins: bool = True


class Need(enum.Enum):
    """Ask the database, then ask `verdict` again."""

    SUPPRESSION = "suppression"
    CLAIM = "claim"


@dataclass(frozen=True)
class Send:
    """The key is claimed: compose the message and hand it to the SMTP pool."""

    deadline: datetime
    attempts: int


Verdict = Publish | Settle | Need | Send


def verdict(
    request: EmailRequest,
    campaign: Campaign | None,
    suppression: str | None | Unasked,
    claim: Claim | Unasked,
    now: datetime,
    retries: Sequence[RetryTopic],
) -> Verdict:
    """The next step for one request (module docstring); `now` is the wall clock.

    `campaign` is the routing file's campaign of that name (None: not configured);
    `suppression` why the address is suppressed (None: it is not); `claim` the answer to this
    instance's claim of the idempotency key.
    """
    if campaign is None:
        unknown = TransientFailure(f"campaign {request.campaign!r} is not configured")
        return retry_route(request, unknown, request.expires_at, now, retries, "unknown_campaign")
    deadline = expiry(request.expires_at, request.trigger_timestamp, campaign.validity)
    if is_expired(deadline, now):
        expired = outcome_for(request, OutcomeStatus.EXPIRED, now, "validity")
        return Settle(DeliveryStatus.EXPIRED, f"validity ended {deadline}", Report(expired))
    if request.not_before is not None and not is_due(request.not_before, now):
        return Publish(defer(request, request.not_before, retries))
    if suppression is UNASKED:
        return Need.SUPPRESSION
    if suppression is not None and applies_to(suppression, campaign.category):
        suppressed = outcome_for(request, OutcomeStatus.SUPPRESSED, now, suppression)
        return Settle(DeliveryStatus.IGNORED, suppression, Report(suppressed))
    if claim is UNASKED:
        return Need.CLAIM
    if claim.state is ClaimState.BUSY:
        assert claim.held_until is not None
        until = min(claim.held_until, now + defer_topic(retries).delay)
        return Publish(defer(request, until, retries))
    if claim.state is ClaimState.SETTLED:
        return Publish(already(request, claim, now))
    return Send(deadline, claim.attempts)


def retry_route(
    request: EmailRequest,
    error: TransientFailure,
    deadline: datetime | None,
    now: datetime,
    retries: Sequence[RetryTopic],
    exhausted: str = "retries_exhausted",
) -> Publish | Settle:
    """A transient failure: the next delay topic, or an end once none is left or worth it.

    A retry that could only happen after the deadline ends `expired:validity`; once every delay
    topic is spent the request ends `failed:<exhausted>` and is dead-lettered.
    """
    route = next_retry_topic(request.attempt + 1, retries, now, deadline)
    if isinstance(route, Retry):
        return Publish(Report(retry=route, error=error))
    if isinstance(route, Expired):
        expired = outcome_for(request, OutcomeStatus.EXPIRED, now, "validity")
        return Settle(DeliveryStatus.EXPIRED, str(error), Report(expired), existing_wins=False)
    assert isinstance(route, Exhausted)
    failed = outcome_for(request, OutcomeStatus.FAILED, now, exhausted)
    report = Report(failed, dead_letter=exhausted, error=error)
    return Settle(DeliveryStatus.FAILED, f"{exhausted}: {error}", report)


def refused(request: EmailRequest, error: InvalidInput, now: datetime) -> Settle:
    """A request that can never be sent as it is (its message cannot be built): failed and
    dead-lettered."""
    failed = outcome_for(request, OutcomeStatus.FAILED, now, error.reason)
    report = Report(failed, dead_letter=error.reason, error=error)
    return Settle(DeliveryStatus.FAILED, str(error), report)

"""One email request from decision to SMTP: expiry, suppression, render, claim, send, settle.

No Kafka here: `Delivery.handle` returns a `Verdict` saying what the loop must publish, and the
loop stores the offset only after publishing it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from services.common.errors import InvalidInput, TransientFailure
from services.common.models import EmailRequest, Outcome, OutcomeStatus
from services.common.pipeline_config import Campaign
from services.mailer import metrics
from services.mailer.campaigns import CampaignCatalog
from services.mailer.claims import Claim, ClaimState, ClaimStore, DeliveryStatus, SentRow
from services.mailer.errors import DeliveryUnknown, SmtpDeferred, SmtpRejected
from services.mailer.message import (
    OutgoingMessage,
    Unsubscribe,
    build_message,
    sender_address,
    unsubscribe_link,
)
from services.mailer.rules.retry import (
    Exhausted,
    Expired,
    Retry,
    RetryTopic,
    defer_topic,
    next_retry_topic,
)
from services.mailer.rules.suppression import bounce_suppression
from services.mailer.rules.validity import expiry, is_due, is_expired
from services.mailer.smtp import Envelope, Handed, SmtpPool
from services.mailer.suppressions import SuppressionStore
from services.mailer.templates import TemplateSet, template_context
from services.mailer.unsubscribe import UnsubscribeClaim, sign_token

log = logging.getLogger(__name__)

SERVICE = "mailer"


@dataclass(frozen=True)
class Verdict:
    """What to publish for one request; `hold` means: not handled, read it again later."""

    outcome: Outcome | None = None
    retry: Retry | None = None
    dead_letter: str | None = None
    error: BaseException | None = None
    hold: str | None = None


@dataclass(frozen=True)
class _Screened:
    """A request that passed the checks needing no database."""

    request: EmailRequest
    campaign: Campaign
    templates: TemplateSet
    deadline: datetime | None
    index: int = -1


@dataclass(frozen=True)
class _Ready:
    """A request with its finished message, waiting for its claim."""

    index: int
    request: EmailRequest
    message: OutgoingMessage
    sender: str
    deadline: datetime | None


T = TypeVar("T")

# `sent` rows are saved in groups as replies come in, each at most this long after its reply
# (or once this many wait): a crash leaves pending only the claims of messages the server took
# in the last moments, which is what the claim timeout has to resolve.
MARK_DELAY_S = 0.02
MARK_BATCH = 100


@dataclass(frozen=True)
class UnsubscribeOptions:
    url: str
    secret: bytes = field(repr=False)
    ttl: timedelta


def outcome_for(
    request: EmailRequest,
    status: OutcomeStatus,
    reason: str | None = None,
    detail: dict[str, str] | None = None,
    at: datetime | None = None,
) -> Outcome:
    extra = {"at": at} if at is not None else {}
    return Outcome(
        status=status,
        message_id=request.message_id,
        service=SERVICE,
        reason=reason,
        trigger_id=request.trigger_id,
        campaign=request.campaign,
        profile_id=request.profile_id,
        idempotency_key=request.idempotency_key,
        detail=detail or {},
        **extra,
    )


def _envelope(ready: _Ready) -> Envelope:
    return Envelope.of(ready.message, sender_address(ready.sender).addr_spec, ready.request.email)


def internal_error(request: EmailRequest, error: BaseException) -> Verdict:
    """The verdict of a request whose handling hit a bug: failed, and dead-lettered."""
    return Verdict(
        outcome=outcome_for(request, OutcomeStatus.FAILED, "internal_error"),
        dead_letter="internal_error",
        error=error,
    )


class Delivery:
    """The per-request pipeline, run by the loop's thread for a whole poll at a time."""

    def __init__(
        self,
        *,
        catalog: CampaignCatalog,
        claims: ClaimStore,
        suppressions: SuppressionStore,
        pool: SmtpPool,
        retries: Sequence[RetryTopic],
        unsubscribe: UnsubscribeOptions,
        message_id_domain: str = "",
        clock: Callable[[], datetime],
    ) -> None:
        self._catalog = catalog
        self._claims = claims
        self._suppressions = suppressions
        self._pool = pool
        self._retries = tuple(retries)
        self._unsubscribe = unsubscribe
        self._message_id_domain = message_id_domain
        self._clock = clock

    def handle(self, request: EmailRequest) -> Verdict:
        """Decide and act for one request; database outages hold it rather than fail it."""
        return self.handle_many([request])[0]

    def handle_many(self, requests: Sequence[EmailRequest]) -> list[Verdict]:
        """`handle` for every request of a poll; one verdict per request, in order.

        The database is asked once per stage for the whole poll (suppressions, then claims),
        and the claimed messages are all handed to the SMTP pool at once. Each request is still
        decided on its own rows, and each sent one is recorded `sent` before this returns its
        verdict. A failure of one request's step is its verdict alone.
        """
        now = self._clock()
        verdicts: dict[int, Verdict] = {}
        screened: list[_Screened] = []
        for index, request in enumerate(requests):
            step = self._guarded(request, partial(self._screen, request, now))
            if isinstance(step, Verdict):
                verdicts[index] = step
            else:
                screened.append(replace(step, index=index))
        suppressed = self._batch(
            [s.request for s in screened],
            lambda: self._suppressions.reasons(s.request.email for s in screened),
            verdicts,
            [s.index for s in screened],
        )
        candidates: list[_Screened] = []
        if suppressed is not None:
            for item in screened:
                why = suppressed.get(item.request.email)
                if why is None:
                    candidates.append(item)
                    continue
                settle = partial(self._settle, item.request, DeliveryStatus.IGNORED, why, now)
                verdicts[item.index] = self._guarded(item.request, settle)
        claims = self._batch(
            [c.request for c in candidates],
            lambda: self._claims.claim_many([c.request for c in candidates], now),
            verdicts,
            [c.index for c in candidates],
        )
        sends: list[tuple[_Screened, Claim]] = []
        for claimed, claim in zip(candidates, claims or [], strict=False):
            if claim.state is ClaimState.BUSY:
                assert claim.held_until is not None
                wait = defer_topic(self._retries).delay
                until = min(claim.held_until, now + wait)
                verdicts[claimed.index] = self._defer(claimed.request, until)
            elif claim.state is ClaimState.SETTLED:
                verdicts[claimed.index] = self._already(claimed.request, claim)
            else:
                sends.append((claimed, claim))
        if sends:
            self._send_all(sends, now, verdicts)
        return [verdicts[index] for index in range(len(requests))]

    def _send_all(
        self, sends: Sequence[tuple[_Screened, Claim]], now: datetime, verdicts: dict[int, Verdict]
    ) -> None:
        """Render the claimed messages, hand them to the pool at once, settle each as it ends.

        Each sent message's verdict is final only once its `sent` row is saved; if saving
        fails, the email went out but the row says pending, and the verdict says so instead.
        """
        ready: list[tuple[_Ready, Claim]] = []
        envelopes: list[Envelope] = []
        for item, claim in sends:
            composed = self._guarded(item.request, partial(self._compose, item, now))
            if isinstance(composed, Verdict):
                verdicts[item.index] = composed
                continue
            envelope = self._guarded(item.request, partial(_envelope, composed))
            if isinstance(envelope, Verdict):
                verdicts[item.index] = envelope
                continue
            ready.append((composed, claim))
            envelopes.append(envelope)
        marks: list[tuple[int, SentRow]] = []
        oldest = 0.0
        for handed in self._pool.send_many(envelopes, idle=MARK_DELAY_S):
            if handed is not None:
                message, claim = ready[handed.index]
                settle = partial(self._settle_send, message, claim, handed, marks)
                verdicts[message.index] = self._guarded(message.request, settle)
                if len(marks) == 1:
                    oldest = time.monotonic()
            if marks and (
                handed is None
                or len(marks) >= MARK_BATCH
                or time.monotonic() - oldest >= MARK_DELAY_S
            ):
                self._save_marks(marks, verdicts, ready)
        if marks:
            self._save_marks(marks, verdicts, ready)

    def _save_marks(
        self,
        marks: list[tuple[int, SentRow]],
        verdicts: dict[int, Verdict],
        ready: Sequence[tuple[_Ready, Claim]],
    ) -> None:
        """Write the waiting `sent` rows in one transaction; if that fails, say so per message."""
        rows = [row for _, row in marks]
        indexes = [ready[position][0].index for position, _ in marks]
        requests = [ready[position][0].request for position, _ in marks]
        self._batch(requests, lambda: self._claims.mark_sent_many(rows), verdicts, indexes)
        marks.clear()

    def _screen(self, request: EmailRequest, now: datetime) -> Verdict | _Screened:
        """The checks that need no database: known campaign, still valid, due now."""
        found = self._catalog.lookup(request.campaign)
        if found is None:
            # Most likely the routing file is ahead of this instance: wait and try again, and
            # dead-letter only once every retry is spent.
            log.warning("campaign %r is not configured (yet)", request.campaign)
            unknown = TransientFailure(f"campaign {request.campaign!r} is not configured")
            return self._retry(request, unknown, request.expires_at, "unknown_campaign")
        campaign, templates = found
        deadline = expiry(request.expires_at, request.trigger_timestamp, campaign.validity)
        if is_expired(deadline, now):
            return self._settle(request, DeliveryStatus.EXPIRED, f"validity ended {deadline}", now)
        if not is_due(request.not_before, now):
            assert request.not_before is not None
            return self._defer(request, request.not_before)
        return _Screened(request, campaign, templates, deadline)

    def _compose(self, item: _Screened, now: datetime) -> Verdict | _Ready:
        """The finished message, or the verdict of a request that cannot be rendered.

        A refused request holds its claim by now; `_refuse` settles that claim as failed.
        """
        request, campaign = item.request, item.campaign
        try:
            rendered = item.templates.render(request.campaign, template_context(request))
            unsubscribe = None
            if campaign.category == "marketing":
                unsubscribe = Unsubscribe(self._unsubscribe_url(request, campaign.category, now))
            message = build_message(
                request,
                rendered,
                sender=campaign.sender,
                now=now,
                message_id_domain=self._message_id_domain,
                unsubscribe=unsubscribe,
            )
        except InvalidInput as exc:
            return self._refuse(request, exc, now)
        return _Ready(item.index, request, message, campaign.sender, item.deadline)

    def _settle_send(
        self, item: _Ready, claim: Claim, handed: Handed, marks: list[tuple[int, SentRow]]
    ) -> Verdict:
        """Record how the hand-over of a claimed message ended.

        An accepted message's `sent` row joins `marks` (with its position in the batch), to be
        saved with the next group.
        """
        request = item.request
        metrics.SEND_SECONDS.observe(handed.seconds)
        error = handed.error
        if isinstance(error, SmtpRejected):
            return self._rejected(request, error, self._clock())
        if isinstance(error, DeliveryUnknown):
            self._claims.mark_unknown(request.idempotency_key, str(error), self._clock())
            metrics.FAILED.labels(request.campaign, "smtp_unknown").inc()
            return Verdict(
                outcome=outcome_for(request, OutcomeStatus.UNKNOWN, "smtp_unknown"),
                dead_letter="smtp_unknown",
                error=error,
            )
        if isinstance(error, SmtpDeferred):
            self._claims.release(request.idempotency_key, str(error), self._clock())
            if error.connection_level:
                raise error
            return self._retry(request, error, item.deadline)
        message_id = str(item.message["Message-ID"])
        marks.append((handed.index, (request.idempotency_key, message_id, self._clock())))
        metrics.SENT.labels(request.campaign).inc()
        return Verdict(
            outcome=outcome_for(
                request,
                OutcomeStatus.SENT,
                detail={
                    "smtpMessageId": message_id,
                    "smtpReply": handed.reply or "",
                    "attempts": str(claim.attempts),
                },
            )
        )

    def _guarded(self, request: EmailRequest, step: Callable[[], T]) -> T | Verdict:
        """Run one request's step; an outage holds the request, a bug fails it alone."""
        try:
            return step()
        except SmtpDeferred as exc:
            # Reached only for server-level failures: the whole pool backs off.
            return Verdict(hold=f"smtp: {exc}", error=exc)
        except TransientFailure as exc:
            return Verdict(hold=f"database: {exc}", error=exc)
        except Exception as exc:  # a bug must not stop the partition: dead-letter and go on
            log.exception("unexpected error for %s", request.idempotency_key)
            return internal_error(request, exc)

    def _batch(
        self,
        requests: Sequence[EmailRequest],
        step: Callable[[], T],
        verdicts: dict[int, Verdict],
        indexes: Sequence[int],
    ) -> T | None:
        """One database step for many requests; if it fails, each of them gets the verdict."""
        if not requests:
            return None
        try:
            return step()
        except TransientFailure as exc:
            for index in indexes:
                verdicts[index] = Verdict(hold=f"database: {exc}", error=exc)
        except Exception as exc:  # a bug must not stop the partitions: dead-letter and go on
            log.exception("unexpected error for a batch of %d requests", len(requests))
            for index, request in zip(indexes, requests, strict=True):
                verdicts[index] = internal_error(request, exc)
        return None

    def _unsubscribe_url(self, request: EmailRequest, category: str, now: datetime) -> str:
        options = self._unsubscribe
        token = sign_token(
            UnsubscribeClaim(request.profile_id, category, now + options.ttl), options.secret
        )
        return unsubscribe_link(options.url, token)

    def _settle(
        self, request: EmailRequest, status: DeliveryStatus, why: str, now: datetime
    ) -> Verdict:
        claim = self._claims.settle_unclaimed(request, status, now, why)
        if claim.status is not status:
            return self._already(request, claim)
        if status is DeliveryStatus.EXPIRED:
            metrics.EXPIRED.labels(request.campaign).inc()
            return Verdict(outcome=outcome_for(request, OutcomeStatus.EXPIRED, "validity"))
        metrics.SUPPRESSED.labels(request.campaign, why).inc()
        return Verdict(outcome=outcome_for(request, OutcomeStatus.SUPPRESSED, why))

    def _refuse(self, request: EmailRequest, error: InvalidInput, now: datetime) -> Verdict:
        """A request that can never be sent as it is: failed outcome plus a dead letter."""
        claim = self._claims.settle_unclaimed(request, DeliveryStatus.FAILED, now, str(error))
        if claim.status is not DeliveryStatus.FAILED:
            return self._already(request, claim)
        log.warning(
            "cannot send %s (campaign %s): %s", request.idempotency_key, request.campaign, error
        )
        metrics.FAILED.labels(request.campaign, error.reason).inc()
        return Verdict(
            outcome=outcome_for(request, OutcomeStatus.FAILED, error.reason),
            dead_letter=error.reason,
            error=error,
        )

    def _rejected(self, request: EmailRequest, error: SmtpRejected, now: datetime) -> Verdict:
        self._claims.mark_failed(request.idempotency_key, str(error), now)
        suppression = bounce_suppression(error.code or 500, error.enhanced, error.stage)
        detail = {"smtpCode": str(error.code), "smtpReply": str(error)[:300]}
        if suppression is not None:
            self._suppressions.add(request.email, suppression, f"mailer: {error}", now)
            metrics.SUPPRESSED.labels(request.campaign, suppression).inc()
        reason = suppression or "smtp_rejected"
        metrics.FAILED.labels(request.campaign, reason).inc()
        log.info("%s rejected for %s: %s", request.idempotency_key, request.campaign, error)
        return Verdict(outcome=outcome_for(request, OutcomeStatus.FAILED, reason, detail))

    def _retry(
        self,
        request: EmailRequest,
        error: TransientFailure,
        deadline: datetime | None,
        exhausted: str = "retries_exhausted",
    ) -> Verdict:
        now = self._clock()
        route = next_retry_topic(request.attempt + 1, self._retries, now, deadline)
        if isinstance(route, Retry):
            metrics.RETRIED.labels(request.campaign, route.topic).inc()
            return Verdict(retry=route, error=error)
        if isinstance(route, Expired):
            self._claims.settle_unclaimed(request, DeliveryStatus.EXPIRED, now, str(error))
            metrics.EXPIRED.labels(request.campaign).inc()
            return Verdict(outcome=outcome_for(request, OutcomeStatus.EXPIRED, "validity"))
        assert isinstance(route, Exhausted)
        claim = self._claims.settle_unclaimed(
            request, DeliveryStatus.FAILED, now, f"{exhausted}: {error}"
        )
        if claim.status is not DeliveryStatus.FAILED:
            return self._already(request, claim)
        metrics.FAILED.labels(request.campaign, exhausted).inc()
        return Verdict(
            outcome=outcome_for(request, OutcomeStatus.FAILED, exhausted),
            dead_letter=exhausted,
            error=error,
        )

    def _defer(self, request: EmailRequest, not_before: datetime) -> Verdict:
        """Wait in the first delay topic without spending an attempt."""
        topic = defer_topic(self._retries)
        return Verdict(retry=Retry(topic.name, not_before, request.attempt))

    def _already(self, request: EmailRequest, claim: Claim) -> Verdict:
        """The key was settled before (redelivery after a crash, replay): report, never resend.

        The outcome repeats the recorded one, so whoever missed it (a crash before the outcome
        was published) still gets it; readers of `outcomes` keep one per idempotency key.
        """
        metrics.REDELIVERED.labels(request.campaign).inc()
        detail = {"redelivered": "true"}
        if claim.smtp_message_id:
            detail["smtpMessageId"] = claim.smtp_message_id
        status = {
            DeliveryStatus.SENT: OutcomeStatus.SENT,
            DeliveryStatus.EXPIRED: OutcomeStatus.EXPIRED,
            DeliveryStatus.IGNORED: OutcomeStatus.SUPPRESSED,
            DeliveryStatus.UNKNOWN: OutcomeStatus.UNKNOWN,
        }.get(claim.status, OutcomeStatus.FAILED)
        reason = None if status is OutcomeStatus.SENT else f"already_{claim.status.value}"
        return Verdict(outcome=outcome_for(request, status, reason, detail))

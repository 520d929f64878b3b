"""The inbound SMTP side: an aiosmtpd handler for the bounce domain's VERP addresses and the
complaint mailbox. It answers, it never decides: `judge_recipient` and `Feedback.report` do."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from datetime import datetime

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.common.errors import TransientFailure
from services.common.health import Probes
from services.common.unsubscribe_token import KeyRing
from services.feedback import metrics
from services.feedback.handling import Feedback, ReportResult
from services.feedback.rules.references import RecipientVerdict, judge_recipient

log = logging.getLogger(__name__)

_REPLIES = {
    ReportResult.RECORDED: "250 2.0.0 Report recorded",
    ReportResult.REPLAY: "250 2.0.0 Report already recorded",
    ReportResult.IGNORED: "250 2.0.0 Report read, nothing to do",
    ReportResult.DEAD_LETTER: "250 2.0.0 Message kept for review",
}
# 4xx: the sending MTA keeps the message and tries again later, so nothing is lost.
_TRY_LATER = "451 4.3.0 Cannot record the report now; try again later"


class ReportHandler:
    """aiosmtpd hooks; the blocking work runs in a thread so the event loop keeps serving."""

    def __init__(
        self,
        feedback: Feedback,
        keys: KeyRing,
        bounce_domain: str,
        complaint_mailbox: str,
        clock: Callable[[], datetime],
        probes: Probes,
    ) -> None:
        self._feedback = feedback
        self._keys = keys
        self._domain = bounce_domain
        self._mailbox = complaint_mailbox
        self._clock = clock
        self._probes = probes

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        verdict, rejection = judge_recipient(
            address, self._domain, self._mailbox, self._keys, self._clock()
        )
        if verdict is RecipientVerdict.ACCEPT:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        if verdict is RecipientVerdict.REFUSED and rejection is not None:
            metrics.REFUSED.labels("smtp", rejection.value).inc()
            return "550 5.1.1 Unknown or expired return path"
        return "550 5.1.1 No such recipient here"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        try:
            result = await asyncio.to_thread(
                self._feedback.report,
                envelope.mail_from,
                tuple(envelope.rcpt_tos),
                content,
                self._clock(),
            )
        except TransientFailure as exc:
            log.warning("inbound report deferred, database unavailable: %s", exc)
            self._probes.not_ready("database", str(exc)[:200])
            return _TRY_LATER
        except Exception:  # a bug must not lose a report: the MTA will offer it again
            log.exception("inbound report failed unexpectedly; deferred")
            return _TRY_LATER
        self._probes.ready("database")
        return _REPLIES[result]


def smtp_factory(
    handler: ReportHandler,
    hostname: str,
    data_size_limit: int,
    tls_context: ssl.SSLContext | None = None,
) -> Callable[[], SMTP]:
    """A protocol factory for `loop.create_server`: one aiosmtpd session per connection.

    With a `tls_context`, EHLO advertises STARTTLS; it is never required, because a public MX
    must also take reports from MTAs that cannot encrypt (RFC 3207).
    """

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname=hostname or None,
            ident="Triggerline feedback",
            data_size_limit=data_size_limit,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=tls_context,
            require_starttls=False,
            timeout=60,
        )

    return factory

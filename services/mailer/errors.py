"""SMTP failure kinds: the common error kinds plus the stage and codes the rules decide on."""

from __future__ import annotations

from typing import Literal

from services.common.errors import PermanentFailure, TransientFailure

Stage = Literal["connect", "mail", "rcpt", "data"]


class SmtpDeferred(TransientFailure):
    """A 4xx reply or a lost connection before the message was handed over: try again later.

    `connection_level` marks failures of the server rather than the recipient (connection
    refused, timeouts, 421): they back off the whole pool and do not count against the address.
    """

    def __init__(
        self, message: str, *, code: int | None, stage: Stage, connection_level: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.stage = stage
        self.connection_level = connection_level


class SmtpRejected(PermanentFailure):
    """A 5xx reply: never retried; a recipient-level rejection also suppresses the address."""

    def __init__(self, message: str, *, code: int, enhanced: str | None, stage: Stage) -> None:
        super().__init__(message, code=code)
        self.enhanced = enhanced
        self.stage = stage


class DeliveryUnknown(TransientFailure):
    """The connection dropped after the message data, before the reply: it may have been sent.

    Never resent blindly: the claim is settled as `unknown` (so no redelivery or replay sends
    again), the outcome is `unknown`, and the request goes to the dead-letter topic for an
    operator, who can check the recipient's side before deciding to send it anew.
    """

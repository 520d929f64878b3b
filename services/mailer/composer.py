"""The finished message of a claimed request: rendered, addressed, with its unsubscribe link."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.common.models import EmailRequest
from services.common.pipeline_config import Campaign
from services.mailer.message import (
    OutgoingMessage,
    Unsubscribe,
    build_message,
    sender_address,
    unsubscribe_link,
)
from services.mailer.smtp import Envelope
from services.mailer.templates import TemplateSet, template_context
from services.mailer.unsubscribe import UnsubscribeClaim, sign_token


@dataclass(frozen=True)
class UnsubscribeOptions:
    url: str
    secret: bytes = field(repr=False)
    ttl: timedelta


class Composer:
    """Renders and builds messages; a request that cannot become one raises `InvalidInput`."""

    def __init__(self, unsubscribe: UnsubscribeOptions, message_id_domain: str = "") -> None:
        self._unsubscribe = unsubscribe
        self._message_id_domain = message_id_domain

    def compose(
        self, request: EmailRequest, campaign: Campaign, templates: TemplateSet, now: datetime
    ) -> OutgoingMessage:
        """The message; a marketing campaign's carries a one-click List-Unsubscribe link."""
        rendered = templates.render(request.campaign, template_context(request))
        unsubscribe = None
        if campaign.category == "marketing":
            options = self._unsubscribe
            claim = UnsubscribeClaim(request.profile_id, campaign.category, now + options.ttl)
            unsubscribe = Unsubscribe(
                unsubscribe_link(options.url, sign_token(claim, options.secret))
            )
        return build_message(
            request,
            rendered,
            sender=campaign.sender,
            now=now,
            message_id_domain=self._message_id_domain,
            unsubscribe=unsubscribe,
        )

    @staticmethod
    def envelope(request: EmailRequest, message: OutgoingMessage, sender: str) -> Envelope:
        """What the wire carries; `ValueError` for an address that could inject a command."""
        return Envelope.of(message, sender_address(sender).addr_spec, request.email)

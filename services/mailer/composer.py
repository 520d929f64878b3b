"""The finished message of a claimed request: rendered, addressed, its recipient tokens signed.

Every email gets a `MessageRef`, a random ref that `message_refs` maps to its address, profile
and campaign, and a VERP return path `bounce+<token>@<bounce domain>` whose token names that
ref, so a bounce or a complaint finds the address it is about. A marketing email also carries
the one-click List-Unsubscribe link: a token for the same ref, signed for the other purpose.
The ref row must be saved before the email leaves (`Handing` does, once per batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.common.campaign_config import Campaign
from services.common.message_refs import MessageRef, message_ref
from services.common.models import EmailRequest
from services.common.token_settings import TokenSettings
from services.common.unsubscribe_token import KeyRing, TokenPurpose, bounce_address, sign
from services.mailer.message import OutgoingMessage, Unsubscribe, build_message, unsubscribe_link
from services.mailer.smtp import Envelope
from services.mailer.templates import TemplateSet, template_context


@dataclass(frozen=True)
class RecipientTokens:
    """How the tokens of one email are made: keys, link base, bounce domain, lifetimes."""

    keys: KeyRing = field(repr=False)
    unsubscribe_url: str
    unsubscribe_ttl: timedelta
    bounce_domain: str
    bounce_ttl: timedelta

    @classmethod
    def of(cls, settings: TokenSettings) -> RecipientTokens:
        return cls(
            settings.key_ring(),
            settings.unsubscribe_url,
            settings.unsubscribe_ttl,
            settings.bounce_domain,
            settings.bounce_ttl,
        )


@dataclass(frozen=True)
class Composed:
    """One email ready for the wire, and the ref row its tokens name."""

    message: OutgoingMessage
    ref: MessageRef
    return_path: str  # the envelope sender: bounces and complaints come back to it


class Composer:
    """Renders and builds messages; a request that cannot become one raises `InvalidInput`."""

    def __init__(self, tokens: RecipientTokens, message_id_domain: str = "") -> None:
        self._tokens = tokens
        self._message_id_domain = message_id_domain

    def compose(
        self, request: EmailRequest, campaign: Campaign, templates: TemplateSet, now: datetime
    ) -> Composed:
        """The message with its ref and return path; a marketing campaign's carries a one-click
        List-Unsubscribe link."""
        tokens = self._tokens
        rendered = templates.render(request.campaign, template_context(request))
        marketing = campaign.category == "marketing"
        ref = message_ref(
            idempotency_key=request.idempotency_key,
            campaign=request.campaign,
            category=campaign.category,
            profile_id=request.profile_id,
            email=request.email,
            message_id=request.message_id,
            now=now,
            ttl=max(tokens.bounce_ttl, tokens.unsubscribe_ttl) if marketing else tokens.bounce_ttl,
        )
        unsubscribe = None
        if marketing:
            until = now + tokens.unsubscribe_ttl
            token = sign(ref.ref, TokenPurpose.UNSUBSCRIBE, until, tokens.keys)
            unsubscribe = Unsubscribe(unsubscribe_link(tokens.unsubscribe_url, token))
        message = build_message(
            request,
            rendered,
            sender=campaign.sender,
            now=now,
            message_id_domain=self._message_id_domain,
            unsubscribe=unsubscribe,
        )
        bounce = sign(ref.ref, TokenPurpose.BOUNCE, now + tokens.bounce_ttl, tokens.keys)
        return Composed(message, ref, bounce_address(bounce, tokens.bounce_domain))

    @staticmethod
    def envelope(request: EmailRequest, composed: Composed) -> Envelope:
        """What the wire carries; `ValueError` for an address that could inject a command."""
        return Envelope.of(composed.message, composed.return_path, request.email)

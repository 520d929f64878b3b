"""The routing file as the processor's rules read it: resolved once, at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from services.common.campaign_config import Campaign
from services.common.models import EmailRequest
from services.common.personalisation import LinkPolicy
from services.common.personalisation_config import Personalisation, Variable
from services.common.pipeline_config import PipelineConfig
from services.processor.rules.routing import Routes, build_routes, normal_trigger_id, route_trigger


class RequestCodec(Protocol):
    """How a held email request is kept in the profile's state: as text."""

    def encode(self, request: EmailRequest) -> str: ...

    def decode(self, text: str) -> EmailRequest: ...


@dataclass(frozen=True)
class InputLimits:
    """The processor settings that guard against hostile or broken trigger data."""

    future_skew: timedelta = timedelta(minutes=5)
    allow_http_links: bool = False


@dataclass(frozen=True)
class CampaignRules:
    """One campaign: its policies, its variable declarations and its link policy."""

    name: str
    policy: Campaign
    declarations: Mapping[str, Variable]
    links: LinkPolicy


@dataclass(frozen=True)
class Rulebook:
    """Routes, campaigns and the limits every decision of stage 1 and 2 reads."""

    routes: Routes
    campaigns: Mapping[str, CampaignRules]
    cancel_on: Mapping[str, frozenset[str]]  # campaign -> normalised ids of triggers cancelling it
    cancellers: frozenset[str]  # every normalised trigger id some campaign is cancelled by
    transactional: frozenset[str]  # the campaigns caps neither count nor cap (receipts)
    personalisation: Personalisation
    limits: InputLimits
    codec: RequestCodec

    def route(self, trigger_id: str) -> CampaignRules | None:
        """The campaign that mails this trigger id (`route_trigger`), or None."""
        name = route_trigger(trigger_id, self.routes)
        return None if name is None else self.campaigns[name]

    def cancels(self, trigger_id: str) -> bool:
        """Whether the trigger id is in some campaign's `cancel_on`."""
        return normal_trigger_id(trigger_id) in self.cancellers


def build_rulebook(config: PipelineConfig, limits: InputLimits, codec: RequestCodec) -> Rulebook:
    cancel_on = {
        name: frozenset(normal_trigger_id(t) for t in campaign.cancel_on)
        for name, campaign in config.campaigns.items()
    }
    return Rulebook(
        routes=build_routes(config),
        campaigns={
            name: CampaignRules(
                name,
                campaign,
                config.campaign_variables(name),
                LinkPolicy.of(campaign, limits.allow_http_links),
            )
            for name, campaign in config.campaigns.items()
        },
        cancel_on=cancel_on,
        cancellers=frozenset().union(*cancel_on.values()),
        transactional=frozenset(
            name for name, c in config.campaigns.items() if c.category == "transactional"
        ),
        personalisation=config.personalisation,
        limits=limits,
        codec=codec,
    )


def state_retention(config: PipelineConfig) -> timedelta:
    """How long per-profile entries must live: the longest window any campaign looks back."""
    spans = [timedelta(days=1)]
    for campaign in config.campaigns.values():
        spans += [campaign.dedup_window, campaign.validity + campaign.delay]
        if campaign.frequency_cap is not None:
            spans.append(campaign.frequency_cap.window)
    return max(spans)

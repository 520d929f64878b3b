"""A campaign of the routing file: what to send for its triggers, and the rules that gate it."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Literal

from pydantic import Field, field_validator

from services.common.personalisation_config import (
    Declarations,
    Variable,
    absolute_link,
    check_variable_names,
)
from services.common.routing_model import RoutingModel
from services.common.settings import Duration

_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


class FrequencyCap(RoutingModel):
    count: int = Field(ge=1)
    window: Duration


class QuietHours(RoutingModel):
    start: time
    end: time
    timezone: str = "UTC"


class Campaign(RoutingModel):
    """A campaign: what to send for the triggers routed to it, and the rules that gate it."""

    connectors: tuple[str, ...] = Field((), description="Extra jsConnector values routed here.")
    template: str = Field(description="Template folder under the templates directory.")
    sender: str = "Triggerline <noreply@triggerline.invalid>"
    category: Literal["marketing", "transactional"] = "marketing"
    dedup_window: Duration = timedelta(hours=24)
    frequency_cap: FrequencyCap | None = None
    validity: Duration = timedelta(days=2)
    delay: Duration = timedelta(0)
    cancel_on: tuple[str, ...] = ()
    quiet_hours: QuietHours | None = None
    variables: Declarations = Field(
        default_factory=dict,
        description="This campaign's own variable declarations; each replaces the shared "
        "declaration of its name (personalisation.variables).",
    )
    link_hosts: tuple[str, ...] = Field(
        (),
        description="Hosts a link variable may point to; *.shop.example covers its subdomains "
        "(not shop.example itself).",
    )
    default_link: str = Field(
        "",
        description="Where a link variable points when the trigger's link is missing or not "
        "allowed; empty: the link renders empty.",
    )

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, Variable]) -> dict[str, Variable]:
        return check_variable_names(value)

    @field_validator("link_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        hosts = tuple(host.strip().lower().rstrip(".") for host in value)
        for host in hosts:
            if not _HOST.match(host):
                raise ValueError(f"{host!r} is not a host name (or *.domain)")
        return hosts

    @field_validator("default_link")
    @classmethod
    def _default_link(cls, value: str) -> str:
        return absolute_link(value, "default_link") if value else value

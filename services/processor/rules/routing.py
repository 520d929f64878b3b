"""Routing: which campaign handles a trigger id, as Adobe's `NmsPipeline_Config` says."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.common.pipeline_config import ALL_TRIGGERS, PipelineConfig


def normal_trigger_id(trigger_id: str) -> str:
    """Trigger ids compare trimmed and lower-cased: routing, `cancel_on` and the state alike."""
    return trigger_id.strip().lower()


@dataclass(frozen=True)
class Routes:
    """Trigger id -> campaign for one pipeline topic; `None` names a trigger no campaign mails."""

    exact: Mapping[str, str | None] = field(default_factory=dict)
    wildcard: str | None = None
    has_wildcard: bool = False


def build_routes(config: PipelineConfig, topic: str = "triggers") -> Routes:
    """The routing table of one pipeline topic.

    An entry with an empty `jsConnector` is a known trigger that mails nobody (a purchase that
    only cancels reminders); it still beats `*`. The first entry for an id wins, as in Adobe.
    """
    index = config.connector_index()
    exact: dict[str, str | None] = {}
    wildcard: str | None = None
    has_wildcard = False
    for entry in config.topics:
        if entry.name != topic:
            continue
        for route in entry.triggers:
            campaign = index.get(route.js_connector) if route.js_connector else None
            if route.name.strip() == ALL_TRIGGERS:
                if not has_wildcard:
                    wildcard, has_wildcard = campaign, True
            else:
                exact.setdefault(normal_trigger_id(route.name), campaign)
    return Routes(exact=exact, wildcard=wildcard, has_wildcard=has_wildcard)


def route_trigger(trigger_id: str, routes: Routes) -> str | None:
    """The campaign for a trigger id: an exact id beats `*`; unlisted ids get `None`."""
    key = normal_trigger_id(trigger_id)
    if key in routes.exact:
        return routes.exact[key]
    return routes.wildcard if routes.has_wildcard else None

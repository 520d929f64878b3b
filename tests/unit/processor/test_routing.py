"""Routing by trigger id, as NmsPipeline_Config says."""

from __future__ import annotations

from typing import Any

from services.common.pipeline_config import parse_pipeline_config
from services.processor.rules.routing import build_routes, route_trigger

CART = "3e8a2ba7-fccc-49bb-bdac-33ee33cf02bf"
PURCHASE = "9d0c3f1a-7b2e-4f5d-8c6a-1e2f3a4b5c6d"


def config(triggers: list[dict[str, str]]) -> Any:
    return parse_pipeline_config(
        {
            "topics": [{"name": "triggers", "consumer": "c", "triggers": triggers}],
            "campaigns": {
                "cart": {"template": "cart", "connectors": ["cus:triggers.js"]},
                "catch_all": {"template": "x", "connectors": ["cus:pipeline.js"]},
            },
        }
    )


def test_adobe_config_pasted_unchanged_routes_through_connectors() -> None:
    routes = build_routes(
        config(
            [
                {"name": CART, "jsConnector": "cus:triggers.js"},
                {"name": "*", "jsConnector": "cus:pipeline.js"},
            ]
        )
    )
    assert route_trigger(CART, routes) == "cart"
    assert route_trigger(CART.upper(), routes) == "cart"
    assert route_trigger("11111111-0000-0000-0000-000000000000", routes) == "catch_all"


def test_exact_id_beats_wildcard_whatever_the_order() -> None:
    routes = build_routes(
        config(
            [
                {"name": "*", "jsConnector": "cus:pipeline.js"},
                {"name": CART, "jsConnector": "cart"},
            ]
        )
    )
    assert route_trigger(CART, routes) == "cart"


def test_known_trigger_with_empty_connector_mails_nobody_even_with_wildcard() -> None:
    routes = build_routes(
        config(
            [
                {"name": PURCHASE, "jsConnector": ""},
                {"name": "*", "jsConnector": "cus:pipeline.js"},
            ]
        )
    )
    assert route_trigger(PURCHASE, routes) is None


def test_unlisted_trigger_without_wildcard_is_unrouted() -> None:
    routes = build_routes(config([{"name": CART, "jsConnector": "cart"}]))
    assert route_trigger("00000000-dead-4bad-8bad-000000000000", routes) is None


def test_first_entry_for_an_id_wins() -> None:
    routes = build_routes(
        config(
            [
                {"name": CART, "jsConnector": "cart"},
                {"name": CART, "jsConnector": "catch_all"},
            ]
        )
    )
    assert route_trigger(CART, routes) == "cart"

"""Personalisation values: declared variables, URL typing, header safety, caps."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.enrichments import Enrichments
from services.common.errors import ConfigurationError
from services.common.personalisation import (
    MAX_LINK_LENGTH,
    LinkPolicy,
    MissingData,
    Personalised,
    Why,
    declared_defaults,
    host_allowed,
    personalise,
    safe_link,
    safe_names,
    single_line,
)
from services.common.personalisation_config import Variable
from services.common.pipeline_config import parse_pipeline_config

SHOP = ("shop.example", "*.cdn.example")
LINKS = LinkPolicy(SHOP, "https://shop.example/cart")


def variable(**fields: Any) -> Variable:
    return Variable.model_validate({"from": ["pageURL"], **fields})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Ann", "Ann"),
        ("  Ann   Marie\tLee ", "Ann Marie Lee"),
        ("Ann\r\nBcc: x@evil.test", "Ann"),  # what follows a line break is an injection
        ("boots\nSubject: free money", "boots"),
        ("\r\nBcc: x@evil.test", ""),  # nothing before the break: nothing usable
        ("Ann\u2028Bcc: x", "Ann"),  # Unicode line separator
        ("Ann\x85Bcc: x", "Ann"),  # NEL
        ("A\x00n\x07n\x1b", "Ann"),  # other controls are dropped
        ("\u202eAnn", "Ann"),  # bidi override: would reverse the template's text after it
        ("\u2066Ann\u2069", "Ann"),  # isolates
        ("\u200f\u05d3\u05d5\u05d3", "\u200f\u05d3\u05d5\u05d3"),  # a direction mark stays
        ("محمد", "محمد"),
        ("Zoe\u0301", "Zoé"),  # NFC
        ("Zoë 👩🏽‍💻", "Zoë 👩🏽‍💻"),
        ("", ""),
    ],
)
def test_single_line(value: str, expected: str) -> None:
    assert single_line(value, 200) == expected


def test_single_line_caps_the_length_and_trims_the_cut() -> None:
    assert single_line("x" * 10_000, 200) == "x" * 200
    assert single_line("ab cd", 3) == "ab"


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("shop.example", True),
        ("SHOP.example.", True),
        ("www.shop.example", False),  # exact entries do not cover subdomains
        ("img.cdn.example", True),
        ("a.b.cdn.example", True),
        ("cdn.example", False),  # `*.` does not cover the bare domain
        ("evilcdn.example", False),
        ("shop.example.evil.test", False),
    ],
)
def test_host_allowed(host: str, allowed: bool) -> None:
    assert host_allowed(host, SHOP) is allowed


@pytest.mark.parametrize(
    ("value", "allow_http", "expected"),
    [
        ("https://shop.example/cart?id=1&x=2", False, "https://shop.example/cart?id=1&x=2"),
        ("HTTPS://Shop.Example/Cart?Q=1#top", False, "https://shop.example/Cart?Q=1#top"),
        ("https://shop.example", False, "https://shop.example/"),
        ("https://shop.example:8443/c", False, "https://shop.example:8443/c"),
        ("https://img.cdn.example/a.png", False, "https://img.cdn.example/a.png"),
        ("  https://shop.example/c  ", False, "https://shop.example/c"),
        ("http://shop.example/cart", False, None),
        ("http://shop.example/cart", True, "http://shop.example/cart"),
        ("javascript:alert(1)", True, None),
        ("JavaScript://shop.example/%0Aalert(1)", True, None),
        ("data:text/html,<script>", True, None),
        ("https://evil.test/phish", False, None),
        ("https://shop.example.evil.test/", False, None),
        ("https://shop.example@evil.test/", False, None),  # user info: the host is evil.test
        ("https://user:pw@shop.example/", False, None),
        ("https://shop.example\\@evil.test/", False, None),  # browsers read \ as /
        ("https://shop.example/c\r\nBcc: x@evil.test", False, None),
        ("https://shop.example/a b", False, None),
        ('https://shop.example/"><script>', False, None),
        ("https://shop.example:99999/", False, None),
        ("//shop.example/cart", False, None),  # no scheme
        ("localhost:4502/content/we-retail.html", False, None),  # Adobe's own sample
        ("https:///cart", False, None),
        ("", False, None),
    ],
)
def test_safe_link(value: str, allow_http: bool, expected: str | None) -> None:
    assert safe_link(value, SHOP, allow_http, MAX_LINK_LENGTH) == expected


def test_an_overlong_link_is_refused_not_cut() -> None:
    assert safe_link("https://shop.example/" + "a" * 3000, SHOP, False, MAX_LINK_LENGTH) is None


def enrichments(**dimensions: str) -> Enrichments:
    return Enrichments(hits={name: (value,) for name, value in dimensions.items()})


@pytest.mark.parametrize(
    ("declaration", "dimensions", "expected"),
    [
        # url: the trigger's link when allowed, else the variable's default, else the campaign's
        ({"type": "url"}, {"pageURL": "https://shop.example/c?x=1"}, "https://shop.example/c?x=1"),
        ({"type": "url"}, {}, "https://shop.example/cart"),
        ({"type": "url"}, {"pageURL": "javascript:alert(1)"}, "https://shop.example/cart"),
        ({"type": "url"}, {"pageURL": "https://evil.test/"}, "https://shop.example/cart"),
        (
            {"type": "url", "default": "https://shop.example/"},
            {"pageURL": "https://evil.test/"},
            "https://shop.example/",
        ),
        # text: made header-safe; absent renders the default, else empty
        ({}, {"pageURL": "boots\r\nBcc: x@evil.test"}, "boots"),
        ({}, {}, ""),
        ({"default": "our shop"}, {}, "our shop"),
        ({"default": "our shop"}, {"pageURL": "\r\nBcc: x@evil.test"}, "our shop"),
        ({"max_length": 4}, {"pageURL": "walking boots"}, "walk"),
        # the first present source wins, and a refused value does not fall through
        ({"from": ["eVar7", "pageURL"]}, {"pageURL": "b", "eVar7": "a"}, "a"),
        ({"from": ["eVar7", "pageURL"]}, {"pageURL": "b"}, "b"),
        (
            {"from": ["eVar3", "pageURL"], "type": "url"},
            {"eVar3": "https://evil.test/", "pageURL": "https://shop.example/ok"},
            "https://shop.example/cart",
        ),
    ],
)
def test_optional_variables_fall_back(
    declaration: dict[str, Any], dimensions: dict[str, str], expected: str
) -> None:
    result = personalise(enrichments(**dimensions), {"v": variable(**declaration)}, LINKS, 200)
    assert isinstance(result, Personalised)
    assert result.values == {"v": expected}


@pytest.mark.parametrize(
    ("declaration", "dimensions", "why"),
    [
        ({"required": True}, {}, "absent"),
        ({"required": True}, {"pageURL": "\nBcc: x@evil.test"}, "unsafe"),
        ({"required": True, "type": "url"}, {}, "absent"),
        ({"required": True, "type": "url"}, {"pageURL": "https://evil.test/"}, "unsafe"),
    ],
)
def test_a_required_variable_without_a_usable_value_is_missing_data(
    declaration: dict[str, Any], dimensions: dict[str, str], why: Why
) -> None:
    declarations = {"first": variable(), "v": variable(**declaration)}
    result = personalise(enrichments(**dimensions), declarations, LINKS, 200)
    assert result == MissingData("v", why)
    assert isinstance(result, MissingData)
    assert result.detail() == {"variable": "v", "why": why}


def test_fallbacks_are_reported_with_why() -> None:
    declarations = {"link": variable(type="url"), "terms": variable(**{"from": ["eVar7"]})}
    result = personalise(enrichments(pageURL="https://evil.test/"), declarations, LINKS, 200)
    assert isinstance(result, Personalised)
    assert result.fallbacks == (("link", "unsafe"), ("terms", "absent"))


def test_declared_defaults_are_what_a_missing_name_renders() -> None:
    declarations = {
        "cartUrl": variable(type="url"),
        "home": variable(type="url", default="https://shop.example/"),
        "terms": variable(),
        "greeting": variable(default="there"),
    }
    assert declared_defaults(declarations, LINKS) == {
        "cartUrl": "https://shop.example/cart",
        "home": "https://shop.example/",
        "terms": "",
        "greeting": "there",
    }


def test_product_names_are_capped_in_number_and_length_and_made_safe() -> None:
    session = [f"Product {i}" for i in range(20_000)]
    assert safe_names(session, 20, 200) == tuple(session[:20])
    names = ["Kettle\r\nBcc: x@evil.test", "Kettle", "", "\n", "y" * 500, "Cups"]
    assert safe_names(names, 20, 10) == ("Kettle", "y" * 10, "Cups")


ROUTING: dict[str, Any] = {"topics": [{"name": "triggers", "consumer": "c"}]}


def routing(**extra: Any) -> dict[str, Any]:
    return {**ROUTING, **extra}


def test_declarations_in_the_routing_file() -> None:
    config = parse_pipeline_config(
        routing(
            personalisation={
                "variables": {
                    "cartUrl": "pageURL",  # the short form: one dimension, optional text
                    "terms": {"from": "eVar7", "default": ""},
                    "link": {"from": ["eVar3", "pageURL"], "type": "url", "max_length": 500},
                }
            },
            campaigns={
                "search": {
                    "template": "search_abandonment",
                    "variables": {"terms": {"from": ["eVar7"], "required": True}},
                    "link_hosts": ["Shop.Example", "*.cdn.example"],
                    "default_link": "https://shop.example/search",
                }
            },
        )
    )
    shared = config.personalisation.variables
    assert shared["cartUrl"] == variable()
    assert shared["terms"].sources == ("eVar7",) and shared["terms"].default == ""
    assert shared["link"].sources == ("eVar3", "pageURL") and shared["link"].type == "url"
    search = config.campaign_variables("search")
    assert search["terms"].required and search["cartUrl"] == shared["cartUrl"]
    assert config.campaigns["search"].link_hosts == ("shop.example", "*.cdn.example")


def test_a_file_without_declarations_gets_the_shipped_ones() -> None:
    declared = parse_pipeline_config(ROUTING).personalisation.variables
    assert {n: v.type for n, v in declared.items()} == {
        "cartUrl": "url",
        "pageUrl": "url",
        "searchTerms": "text",
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"personalisation": {"variables": {"x": {"from": []}}}}, "variables.x"),
        ({"personalisation": {"variables": {"x": {"from": "a", "kind": "url"}}}}, "kind"),
        (
            {"personalisation": {"variables": {"x": {"from": "a", "required": 1, "default": ""}}}},
            "required variable takes no default",
        ),
        (
            {"personalisation": {"variables": {"x": {"from": "a", "type": "url", "default": "/"}}}},
            "absolute http",
        ),
        ({"personalisation": {"variables": {"first_name": "eVar9"}}}, "is taken"),
        ({"personalisation": {"variables": {"cart-url": "pageURL"}}}, "template name"),
        (
            {"campaigns": {"c": {"template": "t", "link_hosts": ["https://shop.example/"]}}},
            "not a host name",
        ),
        (
            {"campaigns": {"c": {"template": "t", "default_link": "javascript:alert(1)"}}},
            "default_link",
        ),
    ],
)
def test_bad_declarations_are_start_up_errors(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_pipeline_config(routing(**extra))

"""The routing file's personalisation: declared template variables and the limits on values.

A variable names the enrichment dimensions its value comes from, its type (text, or a link the
campaign allows) and what renders without a usable value. The shared declarations live under
`personalisation.variables`; a campaign may replace any of them by name.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, field_validator, model_validator

from services.common.routing_model import RoutingModel

# What every template sees besides the declared variables (`template_context` in the mailer), so
# no variable may take one of these names.
TEMPLATE_NAMES = frozenset(
    {"first_name", "email", "products", "campaign", "profile_id", "locale", "variables"}
)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def absolute_link(url: str, where: str) -> str:
    """An operator-written link (a default): absolute http(s) with a host, or a config error."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where} {url!r} must be an absolute http(s) URL")
    return url


def _one_or_many(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


def _declaration(value: Any) -> Any:
    """`cartUrl: pageURL` is short for `cartUrl: {from: [pageURL]}`."""
    return {"from": [value]} if isinstance(value, str) else value


class Variable(RoutingModel):
    """One personalisation variable: where its value comes from, its type, and what stands in
    for it when the trigger has no usable value."""

    sources: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = Field(
        alias="from",
        min_length=1,
        description="Enrichment dimensions tried in order; the first present one wins.",
    )
    type: Literal["text", "url"] = Field(
        "text",
        description="text: one line, safe in a header; url: a link to a host the campaign "
        "allows (link_hosts).",
    )
    default: str | None = Field(
        None,
        description="Rendered when the trigger has no usable value. Unset: text renders empty, "
        "a url the campaign's default_link.",
    )
    required: bool = Field(
        False,
        description="Without a usable value the trigger ends `skipped:missing_data` and no "
        "email request is made.",
    )
    max_length: int | None = Field(
        None,
        ge=1,
        le=8192,
        description="Longest value kept, in characters; unset: personalisation.max_length for "
        "text, 2048 for a url (a longer link is refused, never cut).",
    )

    @model_validator(mode="after")
    def _check(self) -> Variable:
        if self.required and self.default is not None:
            raise ValueError("a required variable takes no default: without a value it skips")
        if self.type == "url" and self.default:
            absolute_link(self.default, "default")
        return self


Declarations = dict[str, Annotated[Variable, BeforeValidator(_declaration)]]


def check_variable_names(variables: dict[str, Variable]) -> dict[str, Variable]:
    """`variables` unchanged, or a ValueError naming a variable no template can take as a name
    (not an identifier, or one every template already has)."""
    for name in variables:
        if not _IDENTIFIER.match(name):
            raise ValueError(f"variable {name!r} must be a template name (letters, digits, _)")
        if name in TEMPLATE_NAMES:
            taken = ", ".join(sorted(TEMPLATE_NAMES))
            raise ValueError(f"variable {name!r} is taken: every template already has {taken}")
    return variables


def shipped_variables() -> dict[str, Variable]:
    """The declarations of config/pipeline.yaml, for a routing file that declares none."""
    return {
        "cartUrl": Variable.model_validate({"from": ["pageURL"], "type": "url"}),
        "pageUrl": Variable.model_validate({"from": ["pageURL"], "type": "url"}),
        "searchTerms": Variable.model_validate({"from": ["eVar7"]}),
    }


class Personalisation(RoutingModel):
    """Which enrichment dimensions become template variables, and the limits on every value."""

    product_dimensions: tuple[str, ...] = ("products", "eVar5")
    max_products: int = Field(
        default=20, ge=0, le=1000, description="Products kept per request, first seen first."
    )
    max_length: int = Field(
        default=200,
        ge=1,
        le=8192,
        description="Longest text value kept (names, products, text variables), in characters.",
    )
    locales: tuple[str, ...] = Field(
        default=("en-GB", "fr-FR"),
        description="Locales profiles carry; `triggerline templates check` renders each.",
    )
    variables: Declarations = Field(
        default_factory=shipped_variables,
        description="Template variable -> its declaration (or just the dimension it reads).",
    )

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, Variable]) -> dict[str, Variable]:
        return check_variable_names(value)

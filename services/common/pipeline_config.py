"""The routing and campaign file: Adobe's `NmsPipeline_Config` JSON, extended with campaigns.

The `topics` part is accepted exactly as Campaign stores it (`topics[].name`, `consumer`,
`triggers[].name` as a trigger UUID or `*`, `jsConnector`). A connector names the campaign that
handles the trigger, either by the campaign's own name or through the campaign's `connectors`
list, so a pasted Adobe configuration keeps its `cus:triggers.js` values. JSON is valid YAML, so
either syntax works.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from services.common.errors import ConfigurationError
from services.common.identity import IdentityPrecedence
from services.common.settings import Duration
from services.common.topics import TOPICS

ALL_TRIGGERS = "*"
# What every template sees besides the declared variables (`template_context` in the mailer), so
# no variable may take one of these names.
TEMPLATE_NAMES = frozenset(
    {"first_name", "email", "products", "campaign", "profile_id", "locale", "variables"}
)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TriggerRoute(_Strict):
    """One `triggers[]` entry of `NmsPipeline_Config`."""

    name: str = Field(description="Trigger UUID, or * for every trigger of the topic.")
    js_connector: str = Field("", alias="jsConnector")


class PipelineTopic(_Strict):
    """One `topics[]` entry of `NmsPipeline_Config`."""

    name: Literal["triggers", "aliases"]
    consumer: str = Field(min_length=1)
    triggers: tuple[TriggerRoute, ...] = ()


class FrequencyCap(_Strict):
    count: int = Field(ge=1)
    window: Duration


class QuietHours(_Strict):
    start: time
    end: time
    timezone: str = "UTC"


def _absolute_link(url: str, where: str) -> str:
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


class Variable(_Strict):
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
            _absolute_link(self.default, "default")
        return self


Declarations = dict[str, Annotated[Variable, BeforeValidator(_declaration)]]


def _check_names(variables: dict[str, Variable]) -> dict[str, Variable]:
    for name in variables:
        if not _IDENTIFIER.match(name):
            raise ValueError(f"variable {name!r} must be a template name (letters, digits, _)")
        if name in TEMPLATE_NAMES:
            taken = ", ".join(sorted(TEMPLATE_NAMES))
            raise ValueError(f"variable {name!r} is taken: every template already has {taken}")
    return variables


class Campaign(_Strict):
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
        return _check_names(value)

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
        return _absolute_link(value, "default_link") if value else value


class Identity(_Strict):
    """Where declared shopper ids are read from in the enrichments, and which id wins."""

    declared_id_dimensions: tuple[str, ...] = ("eVar01",)
    email_dimensions: tuple[str, ...] = ()
    precedence: IdentityPrecedence = Field(
        default=IdentityPrecedence.DECLARED_FIRST,
        description="declared_first: a logged-in shopper's declared id (then emails) before the "
        "mcId, so a shared browser does not mail its previous visitor; mcid_first: the reverse.",
    )


def _shipped_variables() -> dict[str, Variable]:
    """The declarations of config/pipeline.yaml, for a routing file that declares none."""
    return {
        "cartUrl": Variable.model_validate({"from": ["pageURL"], "type": "url"}),
        "pageUrl": Variable.model_validate({"from": ["pageURL"], "type": "url"}),
        "searchTerms": Variable.model_validate({"from": ["eVar7"]}),
    }


class Personalisation(_Strict):
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
        default_factory=_shipped_variables,
        description="Template variable -> its declaration (or just the dimension it reads).",
    )

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, Variable]) -> dict[str, Variable]:
        return _check_names(value)


class PipelineConfig(_Strict):
    """The whole file."""

    topics: tuple[PipelineTopic, ...]
    campaigns: dict[str, Campaign] = Field(default_factory=dict)
    identity: Identity = Identity()
    personalisation: Personalisation = Personalisation()

    @model_validator(mode="after")
    def _check(self) -> PipelineConfig:
        if not self.topics:
            raise ValueError("topics: at least one pipeline topic (triggers) is required")
        names = [topic.name for topic in self.topics]
        if len(set(names)) != len(names):
            raise ValueError("topics: each pipeline topic may appear once")
        for campaign in self.campaigns:
            TOPICS.emails(campaign)  # raises on a name that cannot become a topic
        known = self.connector_index()
        for topic in self.topics:
            for route in topic.triggers:
                if route.js_connector and route.js_connector not in known:
                    raise ValueError(
                        f"topics[{topic.name}].triggers[{route.name}]: jsConnector "
                        f"{route.js_connector!r} names no campaign; add a campaign of that name "
                        "or list it in a campaign's connectors"
                    )
        return self

    def campaign_variables(self, campaign: str) -> dict[str, Variable]:
        """The variables a campaign's templates see: the shared ones, then its own by name."""
        return {**self.personalisation.variables, **self.campaigns[campaign].variables}

    def connector_index(self) -> dict[str, str]:
        """jsConnector value -> campaign name."""
        index: dict[str, str] = {}
        for name, campaign in self.campaigns.items():
            index[name] = name
            for connector in campaign.connectors:
                index[connector] = name
        return index

    def consumer(self, topic: str = "triggers") -> str:
        for entry in self.topics:
            if entry.name == topic:
                return entry.consumer
        raise ConfigurationError(f"no pipeline topic {topic!r} in the routing file")


def parse_pipeline_config(data: Any, source: str = "<config>") -> PipelineConfig:
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            problems.append(f"{where}: {error['msg']}")
        raise ConfigurationError(f"{source} is invalid: " + "; ".join(problems)) from None


def load_pipeline_config(path: Path) -> PipelineConfig:
    """Read and validate the file; every problem is a start-up error naming the file and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the routing file {path} ({exc.strerror}); set TRIGGERLINE_PIPELINE_CONFIG"
        ) from None
    if not text.strip():
        raise ConfigurationError(f"{path} is empty; it must hold the NmsPipeline_Config JSON")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path} is neither JSON nor YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} must hold an object starting with '{{' ")
    return parse_pipeline_config(data, str(path))

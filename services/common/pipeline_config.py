"""The routing and campaign file: Adobe's `NmsPipeline_Config` JSON, extended with campaigns.

The `topics` part is accepted exactly as Campaign stores it (`topics[].name`, `consumer`,
`triggers[].name` as a trigger UUID or `*`, `jsConnector`). A connector names the campaign that
handles the trigger, either by the campaign's own name or through the campaign's `connectors`
list, so a pasted Adobe configuration keeps its `cus:triggers.js` values. JSON is valid YAML, so
either syntax works. A campaign's model is `campaign_config`, personalisation's is
`personalisation_config`; this module holds the file's other parts, their cross-checks and loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from services.common.campaign_config import Campaign
from services.common.errors import ConfigurationError
from services.common.identity import IdentityPrecedence
from services.common.personalisation_config import Personalisation, Variable
from services.common.routing_model import RoutingModel
from services.common.topics import topics

ALL_TRIGGERS = "*"


class TriggerRoute(RoutingModel):
    """One `triggers[]` entry of `NmsPipeline_Config`."""

    name: str = Field(description="Trigger UUID, or * for every trigger of the topic.")
    js_connector: str = Field("", alias="jsConnector")


class PipelineTopic(RoutingModel):
    """One `topics[]` entry of `NmsPipeline_Config`."""

    name: Literal["triggers", "aliases"]
    consumer: str = Field(min_length=1)
    triggers: tuple[TriggerRoute, ...] = ()


class Identity(RoutingModel):
    """Where declared shopper ids are read from in the enrichments, and which id wins."""

    declared_id_dimensions: tuple[str, ...] = ("eVar01",)
    email_dimensions: tuple[str, ...] = ()
    precedence: IdentityPrecedence = Field(
        default=IdentityPrecedence.DECLARED_FIRST,
        description="declared_first: a logged-in shopper's declared id (then emails) before the "
        "mcId, so a shared browser does not mail its previous visitor; mcid_first: the reverse.",
    )


class PipelineConfig(RoutingModel):
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
            topics().emails(campaign)  # raises on a name that cannot become a topic
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

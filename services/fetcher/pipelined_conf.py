"""Campaign's `<pipelined>` element -> fetcher settings to apply and notices to log.

Every attribute Campaign documents for `<pipelined>` is either mapped onto a fetcher setting,
reported as not needed here, or refused with what to do instead; an attribute Campaign does not
document is refused too, so a misspelt one is never silently dropped. `docs/configuration.md`
("Migrating from Campaign's serverConf.xml") explains each decision.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from services.common.errors import ConfigurationError
from services.fetcher.settings import FetcherSettings

NOTICE = "serverConf.xml"  # how every notice starts, whatever the file is called

# Adobe attribute -> FetcherSettings field, applied as written (pydantic validates the value).
MAPPED: dict[str, str] = {
    "consumer": "consumer",
    "forcedPipelineEndpoint": "pipeline_endpoint",
    "discoverPipelineEndpoint": "discover_pipeline_endpoint",
    "pointerFlushMessageCount": "pointer_flush_message_count",
    "pointerFlushPeriodSec": "pointer_flush_period_sec",
    "processingThreads": "processing_threads",
    "retryPeriodSec": "retry_period_sec",
    "retryValiditySec": "retry_validity_sec",
    "monitorServerPort": "monitor_server_port",
    "dumpStatePeriodSec": "dump_state_period_sec",
}

_MEMORY = (
    "the container's memory limit caps the fetcher, TRIGGERLINE_FETCHER_MAX_BUFFERED_BYTES "
    "bounds what it holds, and alerts come from its metrics"
)

# Attributes with no job here, whatever their value: why, for the notice.
NOT_NEEDED: dict[str, str] = {
    "autoStart": "Kubernetes decides whether the fetcher runs (its Deployment's replicas)",
    "runLevel": "Kubernetes decides the start order, and the fetcher's readiness probe tells "
    "it when the fetcher is ready",
    "processRestartTime": "no daily restart: Kubernetes restarts a fetcher whose liveness probe "
    "fails, and the fetcher's memory is bounded",
    "maxProcessMemoryWarningMb": _MEMORY,
    "maxProcessMemoryAlertMb": _MEMORY,
    "processingJSThreads": "no JavaScript connector runs in the fetcher: the processor routes "
    "triggers to campaigns and scales with its own replicas",
    "args": "nlserver start-up arguments; the fetcher is started as `triggerline fetcher`",
}

# Legacy (pre-IMS) authentication, which Campaign itself ignores with authType="imsJwtToken".
LEGACY_AUTH = ("appName", "authPrivateKey", "authGatewayEndpoint")
LEGACY_GATEWAY = "https://api.omniture.com"  # Adobe's default authGatewayEndpoint
IMS_AUTH_TYPE = "imsJwtToken"
AUTH_SETTINGS = (
    "give the auth service an Adobe IMS credential instead (TRIGGERLINE_AUTH_MODE=oauth with "
    "TRIGGERLINE_AUTH_CLIENT_ID and TRIGGERLINE_AUTH_CLIENT_SECRET_FILE)"
)
SPECIAL = frozenset({*LEGACY_AUTH, "authType", "disableAuth", "initScript"})
KNOWN = frozenset({*MAPPED, *NOT_NEEDED, *SPECIAL})

_FALSE = frozenset({"", "0", "false", "2"})  # Adobe documents the default of disableAuth as 2
_TRUE = frozenset({"1", "true"})


@dataclass(frozen=True)
class Assignment:
    """One setting taken from the file: `attribute` (Adobe's name) gives `field` this value."""

    attribute: str
    field: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class PipelinedConf:
    """What a `<pipelined>` element asks for: settings to apply, and notices to log."""

    assignments: tuple[Assignment, ...]
    notices: tuple[str, ...]

    def values(self) -> dict[str, str]:
        return {a.field: a.value for a in self.assignments}


def variable(field: str) -> str:
    """The environment variable of a FetcherSettings field."""
    return f"{FetcherSettings.model_config.get('env_prefix', '')}{field}".upper()


def read_pipelined(text: str, source: str = NOTICE) -> PipelinedConf:
    """The settings and notices of the one `<pipelined>` element of a serverConf.xml text.

    Pure: no I/O, no environment. `source` names the file in errors. Raises ConfigurationError
    for a document with a DTD or entity declaration (refused, not parsed), XML that is not
    well-formed, no or several `<pipelined>` elements, and every attribute that cannot be
    honoured (all of them in one message). Values are not validated here: FetcherSettings
    does that, as it does for environment variables. No message carries an attribute's value
    unless that attribute is mapped (none of those holds a secret).
    """
    element = _pipelined_element(text, source)
    attributes = {name: value.strip() for name, value in element.attrib.items()}
    assignments: list[Assignment] = []
    notices: list[str] = []
    problems: list[str] = []
    for name in sorted(attributes):
        if name.startswith("{"):
            notices.append(f"{NOTICE}: namespaced attribute {name} ignored")
        elif name not in KNOWN:
            problems.append(
                f"{name} is not an attribute Campaign documents for <pipelined>; check its "
                "spelling or remove it"
            )
    assignments.extend(_endpoint(attributes, notices))
    for name, field in MAPPED.items():
        if name in ("forcedPipelineEndpoint", "discoverPipelineEndpoint") or name not in attributes:
            continue
        if attributes[name]:
            assignments.append(Assignment(name, field, attributes[name]))
        else:
            notices.append(f"{NOTICE}: {name} is empty; {variable(field)} keeps its value")
    for name, reason in NOT_NEEDED.items():
        if name in attributes:
            notices.append(f"{NOTICE}: {name} not used: {reason}")
    problems.extend(_authentication(attributes, notices))
    script = attributes.get("initScript")
    if script:
        problems.append(
            "initScript names Campaign JavaScript to run at start-up; Triggerline runs none: "
            "move what it did into the routing file (TRIGGERLINE_PIPELINE_CONFIG) and remove "
            "initScript"
        )
    elif script is not None:
        notices.append(f"{NOTICE}: initScript is empty; nothing to run")
    if problems:
        raise ConfigurationError(f"{source}: <pipelined> " + "; ".join(problems))
    return PipelinedConf(tuple(assignments), tuple(notices))


def _pipelined_element(text: str, source: str) -> ET.Element:
    # defusedxml is not installed: rather than trust the parser with entity expansion (the
    # "billion laughs") or external entities, refuse any document declaring a DTD or entity.
    upper = text.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        raise ConfigurationError(
            f"{source}: refused: the document declares a DTD or entities, which a serverConf.xml "
            "never needs; remove the <!DOCTYPE ...> or <!ENTITY ...> declarations"
        )
    try:
        root = ET.fromstring(text)  # noqa: S314 - DTDs and entities refused above
    except ET.ParseError as exc:
        raise ConfigurationError(f"{source}: not well-formed XML ({exc}); fix the file") from None
    found = [element for element in root.iter() if _local_name(element.tag) == "pipelined"]
    if not found:
        raise ConfigurationError(
            f"{source}: no <pipelined> element; paste the serverConf.xml (or config-<instance>"
            ".xml) that holds it, or leave TRIGGERLINE_FETCHER_SERVER_CONF empty"
        )
    if len(found) > 1:
        raise ConfigurationError(
            f"{source}: {len(found)} <pipelined> elements; keep only the one in effect"
        )
    return found[0]


def _local_name(tag: object) -> str:
    # Comments and processing instructions have a function as their tag.
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _endpoint(attributes: dict[str, str], notices: list[str]) -> list[Assignment]:
    """Campaign's rule: a forced endpoint wins; without one, the discovery service decides."""
    forced = attributes.get("forcedPipelineEndpoint", "")
    discover = attributes.get("discoverPipelineEndpoint", "")
    found: list[Assignment] = []
    if forced:
        found.append(Assignment("forcedPipelineEndpoint", "pipeline_endpoint", forced))
        if discover:
            found.append(
                Assignment(
                    "discoverPipelineEndpoint",
                    "discover_pipeline_endpoint",
                    discover,
                    "unused while forcedPipelineEndpoint is set, as in Campaign",
                )
            )
    elif discover:
        found.append(Assignment("discoverPipelineEndpoint", "discover_pipeline_endpoint", discover))
        found.append(
            Assignment(
                "forcedPipelineEndpoint",
                "pipeline_endpoint",
                "",
                "absent or empty: the discovery service names the endpoint",
            )
        )
    else:
        notices.append(
            f"{NOTICE}: neither forcedPipelineEndpoint nor discoverPipelineEndpoint is set; "
            f"{variable('pipeline_endpoint')} keeps its value (Campaign would ask "
            "https://producer-pipeline-pnw.adobe.net: write discoverPipelineEndpoint to do so)"
        )
    return found


def _authentication(attributes: dict[str, str], notices: list[str]) -> list[str]:
    """Notices and problems for authType, the legacy attributes and disableAuth."""
    problems: list[str] = []
    auth_type = attributes.get("authType", "")
    ims = auth_type == IMS_AUTH_TYPE
    if ims:
        notices.append(
            f"{NOTICE}: authType={IMS_AUTH_TYPE}: the auth service gets the IMS tokens "
            "(TRIGGERLINE_AUTH_MODE=oauth, or jwt for a service account); the fetcher asks it"
        )
    elif auth_type:
        problems.append(
            f"authType={auth_type!r} is not supported: only {IMS_AUTH_TYPE} (Adobe IMS); "
            f'{AUTH_SETTINGS}, then write authType="{IMS_AUTH_TYPE}"'
        )
    for name in LEGACY_AUTH:
        if name not in attributes:
            continue
        value = attributes[name]
        if not value or (name == "authGatewayEndpoint" and value.rstrip("/") == LEGACY_GATEWAY):
            notices.append(f"{NOTICE}: {name} not used: legacy authentication only, not set up")
        elif ims:
            notices.append(
                f"{NOTICE}: {name} not used: legacy authentication only, which Campaign also "
                f"ignores with authType={IMS_AUTH_TYPE}; its value is not read (remove it)"
            )
        else:
            # The value is never repeated: authPrivateKey holds a key.
            problems.append(
                f"{name} is set up for Adobe's legacy gateway token, retired in 2021-22 (it "
                f"answers 403); Triggerline cannot use it: {AUTH_SETTINGS}, and remove {name}"
            )
    if "disableAuth" in attributes:
        flag = attributes["disableAuth"].lower()
        if flag in _TRUE:
            problems.append(
                "disableAuth is true: Triggerline always authenticates upstream; for local "
                "development only, run the auth service with TRIGGERLINE_AUTH_MODE=none and "
                "TRIGGERLINE_AUTH_ALLOW_NONE=true, and remove disableAuth"
            )
        elif flag in _FALSE:
            notices.append(f"{NOTICE}: disableAuth not used: authentication is always on")
        else:
            problems.append("disableAuth is not a boolean; write false, or remove it")
    return problems

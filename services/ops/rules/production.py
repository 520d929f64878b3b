"""What a production configuration must not keep from the local defaults.

The defaults work on loopback with development keys; in a cluster they silently point at
nothing, or at the simulator's identities. These rules take plain values (variable -> text),
so `triggerline config check --production` and the deploy tests (on the rendered overlay)
apply the same ones. Messages name the variable and never repeat a secret's value.
`production_problems` are refused; `production_warnings` are printed and do not fail the check.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

REFERENCED = "<from a Secret>"  # a value the deploy tests know is set, but not what it is

# Settings whose local default is never right for an environment of its own.
MUST_DIFFER = (
    "TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS",
    "TRIGGERLINE_AUTH_IMS_URL",
    "TRIGGERLINE_AUTH_CLIENT_ID",
    "TRIGGERLINE_AUTH_IMS_ORG",
    "TRIGGERLINE_MAILER_SMTP_HOST",
    "TRIGGERLINE_MAILER_SMTP_PORT",
    "TRIGGERLINE_TOKENS_KEY",
    "TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL",
    "TRIGGERLINE_TOKENS_BOUNCE_DOMAIN",
    "TRIGGERLINE_DB_URL",
)
# Settings naming somewhere a service connects to (URLs, host names, host:port lists).
DESTINATIONS = (
    "TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS",
    "TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT",
    "TRIGGERLINE_FETCHER_DISCOVER_PIPELINE_ENDPOINT",
    "TRIGGERLINE_FETCHER_AUTH_URL",
    "TRIGGERLINE_AUTH_IMS_URL",
    "TRIGGERLINE_MAILER_SMTP_HOST",
    "TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL",
    "TRIGGERLINE_MAILER_MESSAGE_ID_DOMAIN",
    "TRIGGERLINE_DB_URL",
)
SECRETS = (
    "TRIGGERLINE_TOKENS_KEY",
    "TRIGGERLINE_TOKENS_PREVIOUS_KEY",
    "TRIGGERLINE_FEEDBACK_LEGACY_KEY",
    "TRIGGERLINE_DB_URL",
)
_INVALID = re.compile(r"(?i)(?:^|[@./\s<])(?:[a-z0-9-]+\.)*invalid(?=$|[:/>\s\"'])")


def hosts(value: str) -> list[str]:
    """Host names in a URL, a `host:port` list or a bare host."""
    hosts_found: list[str] = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        if "://" in part:
            host = urlsplit(part).hostname or ""
        else:
            host = part.rsplit(":", 1)[0] if part.count(":") == 1 else part
        hosts_found.append(host.strip("[]").lower())
    return hosts_found


def is_local(host: str) -> bool:
    """Loopback, unspecified, or a name only this machine resolves."""
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def production_problems(
    values: Mapping[str, str],
    defaults: Mapping[str, str],
    consumer: str,
    local_consumer: str,
    senders: Sequence[str],
) -> list[str]:
    """Everything in `values` (effective settings) that production must not run with.

    Only the variables present in `values` are judged, so a check scoped to one service
    (`--service mailer`) does not ask for another's secrets.
    """
    problems: list[str] = []
    for name in MUST_DIFFER:
        if name in values and values[name] == defaults.get(name):
            problems.append(f"{name} keeps its local default; set this environment's value")
    if "TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT" in values:
        endpoint = values["TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT"] or values.get(
            "TRIGGERLINE_FETCHER_DISCOVER_PIPELINE_ENDPOINT", ""
        )
        if not endpoint:
            problems.append(
                "TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT and _DISCOVER_PIPELINE_ENDPOINT are both "
                "empty; set one"
            )
        elif endpoint == defaults.get("TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT"):
            problems.append("TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT keeps its local default")
    for name in DESTINATIONS:
        value = values.get(name, "")
        if not value or value == REFERENCED:
            continue
        shown = "(secret)" if name in SECRETS else value
        if value.startswith("sqlite"):
            problems.append(f"{name} is SQLite; production needs PostgreSQL")
        elif any(is_local(host) for host in hosts(value)):
            problems.append(f"{name} points at this machine ({shown}); give the real address")
    for name, value in values.items():
        if value != REFERENCED and _INVALID.search(value):
            shown = "(secret)" if name in SECRETS else value
            problems.append(f"{name} uses a .invalid name ({shown})")
    if values.get("TRIGGERLINE_AUTH_MODE") == "none" or values.get(
        "TRIGGERLINE_AUTH_ALLOW_NONE", ""
    ).lower() in ("true", "1", "yes"):
        problems.append("TRIGGERLINE_AUTH_MODE none serves a placeholder token; use oauth or jwt")
    protocol = values.get("TRIGGERLINE_KAFKA_SECURITY_PROTOCOL")
    if protocol is not None and protocol not in ("SSL", "SASL_SSL"):
        problems.append(f"TRIGGERLINE_KAFKA_SECURITY_PROTOCOL is {protocol}; use TLS (SASL_SSL)")
    if "TRIGGERLINE_FETCHER_CONSUMER" in values and consumer == local_consumer:
        problems.append(
            f"upstream consumer {consumer!r} is the local one: set TRIGGERLINE_FETCHER_CONSUMER "
            "(or topics[].consumer) to a name of this environment alone"
        )
    problems += [
        f"campaign sender {sender!r} uses a .invalid domain"
        for sender in senders
        if _INVALID.search(sender)
    ]
    return problems


def production_warnings(values: Mapping[str, str]) -> list[str]:
    """What production may run with but should not: each a one-line reason, never a refusal.

    Judged only when the feedback service's settings are in `values`, as the problems are.
    """
    warnings: list[str] = []
    cert, key = "TRIGGERLINE_FEEDBACK_SMTP_TLS_CERT", "TRIGGERLINE_FEEDBACK_SMTP_TLS_KEY"
    if cert in values and not (values[cert] and values.get(key)):
        # Not refused: RFC 3207 lets an MX run without TLS, and senders fall back to plaintext.
        warnings.append(
            f"{cert} and {key} are unset: the MX offers no STARTTLS, so bounce and complaint "
            "reports bring recipients' addresses in plaintext; mount the MX host's certificate"
        )
    return warnings

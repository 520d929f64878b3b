"""The local stack's ports, options and the environment every child process shares."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

PROCESSOR_APP_ID = "triggerline-processor"
DEFAULT_PORTS = {
    "simulator": 7790,
    "auth": 7791,
    "fetcher": 7781,
    "mailer": 7782,
    "processor": 6066,
    "smtp": 2525,
    "feedback": 7785,
    "feedback_health": 7786,
    "feedback_smtp": 2526,
}


@dataclass(frozen=True)
class StackOptions:
    """What one run of the local stack does, where it keeps its state and which ports it uses."""

    triggers: int
    rate: float
    profiles: int
    seed: int
    var: Path
    timeout: float
    fresh: bool
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    processor_app_id: str = PROCESSOR_APP_ID
    topics_prefix: str = ""
    generate: bool = True
    visitors: int | None = None  # None: as many as profiles (every visitor has a profile)
    # more command-line arguments per child command, e.g. {"smtp-sink": ("--journal", path)}
    extra_args: dict[str, tuple[str, ...]] = field(default_factory=dict)


def local_environment(options: StackOptions, run_id: str) -> dict[str, str]:
    """Settings every child shares; secrets here are throwaway loopback credentials."""
    ims_client_secret = uuid.uuid4().hex
    fetcher_secret = uuid.uuid4().hex
    ports = {**DEFAULT_PORTS, **options.ports}
    unsubscribe_url = f"http://127.0.0.1:{ports['feedback']}/unsubscribe"
    return {
        "TRIGGERLINE_TOPICS_PREFIX": options.topics_prefix,
        "TRIGGERLINE_DB_URL": f"sqlite:///{options.var / 'triggerline.db'}",
        # simulator: upstream pipeline and IMS
        "TRIGGERLINE_SIMULATOR_PORT": str(ports["simulator"]),
        "TRIGGERLINE_SIMULATOR_CLIENT_ID": "triggerline-local",
        "TRIGGERLINE_SIMULATOR_CLIENT_SECRET": ims_client_secret,
        # auth: the only holder of the IMS client secret
        "TRIGGERLINE_AUTH_PORT": str(ports["auth"]),
        "TRIGGERLINE_AUTH_MODE": "oauth",
        "TRIGGERLINE_AUTH_IMS_URL": f"http://127.0.0.1:{ports['simulator']}",
        "TRIGGERLINE_AUTH_CLIENT_ID": "triggerline-local",
        "TRIGGERLINE_AUTH_CLIENT_SECRET": ims_client_secret,
        "TRIGGERLINE_AUTH_CLIENTS": f"fetcher:{fetcher_secret}",
        # fetcher: a new upstream consumer per run, since the simulator's offsets restart at 0
        "TRIGGERLINE_FETCHER_CONSUMER": f"triggerline_local_{run_id}",
        "TRIGGERLINE_FETCHER_RESET": "earliest",
        "TRIGGERLINE_FETCHER_AUTH_URL": f"http://127.0.0.1:{ports['auth']}",
        "TRIGGERLINE_FETCHER_AUTH_SECRET": fetcher_secret,
        "TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT": f"http://127.0.0.1:{ports['simulator']}",
        "TRIGGERLINE_FETCHER_MONITOR_SERVER_PORT": str(ports["fetcher"]),
        "TRIGGERLINE_FETCHER_DUMP_STATE_PATH": str(options.var / "pipelined.json"),
        # processor
        "TRIGGERLINE_PROCESSOR_APP_ID": options.processor_app_id,
        "TRIGGERLINE_PROCESSOR_DATA_DIR": str(options.var / "processor"),
        "TRIGGERLINE_PROCESSOR_WEB_PORT": str(ports["processor"]),
        # mailer and sink
        "TRIGGERLINE_MAILER_SMTP_PORT": str(ports["smtp"]),
        "TRIGGERLINE_MAILER_HEALTH_PORT": str(ports["mailer"]),
        # recipient tokens, shared by the mailer and the feedback service: a throwaway key, and
        # the development allowance for a plain-http link on loopback and a local bounce domain
        "TRIGGERLINE_TOKENS_KEY": secrets.token_urlsafe(48),
        "TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL": unsubscribe_url,
        "TRIGGERLINE_TOKENS_BOUNCE_DOMAIN": "bounces.localhost",
        "TRIGGERLINE_TOKENS_DEVELOPMENT": "true",
        # feedback: the page the links open, and the SMTP listener for bounces
        "TRIGGERLINE_FEEDBACK_PORT": str(ports["feedback"]),
        "TRIGGERLINE_FEEDBACK_HEALTH_PORT": str(ports["feedback_health"]),
        "TRIGGERLINE_FEEDBACK_SMTP_PORT": str(ports["feedback_smtp"]),
    }

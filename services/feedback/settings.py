"""The feedback service's settings (`TRIGGERLINE_FEEDBACK_*`), plus the shared parts it reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from services.common.settings import (
    DatabaseSettings,
    Duration,
    KafkaSettings,
    LogSettings,
    load,
    settings_config,
)
from services.common.token_settings import DEVELOPMENT_KEY, TokenSettings, insecure_token_settings

# A file setting left empty is unset: Path("") would name the working directory.
OptionalFile = Annotated[Path | None, BeforeValidator(lambda value: value or None)]


class FeedbackSettings(BaseSettings):
    """The unsubscribe endpoint, the inbound SMTP listener for bounces and complaints."""

    model_config = settings_config("feedback")

    host: str = Field(
        "127.0.0.1",
        description="Address of the public HTTP server (/unsubscribe only).",
    )
    port: int = Field(7785, description="Port of the public HTTP server.", ge=0, le=65535)
    health_host: str = Field("127.0.0.1", description="Address of /healthz, /readyz, /metrics.")
    health_port: int = Field(
        7786, description="Port of /healthz, /readyz, /metrics (kept off the public port).", ge=0
    )
    smtp_host: str = Field("127.0.0.1", description="Address of the inbound SMTP listener.")
    smtp_port: int = Field(
        2526, description="Port of the inbound SMTP listener (25 behind the MX).", ge=0, le=65535
    )
    smtp_hostname: str = Field(
        "", description="Name the SMTP listener greets with; empty for the machine's FQDN."
    )
    smtp_tls_cert: OptionalFile = Field(
        None,
        description="PEM certificate chain (the MX host's certificate first) with which the SMTP "
        "listener offers STARTTLS, never requiring it; set with TRIGGERLINE_FEEDBACK_SMTP_TLS_KEY, "
        "or neither for plaintext only.",
    )
    smtp_tls_key: OptionalFile = Field(
        None,
        description="Unencrypted PEM private key of TRIGGERLINE_FEEDBACK_SMTP_TLS_CERT (a mounted "
        "Kubernetes Secret).",
    )
    smtp_tls_files_optional: bool = Field(
        False,
        description="When neither certificate file exists (an optional Kubernetes Secret not "
        "created), start without STARTTLS and warn; otherwise a missing file stops start-up.",
    )
    complaint_mailbox: str = Field(
        "fbl",
        description="Local part, at the bounce domain, that mailbox providers' feedback loops "
        "send ARF complaints to; empty accepts only VERP addresses.",
    )
    max_message_size: int = Field(
        2 * 1024 * 1024,
        description="Largest inbound report accepted, in bytes (larger ones are refused at DATA).",
        ge=10_000,
    )
    soft_bounce_limit: int = Field(
        3,
        description="Soft bounces (4.x.x, one per email) within the window that suppress the "
        "address as a hard bounce.",
        ge=1,
    )
    soft_bounce_window: Duration = Field(
        timedelta(days=7), description="The window soft bounces are counted in."
    )
    legacy_key: SecretStr = Field(
        SecretStr(""),
        description="The mailer's former TRIGGERLINE_MAILER_UNSUBSCRIBE_SECRET (secret): links "
        "in the old format keep working until they expire. Empty refuses them.",
    )
    event_retention: Duration = Field(
        timedelta(days=90),
        description="How long recipient events are kept (replay protection and the soft-bounce "
        "count); at least the soft-bounce window.",
    )
    dead_letter_retention: Duration = Field(
        timedelta(days=30), description="How long unusable inbound messages are kept."
    )
    maintenance_interval: Duration = Field(
        timedelta(seconds=5),
        description="How often unacknowledged outcomes are sent again and old rows pruned.",
    )
    migrate_on_start: bool = Field(
        True, description="Upgrade the database schema at start-up (SQLite, local runs)."
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> FeedbackSettings:
        if (self.smtp_tls_cert is None) != (self.smtp_tls_key is None):
            given, missing = ("CERT", "KEY") if self.smtp_tls_key is None else ("KEY", "CERT")
            raise ValueError(
                f"TRIGGERLINE_FEEDBACK_SMTP_TLS_{given} is set but "
                f"TRIGGERLINE_FEEDBACK_SMTP_TLS_{missing} is not: STARTTLS needs the certificate "
                "chain and its key; set both, or neither for plaintext only"
            )
        return self


@dataclass(frozen=True)
class FeedbackConfig:
    """Every settings part the feedback service reads, loaded once in `main`."""

    feedback: FeedbackSettings
    tokens: TokenSettings
    kafka: KafkaSettings
    database: DatabaseSettings
    log: LogSettings


def load_config() -> FeedbackConfig:
    """Read the environment once; errors name the variable."""
    return FeedbackConfig(
        feedback=load(FeedbackSettings),
        tokens=load(TokenSettings),
        kafka=load(KafkaSettings),
        database=load(DatabaseSettings),
        log=load(LogSettings),
    )


def insecure_settings(config: FeedbackConfig) -> list[str]:
    """What the service must not start with outside development (see `insecure_token_settings`)."""
    problems = insecure_token_settings(config.tokens)
    if config.feedback.legacy_key.get_secret_value() == DEVELOPMENT_KEY:
        problems.append(
            "TRIGGERLINE_FEEDBACK_LEGACY_KEY is the public development key, so anyone could "
            "unsubscribe any profile with an old-format link; set the mailer's real former key, "
            "or leave it empty"
        )
    return problems

"""The mailer's settings (`TRIGGERLINE_MAILER_*`), plus the shared parts it reads."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode

from services.common.settings import (
    DatabaseSettings,
    Duration,
    KafkaSettings,
    LogSettings,
    PipelineConfigSettings,
    load,
    parse_duration,
    settings_config,
)
from services.common.token_settings import TokenSettings
from services.common.topics import RETRY_DELAYS, topics


def _delays(value: Any) -> Any:
    """`30s,5m,30m` as well as a JSON list."""
    if isinstance(value, str):
        return tuple(parse_duration(part) for part in value.split(",") if part.strip())
    return value


class MailerSettings(BaseSettings):
    """How the mailer consumes email requests and reaches the SMTP server."""

    model_config = settings_config("mailer")

    smtp_host: str = Field("127.0.0.1", description="SMTP server host.")
    smtp_port: int = Field(2525, description="SMTP server port.", ge=1, le=65535)
    smtp_starttls: bool = Field(False, description="Upgrade each connection with STARTTLS.")
    smtp_ca_file: str = Field(
        "",
        description="PEM file of the CA that signed the SMTP server's certificate (a private "
        "relay); empty: the system's CAs.",
    )
    smtp_username: str = Field("", description="SMTP AUTH user name; empty for no AUTH.")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP AUTH password (secret).")
    smtp_timeout: Duration = Field(
        timedelta(seconds=10), description="Socket timeout of every SMTP command."
    )
    smtp_pool_size: int = Field(
        8,
        description="SMTP connections kept open; a batch keeps them all busy at once.",
        ge=1,
        le=256,
    )
    group_id: str = Field("triggerline-mailer", description="Kafka consumer group.")
    session_timeout: Duration = Field(
        timedelta(seconds=45),
        description="How long the group waits for a silent (crashed) member before its "
        "partitions move to another mailer.",
    )
    instance_id: str = Field(
        "", description="Name written on claims; empty for host name and process id."
    )
    campaign_pattern: str = Field(
        "",
        description="POSIX regex of the campaigns whose `emails.<campaign>` topics are "
        "consumed; empty for every campaign. New topics are picked up without a restart.",
    )
    topic_refresh: Duration = Field(
        timedelta(seconds=30), description="How often new campaign topics are looked for."
    )
    batch_size: int = Field(
        500,
        description="Most requests handled per poll: the first, and those that have already "
        "arrived.",
        ge=1,
    )
    poll_timeout: Duration = Field(
        timedelta(milliseconds=500),
        description="Longest wait for the first request of a poll (no poll waits for a full "
        "batch).",
    )
    claim_timeout: Duration = Field(
        timedelta(minutes=5),
        description="Age after which a pending claim of a crashed instance is taken over.",
    )
    retry_delays: Annotated[tuple[Duration, ...], NoDecode, BeforeValidator(_delays)] = Field(
        RETRY_DELAYS,
        description="Wait in each retry topic, in order (e.g. 30s,5m,30m); one per declared "
        "`emails.retry.*` topic at most.",
    )
    message_id_domain: str = Field(
        "", description="Right-hand side of Message-IDs; empty for the sender's domain."
    )
    health_host: str = Field("127.0.0.1", description="Address of /healthz, /readyz, /metrics.")
    health_port: int = Field(7782, description="Port of /healthz, /readyz, /metrics.", ge=0)
    migrate_on_start: bool = Field(
        True, description="Upgrade the database schema at start-up (SQLite, local runs)."
    )

    @field_validator("retry_delays")
    @classmethod
    def _check_delays(cls, value: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
        declared = len(topics().email_retries())
        if not 1 <= len(value) <= declared:
            raise ValueError(f"give 1 to {declared} delays, one per declared retry topic")
        if any(delay <= timedelta(0) for delay in value):
            raise ValueError("every delay must be positive")
        return value

    @field_validator("campaign_pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        if value:
            try:
                topics().emails_pattern(value)
            except (ValueError, re.error) as exc:
                raise ValueError(f"{exc}; it must match campaign names only") from None
        return value

    def instance_name(self) -> str:
        return self.instance_id or f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class MailerConfig:
    """Every settings part the mailer reads, loaded once in `main`."""

    mailer: MailerSettings
    kafka: KafkaSettings
    database: DatabaseSettings
    pipeline: PipelineConfigSettings
    tokens: TokenSettings
    log: LogSettings


def load_config() -> MailerConfig:
    """Read the environment once; errors name the variable."""
    mailer, kafka, database = load(MailerSettings), load(KafkaSettings), load(DatabaseSettings)
    pipeline, tokens = load(PipelineConfigSettings), load(TokenSettings)
    return MailerConfig(mailer, kafka, database, pipeline, tokens, load(LogSettings))

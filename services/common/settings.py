"""Settings parts shared by every service, and the one way settings are loaded.

Each service has one frozen settings class in `services/<service>/settings.py`. Every field has a
type, a default that works on loopback, an environment variable (`TRIGGERLINE_<PART>_<FIELD>`)
and a one-line description from which `docs/configuration.md` is generated.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BeforeValidator, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.errors import ConfigurationError
from services.resources import DEFAULT_PIPELINE_CONFIG, DEFAULT_TEMPLATES_DIR

ENV_ROOT = "TRIGGERLINE_"
REPO_ROOT = Path(__file__).resolve().parents[2]

S = TypeVar("S", bound=BaseSettings)

# Variables read outside the settings classes: the local scripts' folders and ports, and the
# test suite's service addresses.
OTHER_VARIABLES = frozenset(
    {
        "TRIGGERLINE_KAFKA_HOME",
        "TRIGGERLINE_POSTGRES_HOME",
        "TRIGGERLINE_POSTGRES_PORT",
        "TRIGGERLINE_TEST_BOOTSTRAP",
        "TRIGGERLINE_TEST_POSTGRES_URL",
    }
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """`500ms`, `30s`, `5m`, `24h`, `2d`, or a bare number of seconds."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        return timedelta(seconds=text)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; write e.g. 30s, 5m, 24h or 2d")
    value, unit = match.groups()
    return timedelta(seconds=float(value) * _UNITS[unit or "s"])


# The one duration type of every setting and routing-file field: `30s`, `5m`, `2d` or seconds.
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def settings_config(part: str) -> SettingsConfigDict:
    """Model config for one settings part: env prefix `TRIGGERLINE_<PART>_`, frozen."""
    return SettingsConfigDict(
        env_prefix=f"{ENV_ROOT}{part.upper()}_",
        frozen=True,
        extra="ignore",
        case_sensitive=False,
    )


class KafkaSettings(BaseSettings):
    """How every service reaches Kafka."""

    model_config = settings_config("kafka")

    bootstrap_servers: str = Field(
        "127.0.0.1:19092", description="Kafka bootstrap servers, comma-separated."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    sasl_mechanism: str = Field("SCRAM-SHA-512", description="SASL mechanism, when SASL is used.")
    sasl_username: str = Field("", description="SASL user name, when SASL is used.")
    sasl_password: SecretStr = Field(
        SecretStr(""), description="SASL password (secret), when SASL is used."
    )
    ssl_ca_location: str = Field("", description="CA bundle for TLS to the brokers.")

    def client_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka properties common to every client; secrets revealed only here."""
        config: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL"):
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            config["ssl.ca.location"] = self.ssl_ca_location
        return config


class TopicSettings(BaseSettings):
    """The namespace of every topic name (services/common/topics.py)."""

    model_config = settings_config("topics")

    prefix: str = Field(
        "",
        description="Prefix of every topic name (`staging.` gives `staging.triggers.raw`), so "
        "several environments or test runs can share one cluster.",
    )


class DatabaseSettings(BaseSettings):
    """The relational database of profiles, suppressions and delivery claims."""

    model_config = settings_config("db")

    url: SecretStr = Field(
        SecretStr(f"sqlite:///{REPO_ROOT / 'var' / 'triggerline.db'}"),
        description="SQLAlchemy URL (secret: it may hold a password). SQLite by default, "
        "postgresql+psycopg://... in production.",
    )
    pool_size: int = Field(5, description="Connections kept open per process.", ge=1)
    statement_timeout: float = Field(
        5.0, description="Seconds before a query is abandoned as a transient failure.", gt=0
    )


class LogSettings(BaseSettings):
    """Logging for every process."""

    model_config = settings_config("log")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["text", "json"] = Field(
        "text", description="`json` for one JSON object per line (log shippers), `text` for people."
    )


class PipelineConfigSettings(BaseSettings):
    """Where the routing and campaign file lives."""

    model_config = settings_config("pipeline")

    config: Path = Field(
        DEFAULT_PIPELINE_CONFIG,
        description="Routing and campaigns file: Adobe's NmsPipeline_Config JSON, extended "
        "with campaigns (YAML or JSON).",
    )
    templates_dir: Path = Field(
        DEFAULT_TEMPLATES_DIR,
        description="Folder of campaign templates, one sub-folder per template.",
    )


def load(cls: type[S], overrides: Mapping[str, Any] | None = None) -> S:
    """Build a settings object from the environment; errors name the variable and the fix."""
    try:
        return cls(**dict(overrides or {}))
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        problems = []
        for error in exc.errors():
            field_name = ".".join(str(part) for part in error["loc"])
            problems.append(f"{prefix}{field_name.upper()}: {error['msg']}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None


def env_names(cls: type[BaseSettings]) -> list[str]:
    """Every environment variable a settings class reads."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    return [f"{prefix}{name}".upper() for name in cls.model_fields]


def unknown_variables(
    classes: Iterable[type[BaseSettings]], environ: Mapping[str, str] | None = None
) -> list[str]:
    """`TRIGGERLINE_*` variables no settings class reads: usually a typo worth a warning."""
    known = {name for cls in classes for name in env_names(cls)} | OTHER_VARIABLES
    environ = os.environ if environ is None else environ
    return sorted(
        name for name in environ if name.upper().startswith(ENV_ROOT) and name.upper() not in known
    )


def reference_markdown(classes: Iterable[type[BaseSettings]]) -> str:
    """The settings reference, one table per class; `docs/configuration.md` embeds it."""
    lines: list[str] = []
    for cls in classes:
        lines.append(f"### {cls.__name__}")
        if cls.__doc__:
            lines.append("")
            lines.append(cls.__doc__.strip().splitlines()[0])
        lines.append("")
        lines.append("| variable | default | description |")
        lines.append("|---|---|---|")
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, info in cls.model_fields.items():
            default = info.get_default(call_default_factory=True)
            if isinstance(default, SecretStr):
                shown = "(secret)" if default.get_secret_value() else "(empty)"
            elif isinstance(default, Path):
                shown = _repo_relative(default)
            elif isinstance(default, timedelta):
                shown = f"{default.total_seconds():g}s"
            elif isinstance(default, tuple) and all(isinstance(d, timedelta) for d in default):
                shown = ",".join(f"{d.total_seconds():g}s" for d in default)  # as it is set
            else:
                shown = repr(default) if default not in (None, "") else "(empty)"
            if isinstance(default, SecretStr) and "sqlite" in default.get_secret_value():
                shown = "sqlite:///var/triggerline.db"
            description = (info.description or "").replace("|", "\\|")
            variable = f"{prefix}{name}".upper()
            lines.append(f"| `{variable}` | `{shown}` | {description} |")
        lines.append("")
    return "\n".join(lines)


def _repo_relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)

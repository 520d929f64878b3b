"""Settings of the auth service: its internal API, IMS, the credential and its clients."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from services.common.settings import Duration, LogSettings, load, settings_config


class AuthSettings(BaseSettings):
    """The IMS token service; secrets may also come from files (`*_FILE`), which win."""

    model_config = settings_config("auth")

    host: str = Field("127.0.0.1", description="Address the internal token API listens on.")
    port: int = Field(7791, description="Port of the token API and /healthz /readyz /metrics.")
    mode: Literal["oauth", "jwt", "none"] = Field(
        "oauth",
        description="`oauth` (server-to-server client credentials), `jwt` (service-account "
        "JWT exchange, deprecated by Adobe) or `none` (local development only).",
    )
    allow_none: bool = Field(
        False, description="Must be true for mode `none`, which serves a placeholder token."
    )
    ims_url: str = Field(
        "http://127.0.0.1:7790",
        description="IMS base URL: https://ims-na1.adobelogin.com in production, the simulator "
        "locally.",
    )
    client_id: str = Field("triggerline-local", description="IMS client id (API key).")
    client_secret: SecretStr = Field(SecretStr(""), description="IMS client secret (secret).")
    client_secret_file: Path | None = Field(
        None, description="File holding the IMS client secret (a mounted Kubernetes secret)."
    )
    scopes: str = Field(
        "openid,AdobeID,read_organizations,additional_info.projectedProductContext",
        description="OAuth scopes asked for, comma-separated, as listed on the credential.",
    )
    ims_org: str = Field(
        "C5E7154A5A1B2C3D4E5F98A4@AdobeOrg", description="IMS organisation id (`iss` of the JWT)."
    )
    technical_account_id: str = Field(
        "0123456789ABCDEF01234567@techacct.adobe.com",
        description="Technical account id (`sub` of the JWT).",
    )
    private_key: SecretStr = Field(
        SecretStr(""), description="PEM RSA private key signing JWT assertions (secret)."
    )
    private_key_file: Path | None = Field(
        None, description="File holding the PEM RSA private key (a mounted Kubernetes secret)."
    )
    metascopes: str = Field(
        "ent_analytics_bulk_ingest_sdk",
        description="Metascopes claimed in the JWT, comma-separated (names or full URLs).",
    )
    jwt_expiry: Duration = Field(
        timedelta(minutes=5), description="How far ahead each JWT assertion's `exp` is."
    )
    refresh_share: float = Field(
        0.8, gt=0, le=1, description="Share of a token's lifetime after which it is refreshed."
    )
    retry_initial: Duration = Field(
        timedelta(seconds=1), description="First back-off after a failed IMS call."
    )
    retry_max: Duration = Field(
        timedelta(seconds=60), description="Longest back-off between IMS retries."
    )
    ims_timeout: Duration = Field(
        timedelta(seconds=10), description="Timeout of one IMS call (connect and read)."
    )
    none_token_lifetime: Duration = Field(
        timedelta(hours=1), description="Lifetime of the placeholder token of mode `none`."
    )
    clients: SecretStr = Field(
        SecretStr(""),
        description="Internal clients and their credentials: `fetcher:<secret>,ops:<secret>` "
        "(secret).",
    )
    clients_file: Path | None = Field(
        None, description="File of `<name>:<secret>` lines, one client per line."
    )


@dataclass(frozen=True)
class AuthConfig:
    """Every settings part the auth service reads, loaded once in `main`."""

    auth: AuthSettings
    log: LogSettings


def load_config(overrides: Mapping[str, Any] | None = None) -> AuthConfig:
    """Read the environment once (command-line `overrides` win); errors name the variable."""
    return AuthConfig(load(AuthSettings, overrides), load(LogSettings))

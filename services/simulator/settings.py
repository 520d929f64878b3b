"""Settings of the simulator: where it listens, its log, its IMS, and the trigger generator."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

from services.common.settings import parse_duration, settings_config


class SimulatorSettings(BaseSettings):
    """The upstream stand-in: pipeline consume API, IMS token endpoints, trigger generator."""

    model_config = settings_config("simulator")

    host: str = Field("127.0.0.1", description="Address the simulator listens on.")
    port: int = Field(7790, description="Port of the pipeline, IMS and /simulator/ endpoints.")
    topic: str = Field("triggers", description="The one pipeline topic the simulator serves.")
    partitions: int = Field(15, ge=1, le=1000, description="Partitions of the pipeline topic.")
    retention_messages: int = Field(
        100_000, ge=1, description="Envelopes kept per partition; older offsets are gone."
    )
    retention_age: timedelta = Field(
        timedelta(days=3), description="Age after which envelopes are gone (e.g. 3d, 90s)."
    )
    ims_org: str = Field(
        "C5E7154A5A1B2C3D4E5F98A4@AdobeOrg", description="IMS organisation of the envelopes."
    )
    require_token: bool = Field(
        True, description="Refuse the pipeline API without a valid Bearer token (false: dev only)."
    )
    client_id: str = Field("triggerline-local", description="The one IMS client id accepted.")
    client_secret: SecretStr = Field(
        SecretStr("triggerline-local-secret"),
        description="The IMS client secret accepted (secret; a fake IMS, never a real one).",
    )
    scopes: str = Field(
        "openid,AdobeID,read_organizations,additional_info.projectedProductContext",
        description="Scopes the OAuth credential is bound to, comma-separated.",
    )
    technical_account_id: str = Field(
        "0123456789ABCDEF01234567@techacct.adobe.com",
        description="Technical account the JWT exchange expects as `sub`.",
    )
    jwt_public_key_file: Path | None = Field(
        None, description="PEM public key (or certificate) that JWT assertions must verify against."
    )
    oauth_token_lifetime: timedelta = Field(
        timedelta(seconds=86399), description="Lifetime of client-credentials tokens."
    )
    jwt_token_lifetime: timedelta = Field(
        timedelta(seconds=86399.999), description="Lifetime of JWT-exchange tokens."
    )
    generate: bool = Field(
        True, description="Run the trigger generator (false: only injected envelopes)."
    )
    triggers: int = Field(
        0, ge=0, description="Generate exactly this many envelopes then stop; 0 = unbounded."
    )
    rate: float = Field(10.0, ge=0, description="Envelopes generated per second; 0 = no limit.")
    burst: int = Field(
        0, ge=0, description="Generate this many at once, then pause to keep the rate; 0 = steady."
    )
    seed: int = Field(42, description="Seed of the trigger generator: same seed, same triggers.")
    visitors: int = Field(1000, ge=1, description="Size of the visitor population.")
    profiles: int = Field(
        1000, ge=0, description="Visitors below this index have a profile (as `db seed` makes)."
    )
    unprofiled_share: float = Field(
        0.0, ge=0, le=1, description="Share of triggers from visitors with no profile."
    )
    cart_weight: float = Field(0.85, ge=0, description="Relative weight of cart abandonment.")
    browse_weight: float = Field(0.05, ge=0, description="Relative weight of browse abandonment.")
    search_weight: float = Field(0.05, ge=0, description="Relative weight of search abandonment.")
    purchase_weight: float = Field(0.05, ge=0, description="Relative weight of purchases.")
    repeat_share: float = Field(
        0.0, ge=0, le=1, description="Share of envelopes that repeat an earlier messageId."
    )
    malformed_share: float = Field(
        0.0, ge=0, le=1, description="Share of envelopes that are malformed on purpose."
    )
    unknown_share: float = Field(
        0.0, ge=0, le=1, description="Share of envelopes with a trigger id no routing covers."
    )
    stray_space_share: float = Field(
        0.0, ge=0, le=1, description="Share of envelopes spelling the shopper eVar ' eVar01'."
    )
    keepalive: timedelta = Field(
        timedelta(seconds=15),
        description="Silence after which a stream sends a blank keep-alive line.",
    )

    @field_validator(
        "retention_age", "oauth_token_lifetime", "jwt_token_lifetime", "keepalive", mode="before"
    )
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)  # type: ignore[arg-type]

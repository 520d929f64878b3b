"""Settings of the simulator: where it listens, its log, its IMS, and the trigger generator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from services.common.settings import Duration, LogSettings, load, settings_config


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
    retention_age: Duration = Field(
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
    oauth_token_lifetime: Duration = Field(
        timedelta(seconds=86399), description="Lifetime of client-credentials tokens."
    )
    jwt_token_lifetime: Duration = Field(
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
    distinct_visitors: bool = Field(
        False,
        description="Take visitors in turn rather than at random, so up to `visitors` triggers "
        "each come from a shopper of their own (benchmarks count emails by recipient).",
    )
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
    # Adobe's variability (services/simulator/variability.py). The defaults are a realistic mix,
    # so `make run` and the end-to-end tests meet it with no flag: half the triggers carry no mcId
    # that finds the shopper (30% a browser never linked, 10% Adobe's all-zero placeholder, 5%
    # none, 5% empty), 10-15% lack each optional dimension, a few % are huge, non-ASCII or
    # stray-spaced. Setting every share to 0 gives the tidy stream.
    no_mcid_share: float = Field(
        0.05, ge=0, le=1, description="Share of triggers without the mcId key (realistic: 0.05)."
    )
    zero_mcid_share: float = Field(
        0.10,
        ge=0,
        le=1,
        description="Share of triggers whose mcId is 38 zeros, the placeholder in Adobe's own "
        "sample (realistic: 0.10).",
    )
    empty_mcid_share: float = Field(
        0.05, ge=0, le=1, description='Share of triggers whose mcId is "" (realistic: 0.05).'
    )
    declared_only_share: float = Field(
        0.30,
        ge=0,
        le=1,
        description="Share of triggers whose mcId is a browser no profile is linked to, so only "
        "the declared id in eVar01 finds the shopper (realistic: 0.30, the usual case). The four "
        "mcId shares exclude one another and add up to at most 1.",
    )
    missing_page_url_share: float = Field(
        0.15,
        ge=0,
        le=1,
        description="Share of triggers without the pageURL dimension (realistic: 0.15).",
    )
    missing_products_share: float = Field(
        0.15,
        ge=0,
        le=1,
        description="Share of triggers without eVar5 (product names) or the products object "
        "(realistic: 0.15).",
    )
    missing_search_terms_share: float = Field(
        0.15,
        ge=0,
        le=1,
        description="Share of search abandonments without eVar7, the search terms "
        "(realistic: 0.15).",
    )
    extra_dimensions_share: float = Field(
        0.10,
        ge=0,
        le=1,
        description="Share of triggers with unknown dimensions of odd types (eVar42, prop9, "
        "list3...; realistic: 0.10).",
    )
    stray_space_share: float = Field(
        0.03,
        ge=0,
        le=1,
        description="Share of triggers spelling the shopper eVar ' eVar01' as key, name or both "
        "(realistic: 0.03).",
    )
    huge_arrays_share: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Share of triggers whose per-hit arrays hold 2,000-4,000 entries with "
        "repeats and empty strings, under 500 kB an envelope (realistic: 0.02).",
    )
    non_ascii_share: float = Field(
        0.03,
        ge=0,
        le=1,
        description="Share of triggers with non-ASCII product names, search terms and page URL: "
        "RTL, emoji, combining marks (realistic: 0.03).",
    )
    keepalive: Duration = Field(
        timedelta(seconds=15),
        description="Silence after which a stream sends a blank keep-alive line.",
    )

    @model_validator(mode="after")
    def _identity_forms_fit(self) -> SimulatorSettings:
        total = (
            self.no_mcid_share
            + self.zero_mcid_share
            + self.empty_mcid_share
            + self.declared_only_share
        )
        if total > 1:
            raise ValueError(
                "NO_MCID_SHARE + ZERO_MCID_SHARE + EMPTY_MCID_SHARE + DECLARED_ONLY_SHARE add up "
                f"to {total:.3f}; they exclude one another, so lower them to a sum of at most 1"
            )
        return self


@dataclass(frozen=True)
class SimulatorConfig:
    """Every settings part the simulator reads, loaded once in `main`."""

    simulator: SimulatorSettings
    log: LogSettings


def load_config(overrides: Mapping[str, Any] | None = None) -> SimulatorConfig:
    """Read the environment once (command-line `overrides` win); errors name the variable."""
    return SimulatorConfig(load(SimulatorSettings, overrides), load(LogSettings))

"""Fetcher settings: Adobe's `<pipelined>` attributes under Python names, plus Kafka-side ones."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from services.common.settings import (
    KafkaSettings,
    LogSettings,
    PipelineConfigSettings,
    load,
    settings_config,
)


class FetcherSettings(BaseSettings):
    """The pipelined equivalent: where upstream is, how often the pointer is flushed."""

    model_config = settings_config("fetcher")

    pipeline_endpoint: str = Field(
        "http://127.0.0.1:7790",
        description="Pipeline base URL (Adobe's forcedPipelineEndpoint).",
    )
    topics: str = Field(
        "triggers", description="Upstream topics to stream, comma-separated (triggers, aliases)."
    )
    consumer: str = Field(
        "",
        description="Upstream consumer group; unique per environment. Empty: the routing "
        "file's topics[].consumer.",
    )
    reset: str = Field(
        "latest", pattern="^(earliest|latest)$", description="Where to start with no pointer."
    )
    upstream_partitions: int = Field(
        15, ge=1, description="Upstream partitions per topic (assign must cover them all)."
    )
    replica_index: int = Field(0, ge=0, description="This replica's index among the fetchers.")
    replica_count: int = Field(
        1, ge=1, description="How many fetcher replicas split the partitions."
    )
    processing_threads: int = Field(
        4,
        ge=1,
        description="Workers per replica, each streaming its own partitions (processingThreads).",
    )
    pointer_flush_message_count: int = Field(
        1000,
        ge=1,
        description="Commit messages and pointer after this many (pointerFlushMessageCount).",
    )
    pointer_flush_period_sec: float = Field(
        5.0,
        gt=0,
        le=50,
        description="...or at least this often, in seconds (pointerFlushPeriodSec); at most 50, "
        "inside the producer's 60 s transaction timeout.",
    )
    linger_ms: int = Field(
        50, ge=0, description="...or once upstream has been quiet this long, in milliseconds."
    )
    commit_interval_ms: int = Field(
        100,
        ge=0,
        description="...and while envelopes flow, at least this often, in milliseconds, whatever "
        "the two pipelined settings say: a record is visible only once its transaction commits "
        "(Kafka Streams' exactly-once default is 100 ms). 0: only the flush period, as pipelined.",
    )
    sync_interval_ms: int = Field(
        10000, ge=0, description="Ask upstream for a SYNC ping this often (0: none)."
    )
    read_timeout_sec: float = Field(
        30.0, gt=0, description="Reconnect after this long without a byte from upstream."
    )
    max_line_bytes: int = Field(
        1_000_000,
        ge=1024,
        description="Longest upstream line kept; a longer one is dead-lettered truncated, with "
        "its size and SHA-256, and never buffered whole (upstream's own limit is 1 MB).",
    )
    max_nesting_depth: int = Field(
        64, ge=8, le=200, description="Deepest JSON nesting accepted in an envelope."
    )
    max_buffered_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024 * 1024,
        description="Bytes read from upstream and not yet written, per worker, before reading "
        "pauses (bounds memory whatever the envelope sizes).",
    )
    retry_period_sec: float = Field(
        30.0,
        gt=0,
        description="Wait between retries of an envelope whose processing failed (retryPeriodSec).",
    )
    retry_validity_sec: float = Field(
        300.0,
        gt=0,
        description="Dead-letter an envelope still failing after this long, counted in "
        "trigger-discarded (retryValiditySec; Adobe discards it).",
    )
    max_retrying: int = Field(
        1000, ge=1, description="Envelopes awaiting a retry per worker; past it, dead-lettered."
    )
    stall_after_sec: float = Field(
        60.0,
        gt=0,
        description="Readiness fails when a worker made no progress this long while upstream "
        "answers (a refused token, a wedged loop), or while it is down.",
    )
    restart_backoff_cap_sec: float = Field(
        30.0, gt=0, description="Longest wait before a failed worker is restarted."
    )
    discover_pipeline_endpoint: str = Field(
        "",
        description="Endpoint discovery service (discoverPipelineEndpoint); used only when "
        "TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT is empty.",
    )
    server_conf: str = Field(
        "",
        description="Path of a Campaign serverConf.xml whose <pipelined> attributes are read "
        "(environment variables win); empty: none.",
    )
    monitor_server_port: int = Field(
        7781,
        ge=0,
        le=65535,
        description="Status, health and metrics port; 0: off (monitorServerPort).",
    )
    monitor_server_host: str = Field("127.0.0.1", description="Address the status server binds.")
    dump_state_period_sec: float = Field(
        0,
        ge=0,
        description="Write the status JSON to a file this often; 0: off (dumpStatePeriodSec).",
    )
    dump_state_path: str = Field("var/pipelined.json", description="Where the status dump goes.")
    auth_url: str = Field("http://127.0.0.1:7791", description="The auth service's base URL.")
    auth_client: str = Field("fetcher", description="This service's client name at auth.")
    auth_secret: SecretStr = Field(
        SecretStr(""), description="This service's credential at auth (secret); required."
    )
    transactional_id_prefix: str = Field(
        "triggerline-fetcher",
        description="Prefix of the Kafka transactional ids; stable per worker so a restarted "
        "worker fences its zombie.",
    )

    def topic_list(self) -> list[str]:
        return [topic.strip() for topic in self.topics.split(",") if topic.strip()]


@dataclass(frozen=True)
class FetcherConfig:
    """Every settings part the fetcher reads, loaded once in `main`.

    `fetcher` is as the environment gives it: `main` applies TRIGGERLINE_FETCHER_SERVER_CONF
    once logging is set up, so the notices of that file are logged.
    """

    fetcher: FetcherSettings
    kafka: KafkaSettings
    pipeline: PipelineConfigSettings
    log: LogSettings


def load_config() -> FetcherConfig:
    """Read the environment once; errors name the variable."""
    return FetcherConfig(
        fetcher=load(FetcherSettings),
        kafka=load(KafkaSettings),
        pipeline=load(PipelineConfigSettings),
        log=load(LogSettings),
    )

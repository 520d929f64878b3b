"""Processor settings: the `TRIGGERLINE_PROCESSOR_*` part, plus the shared parts it uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings

from services.common.settings import (
    REPO_ROOT,
    DatabaseSettings,
    Duration,
    KafkaSettings,
    LogSettings,
    PipelineConfigSettings,
    load,
    settings_config,
)
from services.common.topics import topics


def _declared_repartition_topic() -> str:
    """The repartition topic as declared, under this environment's topic prefix."""
    return topics().processor_by_profile.name


class ProcessorSettings(BaseSettings):
    """The faust worker: identity, state store, commits, caches and retries."""

    model_config = settings_config("processor")

    app_id: str = Field(
        "triggerline-processor",
        description="faust app id: the consumer group and the prefix of changelog topics.",
        min_length=1,
    )
    instance_name: str = Field(
        "",
        description="Static group membership id (KIP-345), e.g. the pod name; empty for dynamic.",
    )
    store: Literal["rocksdb", "memory"] = Field(
        "rocksdb", description="Table store: rocksdb (rocksdict) in production, memory for tests."
    )
    data_dir: Path = Field(
        REPO_ROOT / "var" / "processor",
        description="Local state directory (RocksDB tables); a PersistentVolume in Kubernetes.",
    )
    rocksdb_block_cache_mb: int = Field(
        64, description="RocksDB block cache per partition database, in MiB.", ge=1
    )
    web_host: str = Field("127.0.0.1", description="Address of /healthz, /readyz and /metrics.")
    web_port: int = Field(6066, description="Port of /healthz, /readyz and /metrics.", ge=1)
    repartition_topic: str = Field(
        default_factory=_declared_repartition_topic,
        description="Topic of resolved triggers keyed by profile id (tests use their own).",
    )
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a new consumer group starts reading triggers.raw."
    )
    commit_interval: Duration = Field(
        timedelta(seconds=1), description="Longest time between offset commits."
    )
    session_timeout: Duration = Field(
        timedelta(seconds=60),
        description="Consumer session timeout: how long a silent worker keeps its partitions; "
        "longer than a rolling restart under static membership.",
    )
    commit_every: int = Field(1000, description="Commit after this many acked events.", ge=1)
    standby_replicas: int = Field(1, description="Standby copies of each table partition.", ge=0)
    replication_factor: int = Field(
        1, description="Replication factor of the changelog topics faust creates (3 in prod).", ge=1
    )
    ensure_topics: bool = Field(
        True,
        description="Create missing input/output topics at start (off where the platform does).",
    )
    profile_cache_size: int = Field(
        100_000, description="Identities and profiles kept in the lookup cache.", ge=1
    )
    profile_cache_ttl: Duration = Field(
        timedelta(seconds=60), description="How long a cached lookup (hit or miss) is trusted."
    )
    release_interval: Duration = Field(
        timedelta(seconds=1),
        description="How often held (delayed) email requests that are due are released.",
    )
    future_skew: Duration = Field(
        timedelta(minutes=5),
        description="A trigger dated further than this ahead of the clock ends "
        "invalid:future_timestamp and never reaches dedup, cap or validity state.",
    )
    allow_http_links: bool = Field(
        False,
        description="Let link variables be http:// as well as https:// (still only to the "
        "campaign's link_hosts); for shops not yet on TLS.",
    )
    db_retry_initial: Duration = Field(
        timedelta(milliseconds=200), description="First wait before retrying a failed DB lookup."
    )
    db_retry_max: Duration = Field(
        timedelta(seconds=30), description="Longest wait between DB lookup retries."
    )


@dataclass(frozen=True)
class Settings:
    """Everything the processor reads from the environment, read once in `main`."""

    processor: ProcessorSettings
    kafka: KafkaSettings
    database: DatabaseSettings
    log: LogSettings
    pipeline: PipelineConfigSettings


SETTINGS_CLASSES = (
    ProcessorSettings,
    KafkaSettings,
    DatabaseSettings,
    LogSettings,
    PipelineConfigSettings,
)


def load_settings() -> Settings:
    return Settings(
        processor=load(ProcessorSettings),
        kafka=load(KafkaSettings),
        database=load(DatabaseSettings),
        log=load(LogSettings),
        pipeline=load(PipelineConfigSettings),
    )

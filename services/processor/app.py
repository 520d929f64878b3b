"""The processor's faust App: broker, store, commit policy, its topics and its table."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faust

from services.common.settings import KafkaSettings
from services.common.topics import topics
from services.processor.outputs import Outputs
from services.processor.settings import ProcessorSettings
from services.processor.transport import ProcessorApp

# Producer batching. Every trigger leads to several sends (repartition, outcome or request,
# changelog); with no linger aiokafka sends tiny batches and spends its time building produce
# requests. A few milliseconds of linger and larger batches cut that to a handful of requests
# per fetch, at a latency cost far below the p99 target. acks stay at faust's default, all.
PRODUCER_LINGER_S = 0.005
PRODUCER_MAX_BATCH_BYTES = 256 * 1024
# How old the consumer's topic metadata may grow. A rebalance that runs while a restarted broker
# does not list our topics yet hands every worker an empty assignment ("Ignoring missing
# topic"), and only a metadata refresh that finds them again makes the group rebalance: at
# aiokafka's default (5 minutes) the chaos test saw both workers idle that long with 8,000
# triggers waiting. Ten seconds bounds the stall; a metadata request is cheap.
METADATA_MAX_AGE_MS = 10_000

STATE_TABLE = "profile-state"
DUE_TABLE = "pending-due"


@dataclass(frozen=True)
class Wiring:
    """The App and what agents consume and write."""

    app: Any
    triggers: Any  # faust topic: triggers.raw
    outputs: Outputs
    state: Any  # faust table: profile id -> ProfileState JSON
    due: Any  # faust table: profile id -> earliest due time (epoch ms) of its held requests


def broker_options(kafka: KafkaSettings) -> dict[str, Any]:
    """faust's `broker` and `broker_credentials`, read off the librdkafka mapping every other
    client is built from (`KafkaSettings.client_config`), so the two can never disagree."""
    config = kafka.client_config()
    servers = str(config["bootstrap.servers"]).split(",")
    urls = [f"kafka://{server.strip()}" for server in servers if server.strip()]
    protocol = str(config["security.protocol"])
    if protocol == "PLAINTEXT":
        return {"broker": urls, "broker_credentials": None}
    context = None
    if protocol.endswith("SSL"):
        context = ssl.create_default_context(
            cafile=str(config.get("ssl.ca.location") or "") or None
        )
    if protocol == "SSL":
        return {"broker": urls, "broker_credentials": faust.SSLCredentials(context)}
    credentials = faust.SASLCredentials(
        username=str(config["sasl.username"]),
        password=str(config["sasl.password"]),
        mechanism=str(config["sasl.mechanism"]),
        ssl_context=context,
    )
    return {"broker": urls, "broker_credentials": credentials}


def make_app(settings: ProcessorSettings, kafka: KafkaSettings, campaigns: Sequence[str]) -> Wiring:
    """Build the App; commit and membership settings follow the stream-practices reference."""
    partitions = topics().processor_by_profile.partitions
    app = ProcessorApp(
        settings.app_id,
        **broker_options(kafka),
        store="rocksdb://" if settings.store == "rocksdb" else "memory://",
        datadir=str(settings.data_dir),
        autodiscover=False,
        # At-least-once, deliberately: faust's exactly-once mode has open correctness bugs; every
        # effect is idempotent instead (messageId dedup here, idempotency keys in the mailer).
        processing_guarantee="at_least_once",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=settings.standby_replicas,
        # Commit often: agents produce and write tables, so a long interval means long replays.
        broker_commit_every=settings.commit_every,
        broker_commit_interval=settings.commit_interval.total_seconds(),
        producer_linger=PRODUCER_LINGER_S,
        producer_max_batch_size=PRODUCER_MAX_BATCH_BYTES,
        consumer_group_instance_id=settings.instance_name or None,
        # A killed worker's partitions move after the session timeout; heartbeats stay well
        # inside it (Kafka's rule of thumb: a third at most).
        broker_session_timeout=settings.session_timeout.total_seconds(),
        broker_heartbeat_interval=min(3.0, settings.session_timeout.total_seconds() / 3),
        consumer_auto_offset_reset=settings.auto_offset_reset,
        consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        # Health, readiness and metrics only: /table/ would serve held requests (addresses,
        # names, products) and /router/ the cluster's layout to anyone reaching the port.
        web_tables_enabled=False,
        web_router_enabled=False,
    )
    triggers = app.topic(
        topics().triggers_raw.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    outputs = Outputs(app, campaigns, settings.repartition_topic)
    options: dict[str, Any] = {}
    if settings.store == "rocksdb":
        cache = settings.rocksdb_block_cache_mb * 1024 * 1024
        options = {"block_cache_size": cache, "block_cache_compressed_size": cache // 4}
    tables = {
        STATE_TABLE: "Per-profile dedup, frequency-cap and pending-send state (ProfileState).",
        DUE_TABLE: "Profiles with held (delayed) email requests -> earliest due time, epoch ms.",
    }
    state, due = (
        app.Table(
            name,
            default=None,
            schema=faust.Schema(key_serializer="json", value_serializer="json"),
            partitions=partitions,
            options=options or None,
            help=description,
        )
        for name, description in tables.items()
    )
    return Wiring(app=app, triggers=triggers, outputs=outputs, state=state, due=due)

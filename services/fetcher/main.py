"""`triggerline fetcher`: wire settings to the upstream stream, auth, Kafka and the status page."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from confluent_kafka import Producer

from services.common.authclient import TokenClient
from services.common.errors import ConfigurationError
from services.common.health import HealthServer, Probes, json_page
from services.common.kafka import ensure_topics, make_admin
from services.common.logsetup import configure_logging
from services.common.pipeline_config import load_pipeline_config
from services.common.runtime import freeze_startup_heap
from services.common.topics import topics
from services.fetcher.applier import Applier
from services.fetcher.discovery import resolve_endpoint
from services.fetcher.envelopes import EnvelopeRules
from services.fetcher.ingest import IngestWorker
from services.fetcher.pointer import load_pointers
from services.fetcher.rules.flush import FlushLimits
from services.fetcher.rules.health import not_ready_reason
from services.fetcher.rules.partitions import replica_partitions, worker_partitions
from services.fetcher.rules.retry import RetryPolicy
from services.fetcher.server_conf import apply_server_conf
from services.fetcher.settings import load_config
from services.fetcher.status import FetcherStatus
from services.fetcher.supervisor import Supervisor
from services.fetcher.transaction import make_ingest_producer
from services.fetcher.upstream import UpstreamStream

log = logging.getLogger("services.fetcher")


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="triggerline fetcher", description=__doc__).parse_args(argv)
    config = load_config()
    configure_logging("fetcher", config.log.level, config.log.format)
    settings = apply_server_conf(config.fetcher)
    kafka = config.kafka
    pipeline = load_pipeline_config(config.pipeline.config)
    group = settings.consumer or pipeline.consumer("triggers")
    if not group:
        raise ConfigurationError(
            "TRIGGERLINE_FETCHER_CONSUMER: an upstream consumer name is required and must "
            "differ per environment"
        )
    if not settings.auth_secret.get_secret_value():
        raise ConfigurationError(
            "TRIGGERLINE_FETCHER_AUTH_SECRET: the fetcher's credential at the auth service is "
            "required (one of the entries of TRIGGERLINE_AUTH_CLIENTS)"
        )
    if settings.replica_index >= settings.replica_count:
        raise ConfigurationError(
            "TRIGGERLINE_FETCHER_REPLICA_INDEX must be below TRIGGERLINE_FETCHER_REPLICA_COUNT"
        )
    ensure_topics(
        make_admin(kafka),
        [
            topics().triggers_raw,
            topics().triggers_dlq,
            topics().fetcher_pointers,
            topics().outcomes,
        ],
    )

    tokens = TokenClient(settings.auth_url, settings.auth_client, settings.auth_secret)
    endpoint = resolve_endpoint(settings, tokens.token)
    stop = threading.Event()
    probes = Probes()
    probes.not_ready("pointer", "reading the committed upstream pointer")
    routing: dict[str, Any] = {
        topic.name: {route.name: route.js_connector for route in topic.triggers}
        for topic in pipeline.topics
    }
    status = FetcherStatus(
        consumer=group,
        pipeline_host=endpoint.split("://", 1)[-1],
        flush_message_count=settings.pointer_flush_message_count,
        flush_period_ms=int(settings.pointer_flush_period_sec * 1000),
        processing_threads=settings.processing_threads,
        routing=routing,
        retry_period_ms=int(settings.retry_period_sec * 1000),
        retry_validity_ms=int(settings.retry_validity_sec * 1000),
    )
    server = None
    if settings.monitor_server_port:
        server = HealthServer(
            settings.monitor_server_host,
            settings.monitor_server_port,
            probes,
            {"/pipelined/status": lambda: json_page(True, status.snapshot())},
        ).start()

    limits = FlushLimits(
        message_count=settings.pointer_flush_message_count,
        period=timedelta(seconds=settings.pointer_flush_period_sec),
        linger=timedelta(milliseconds=settings.linger_ms),
        commit_interval=timedelta(milliseconds=settings.commit_interval_ms),
    )
    rules = EnvelopeRules(
        declared_dimensions=pipeline.identity.declared_id_dimensions,
        email_dimensions=pipeline.identity.email_dimensions,
        max_depth=settings.max_nesting_depth,
    )
    retry = RetryPolicy(settings.retry_period_sec, settings.retry_validity_sec)
    failed: list[BaseException] = []

    def producer_factory(transactional_id: str) -> Producer:
        return make_ingest_producer(kafka, transactional_id, limits.longest_open)

    def on_fatal(exc: BaseException) -> None:
        failed.append(exc)
        probes.not_ready("fetcher", f"fatal: {type(exc).__name__}: {exc}"[:300])
        stop.set()

    log.info(
        "upstream has %d partitions per topic (TRIGGERLINE_FETCHER_UPSTREAM_PARTITIONS): "
        "checked against every SYNC marker and envelope read",
        settings.upstream_partitions,
    )
    supervisors: list[Supervisor] = []
    for topic in settings.topic_list():
        owned = replica_partitions(
            settings.upstream_partitions, settings.replica_index, settings.replica_count
        )
        for index, partitions in enumerate(worker_partitions(owned, settings.processing_threads)):
            first = partitions[0]
            applier = Applier(
                name=f"{topic}-w{index}",
                topic=topic,
                partitions=partitions,
                upstream_partitions=settings.upstream_partitions,
                rules=rules,
                policy=retry,
                max_retrying=settings.max_retrying,
                status=status,
            )
            worker = IngestWorker(
                applier=applier,
                group=group,
                reset=settings.reset,
                # read by the worker once its producer has fenced the previous incarnation
                pointers=functools.partial(load_pointers, kafka, group, topic),
                upstream=UpstreamStream(
                    endpoint, settings.read_timeout_sec, settings.max_line_bytes
                ),
                tokens=tokens,
                producer_factory=producer_factory,
                # Stable per partition set, so a restart fences the previous incarnation.
                transactional_id=f"{settings.transactional_id_prefix}-{group}-{topic}-p{first}",
                limits=limits,
                status=status,
                stop=stop,
                max_buffered_bytes=settings.max_buffered_bytes,
                sync_interval_ms=settings.sync_interval_ms,
            )
            supervisors.append(
                Supervisor(
                    worker,
                    status=status,
                    stop=stop,
                    restart_cap=timedelta(seconds=settings.restart_backoff_cap_sec),
                    on_fatal=on_fatal,
                )
            )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: committing what was read and stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.debug("start-up heap frozen: %d objects", freeze_startup_heap())
    for supervisor in supervisors:
        supervisor.start()
    log.info(
        "fetcher up: %d workers, status on :%d/pipelined/status",
        len(supervisors),
        settings.monitor_server_port,
    )
    dump_path = Path(settings.dump_state_path)
    while not stop.is_set():
        probes.beat()
        if status.pointers_read():  # each worker reads it once its producer fenced the last one
            probes.ready("pointer")
        for name, view in status.health_views().items():
            reason = not_ready_reason(view, settings.stall_after_sec)
            if reason is None:
                probes.ready(f"worker {name}")
            else:
                probes.not_ready(f"worker {name}", reason)
        stop.wait(min(settings.dump_state_period_sec or 1.0, 1.0))
        if settings.dump_state_period_sec and _due(dump_path, settings.dump_state_period_sec):
            dump_path.parent.mkdir(parents=True, exist_ok=True)
            dump_path.write_text(json.dumps(status.snapshot(), indent=2))
    for supervisor in supervisors:
        supervisor.join(timeout=40)
    if server:
        server.stop()
    if failed:
        log.critical("fetcher stopped: %s", failed[0])
        return 2
    return 0


def _due(path: Path, period: float) -> bool:
    """Whether the state dump is older than its period (or missing)."""
    try:
        return time.time() - path.stat().st_mtime >= period
    except FileNotFoundError:
        return True

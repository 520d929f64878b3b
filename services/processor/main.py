"""`triggerline processor`: read settings once, wire adapters to the faust app, run the worker."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from faust import Worker

from services.common.db.engine import make_engine
from services.common.health import Probes
from services.common.kafka import ensure_topics, make_admin
from services.common.logsetup import configure_logging
from services.common.pipeline_config import load_pipeline_config
from services.common.runtime import freeze_startup_heap
from services.common.settings import unknown_variables
from services.common.topics import TopicSpec, topics
from services.processor.agents import Pipeline, register_agents
from services.processor.app import make_app
from services.processor.profiles import ProfileStore
from services.processor.recorder import RetryPolicy
from services.processor.rules.rulebook import InputLimits
from services.processor.settings import SETTINGS_CLASSES, load_settings
from services.processor.web import register_pages

log = logging.getLogger("services.processor")


def main(argv: Sequence[str] | None = None) -> int:
    if argv:
        print("usage: triggerline processor  (configured by TRIGGERLINE_* variables)")
        return 2
    settings = load_settings()
    configure_logging("processor", settings.log.level, settings.log.format)
    for name in unknown_variables(SETTINGS_CLASSES):
        if name.startswith(("TRIGGERLINE_PROCESSOR_", "TRIGGERLINE_KAFKA_", "TRIGGERLINE_DB_")):
            log.warning("%s is set but no processor setting reads it (typo?)", name)
    config = load_pipeline_config(settings.pipeline.config)
    campaigns = sorted(config.campaigns)
    processor = settings.processor
    if processor.ensure_topics:
        repartition = topics().processor_by_profile
        specs = [
            topics().triggers_raw,
            topics().triggers_dlq,
            topics().triggers_unmatched,
            topics().outcomes,
            TopicSpec(
                processor.repartition_topic,
                repartition.partitions,
                repartition.retention,
                description=repartition.description,
            ),
            *(topics().emails(name) for name in campaigns),
        ]
        ensure_topics(make_admin(settings.kafka), specs, processor.replication_factor)
    processor.data_dir.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    wiring = make_app(processor, settings.kafka, campaigns)
    probes = Probes()
    probes.not_ready("worker", "starting")
    store = ProfileStore(
        make_engine(settings.database), processor.profile_cache_size, processor.profile_cache_ttl
    )
    pipeline = Pipeline(
        wiring,
        config,
        store,
        RetryPolicy(processor.db_retry_initial, processor.db_retry_max),
        probes,
        limits=InputLimits(processor.future_skew, processor.allow_http_links),
    )
    register_agents(wiring, pipeline, processor.release_interval)
    register_pages(wiring.app, probes)
    log.info(
        "processor %s starting: campaigns %s, store %s, web %s:%d",
        processor.app_id,
        ", ".join(campaigns) or "(none)",
        processor.store,
        processor.web_host,
        processor.web_port,
    )
    worker = Worker(
        wiring.app,
        loglevel=settings.log.level,
        override_logging=False,  # keep the one handler configure_logging installed
        quiet=True,
    )
    log.debug("start-up heap frozen: %d objects", freeze_startup_heap())
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0

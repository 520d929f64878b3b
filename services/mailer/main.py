"""`triggerline mailer`: wires settings to the adapters and runs the loop until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

from sqlalchemy import Engine

from services.common.db.engine import make_engine, upgrade
from services.common.health import HealthServer, Probes
from services.common.kafka import ensure_topics, make_admin, make_consumer, make_producer
from services.common.logsetup import configure_logging
from services.common.message_refs import MessageRefStore
from services.common.runtime import freeze_startup_heap
from services.common.settings import unknown_variables
from services.common.token_settings import insecure_token_settings, refuse_development_settings
from services.common.topics import topics
from services.mailer import metrics
from services.mailer.campaigns import CampaignCatalog
from services.mailer.claims import ClaimStore
from services.mailer.composer import RecipientTokens
from services.mailer.delivery import Delivery
from services.mailer.loop import LoopOptions, MailerLoop
from services.mailer.publishing import Publisher
from services.mailer.rules.retry import RetryTopic
from services.mailer.settings import MailerConfig, MailerSettings, load_config
from services.mailer.smtp import SmtpOptions, SmtpPool
from services.mailer.suppressions import SuppressionStore

log = logging.getLogger(__name__)


def retry_topics(settings: MailerSettings) -> list[RetryTopic]:
    """The declared retry topics, each with its configured wait (the first N are used)."""
    declared = topics().email_retries()
    return [
        RetryTopic(spec.name, delay)
        for spec, delay in zip(declared, settings.retry_delays, strict=False)
    ]


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Mailer:
    """Everything one mailer process runs; `build` wires it, `run` turns the loop."""

    loop: MailerLoop
    pool: SmtpPool
    engine: Engine
    catalog: CampaignCatalog

    @classmethod
    def build(cls, config: MailerConfig, probes: Probes) -> Mailer:
        settings = config.mailer
        retries = retry_topics(settings)
        engine = make_engine(config.database)
        if settings.migrate_on_start:
            upgrade(engine)
        catalog = CampaignCatalog(config.pipeline.config, config.pipeline.templates_dir)
        broken = catalog.current.templates.broken
        metrics.BROKEN_TEMPLATES.set(len(broken))
        for reason in broken.values():
            log.error("broken template, its requests will be dead-lettered: %s", reason)
        ensure_topics(
            make_admin(config.kafka),
            [topics().outcomes, topics().emails_dlq, *topics().email_retries()],
        )
        pool = SmtpPool(
            SmtpOptions(
                host=settings.smtp_host,
                port=settings.smtp_port,
                timeout=settings.smtp_timeout,
                size=settings.smtp_pool_size,
                starttls=settings.smtp_starttls,
                ca_file=settings.smtp_ca_file,
                username=settings.smtp_username,
                password=settings.smtp_password,
            )
        )
        delivery = Delivery(
            catalog=catalog,
            claims=ClaimStore(engine, settings.instance_name(), settings.claim_timeout),
            suppressions=SuppressionStore(engine),
            pool=pool,
            retries=retries,
            refs=MessageRefStore(engine),
            tokens=RecipientTokens.of(config.tokens),
            message_id_domain=settings.message_id_domain,
            clock=now,
        )
        refresh_ms = int(settings.topic_refresh.total_seconds() * 1000)
        consumer = make_consumer(
            config.kafka,
            settings.group_id,
            client_id=f"triggerline-mailer-{settings.instance_name()}",
            overrides={
                "topic.metadata.refresh.interval.ms": refresh_ms,
                "session.timeout.ms": int(settings.session_timeout.total_seconds() * 1000),
                # Several minutes of SMTP back-off must not cost the group membership.
                "max.poll.interval.ms": 600_000,
            },
        )
        producer = make_producer(config.kafka, client_id="triggerline-mailer")
        loop = MailerLoop(
            consumer,
            Publisher(producer),
            delivery,
            LoopOptions(
                campaign_pattern=settings.campaign_pattern,
                retries=retries,
                batch_size=settings.batch_size,
                poll_timeout=settings.poll_timeout.total_seconds(),
            ),
            probes,
            clock=now,
        )
        return cls(loop, pool, engine, catalog)

    def run(self, stop: threading.Event) -> None:
        self.loop.subscribe()
        try:
            self.loop.run(stop)
        finally:
            self.pool.close()
            self.engine.dispose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="triggerline mailer", description=__doc__)
    parser.add_argument(
        "--check-templates",
        action="store_true",
        help="compile every campaign template, name the broken ones, and exit (1 if any)",
    )
    args = parser.parse_args(argv)
    config = load_config()
    configure_logging("mailer", config.log.level, config.log.format)
    if args.check_templates:
        catalog = CampaignCatalog(config.pipeline.config, config.pipeline.templates_dir)
        for reason in catalog.current.templates.broken.values():
            print(reason)
        return 1 if catalog.current.templates.broken else 0
    for name in unknown_variables([MailerSettings]):
        if name.startswith("TRIGGERLINE_MAILER_"):
            log.warning("%s is not a mailer setting; is it misspelt?", name)
    tokens = config.tokens
    for problem in refuse_development_settings(insecure_token_settings(tokens), tokens.development):
        log.warning("development setting: %s", problem)
    probes = Probes()
    probes.not_ready("kafka", "starting")
    health = HealthServer(config.mailer.health_host, config.mailer.health_port, probes).start()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing the batch in flight, then leaving", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        mailer = Mailer.build(config, probes)
        log.info(
            "mailer started: campaigns %s, SMTP %s:%d, %d connections",
            ", ".join(sorted(mailer.catalog.current.campaigns)),
            config.mailer.smtp_host,
            config.mailer.smtp_port,
            config.mailer.smtp_pool_size,
        )
        log.debug("start-up heap frozen: %d objects", freeze_startup_heap())
        mailer.run(stop)
    finally:
        health.stop()
    return 0

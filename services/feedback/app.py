"""The running service: the public HTTP server, the SMTP listener and the maintenance loop,
on one asyncio event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy import Engine

from services.common.db.engine import make_engine, upgrade
from services.common.errors import TransientFailure
from services.common.health import Probes
from services.common.kafka import ensure_topics, make_admin
from services.common.message_refs import MessageRefStore
from services.common.topics import topics
from services.feedback.dead_letters import DeadLetterStore
from services.feedback.handling import Feedback, FeedbackOptions
from services.feedback.listener import ReportHandler, smtp_factory
from services.feedback.publishing import OutcomePublisher, outcome_producer
from services.feedback.recipients import Recipients
from services.feedback.settings import FeedbackConfig
from services.feedback.starttls import starttls_context
from services.feedback.store import FeedbackStore
from services.feedback.web import build_web_app

log = logging.getLogger(__name__)

# An outcome Kafka has not acknowledged this long after its commit is sent again. Far above a
# normal acknowledgement (milliseconds), so the fast path and the outbox rarely both send one.
REPUBLISH_AFTER = timedelta(seconds=60)
PRUNE_EVERY = timedelta(minutes=10)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Maintenance:
    """The periodic chores: mark acknowledged outcomes, resend the others, prune old rows."""

    store: FeedbackStore
    refs: MessageRefStore
    dead_letters: DeadLetterStore
    publisher: OutcomePublisher
    event_retention: timedelta
    dead_letter_retention: timedelta
    last_prune: datetime | None = field(default=None)

    def run_once(self, now: datetime) -> None:
        self.store.mark_published(self.publisher.acknowledged(), now)
        for event, outcome in self.store.unpublished(before=now - REPUBLISH_AFTER):
            self.publisher.publish(event, outcome)
        if self.last_prune is None or now - self.last_prune >= PRUNE_EVERY:
            refs = self.refs.prune(now)
            events = self.store.prune(now - self.event_retention)
            letters = self.dead_letters.prune(now - self.dead_letter_retention)
            if refs or events or letters:
                log.info("pruned %d refs, %d events, %d dead letters", refs, events, letters)
            self.last_prune = now


@dataclass
class FeedbackService:
    """Everything one feedback process runs; `build` wires it, `serve` runs it until `stop`."""

    config: FeedbackConfig
    probes: Probes
    engine: Engine
    feedback: Feedback
    publisher: OutcomePublisher
    maintenance: Maintenance
    clock: Callable[[], datetime] = utcnow
    starttls: ssl.SSLContext | None = None

    @classmethod
    def build(cls, config: FeedbackConfig, probes: Probes) -> FeedbackService:
        settings = config.feedback
        # first: a certificate that cannot be read stops start-up before anything connects
        starttls = starttls_context(
            settings.smtp_tls_cert, settings.smtp_tls_key, settings.smtp_tls_files_optional
        )
        engine = make_engine(config.database)
        if settings.migrate_on_start:
            upgrade(engine)
        ensure_topics(make_admin(config.kafka), [topics().outcomes])
        store = FeedbackStore(engine)
        refs = MessageRefStore(engine)
        dead_letters = DeadLetterStore(engine)
        publisher = OutcomePublisher(outcome_producer(config.kafka))
        legacy = settings.legacy_key.get_secret_value().encode("utf-8") or None
        feedback = Feedback(
            Recipients(refs, store, config.tokens.key_ring(), legacy),
            store,
            dead_letters,
            publisher,
            FeedbackOptions(
                config.tokens.bounce_domain,
                settings.soft_bounce_limit,
                settings.soft_bounce_window,
            ),
        )
        maintenance = Maintenance(
            store,
            refs,
            dead_letters,
            publisher,
            max(settings.event_retention, settings.soft_bounce_window),
            settings.dead_letter_retention,
        )
        return cls(config, probes, engine, feedback, publisher, maintenance, starttls=starttls)

    async def serve(self, stop: asyncio.Event) -> None:
        settings = self.config.feedback
        self.probes.not_ready("listeners", "starting")
        runner = web.AppRunner(
            build_web_app(self.feedback, self.clock, self.probes), access_log=None
        )
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        handler = ReportHandler(
            self.feedback,
            self.config.tokens.key_ring(),
            self.config.tokens.bounce_domain,
            settings.complaint_mailbox,
            self.clock,
            self.probes,
        )
        loop = asyncio.get_running_loop()
        smtp = await loop.create_server(
            smtp_factory(handler, settings.smtp_hostname, settings.max_message_size, self.starttls),
            settings.smtp_host,
            settings.smtp_port,
        )
        self.probes.ready("listeners")
        log.info(
            "feedback on http://%s:%d/unsubscribe, SMTP %s:%d for %s",
            settings.host,
            settings.port,
            settings.smtp_host,
            settings.smtp_port,
            self.config.tokens.bounce_domain,
        )
        chores = asyncio.create_task(self._maintain(stop), name="feedback-maintenance")
        try:
            await stop.wait()
        finally:
            smtp.close()
            await smtp.wait_closed()
            await runner.cleanup()
            chores.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await chores
            left = await asyncio.to_thread(self.publisher.flush, 10.0)
            if left:
                log.warning("%d outcomes unacknowledged at shutdown; sent again on restart", left)
            with contextlib.suppress(TransientFailure):
                await asyncio.to_thread(self.maintenance.run_once, self.clock())
            self.engine.dispose()

    async def _maintain(self, stop: asyncio.Event) -> None:
        """Beat the liveness probe every second; run the chores every maintenance interval."""
        interval = self.config.feedback.maintenance_interval.total_seconds()
        loop = asyncio.get_running_loop()
        next_run = loop.time()
        while not stop.is_set():
            self.probes.beat()
            if loop.time() >= next_run:
                next_run = loop.time() + interval
                try:
                    await asyncio.to_thread(self.maintenance.run_once, self.clock())
                    self.probes.ready("database")
                except TransientFailure as exc:
                    log.warning("maintenance deferred, database unavailable: %s", exc)
                    self.probes.not_ready("database", str(exc)[:200])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(1.0, interval))

"""A clean start for the local stack: drop an earlier run's topics, groups and files, then
declare the run's topics, migrate the database and seed demo profiles."""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import time
from collections.abc import Iterable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from services.common.db.engine import make_engine, upgrade
from services.common.kafka import ensure_topics, make_admin
from services.common.pipeline_config import load_pipeline_config
from services.common.settings import DatabaseSettings, KafkaSettings, PipelineConfigSettings, load
from services.common.topics import topics_for
from services.mailer.settings import MailerSettings
from services.ops.database import seed_demo_profiles
from services.ops.stack_environment import StackOptions
from services.ops.topics import declared_topics

log = logging.getLogger(__name__)


def topics_to_reset(
    existing: Iterable[str], declared: Iterable[str], app_id: str, campaign_pattern: str
) -> list[str]:
    """The existing topics a fresh run drops: those it declares, its processor's own (faust's
    changelogs and repartition topic), and every campaign topic its mailer would consume by
    pattern, so a topic left by an earlier configuration or by the tests is not mailed."""
    wanted = set(declared)
    campaign_topics = re.compile(campaign_pattern)
    return sorted(
        name
        for name in existing
        if name in wanted or name.startswith(app_id) or campaign_topics.match(name)
    )


def reset_local_state(kafka: KafkaSettings, options: StackOptions, campaigns: list[str]) -> None:
    """Drop the stack's topics, groups and files so the run starts from nothing."""
    admin = make_admin(kafka)
    doomed = topics_to_reset(
        admin.list_topics(timeout=30).topics,
        [spec.name for spec in declared_topics(campaigns)],
        options.processor_app_id,
        topics_for(options.topics_prefix).emails_pattern(),
    )
    if doomed:
        for future in admin.delete_topics(doomed, operation_timeout=30).values():
            try:
                future.result()
            except KafkaException as exc:
                log.warning("could not delete a topic: %s", exc)
        _wait_deleted(admin, set(doomed))
    groups = [options.processor_app_id, load(MailerSettings).group_id]
    for future in admin.delete_consumer_groups(groups, request_timeout=30).values():
        with contextlib.suppress(KafkaException):  # a group that never existed
            future.result()
    for path in ("processor", "mail", "triggerline.db", "triggerline.db-wal", "triggerline.db-shm"):
        target = options.var / path
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _wait_deleted(admin: AdminClient, names: set[str], deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if not names & set(admin.list_topics(timeout=10).topics):
            return
        time.sleep(0.5)
    raise RuntimeError(f"topics still being deleted after {deadline:.0f}s: {sorted(names)}")


def prepare(options: StackOptions, env: dict[str, str], kafka: KafkaSettings) -> None:
    """Topics (in the run's namespace), schema and demo profiles, before any service starts."""
    pipeline = load_pipeline_config(load(PipelineConfigSettings).config)
    topics = topics_for(options.topics_prefix)
    specs = [*topics.fixed(), *(topics.emails(name) for name in sorted(pipeline.campaigns))]
    ensure_topics(make_admin(kafka), specs)
    engine = make_engine(load(DatabaseSettings, {"url": SecretStr(env["TRIGGERLINE_DB_URL"])}))
    upgrade(engine)
    seed_demo_profiles(engine, options.profiles)
    engine.dispose()

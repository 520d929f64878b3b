"""`triggerline outcomes`: what became of the triggers that arrived since a point in time.

    triggerline outcomes --since 24h                       # counts, in = out per hour, oldest open
    triggerline outcomes --since 2h --campaign cart_abandonment --json
    triggerline outcomes --since 24h --serve 7783          # the same figures on /metrics

It reads `triggers.raw` and `outcomes` from --since up to their ends, matches them by message id
and counts triggers by their settled outcome (an email sent after a re-drive counts as sent, not
also as unmatched). With --serve it keeps reading and serves the figures of a sliding window as
Prometheus gauges for dashboards and alerts; memory grows with the triggers in the window
(about 200 bytes each).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from types import FrameType

from confluent_kafka import Consumer, Message
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.common.headers import MESSAGE_ID
from services.common.health import HealthServer, Probes
from services.common.kafka import header, make_consumer
from services.common.models import Outcome
from services.common.pipeline_config import load_pipeline_config
from services.common.serde import envelope_serde, outcome_serde
from services.common.settings import KafkaSettings, PipelineConfigSettings, load
from services.common.topics import Topics, topics
from services.ops.groups import status_group
from services.ops.redrive import CampaignOf
from services.ops.rules.accounting import Ledger, Report, render_report, report
from services.ops.rules.moments import parse_moment
from services.ops.topic_window import WindowReader, offsets_at, partitions_of

log = logging.getLogger(__name__)


def _reader(settings: KafkaSettings) -> Consumer:
    # assigned, never subscribed: nothing is committed, no group is joined
    return make_consumer(
        settings,
        status_group(),
        "triggerline-outcomes",
        overrides={"enable.auto.commit": False, "enable.partition.eof": True},
    )


def _starts(consumer: Consumer, topic: str, since: datetime) -> dict[int, int]:
    return offsets_at(consumer, topic, partitions_of(consumer, topic), since)


def fold(
    ledger: Ledger, messages: Iterable[Message], topics: Topics, campaign_of: CampaignOf | None
) -> None:
    """Add records of `triggers.raw` and `outcomes` to the ledger."""
    serde = outcome_serde()
    for message in messages:
        topic = message.topic() or ""
        if topic == topics.outcomes.name:
            try:
                ledger.outcome(Outcome.from_record(serde.decode(message.value())))
            except Exception:  # not an outcome we can read: nothing to count
                log.debug("unreadable outcome at %s:%s", message.partition(), message.offset())
            continue
        where = f"{topic}:{message.partition()}:{message.offset()}"
        headers = message.headers() or []
        message_id = header(
            list(headers.items()) if isinstance(headers, dict) else headers, MESSAGE_ID
        )
        _, stamp = message.timestamp()
        campaign = None
        if campaign_of is not None:
            try:
                envelope = envelope_serde().decode(message.value())
                campaign = campaign_of(str(envelope["pipelineMessage"]["trigger"]["triggerId"]))
            except Exception:  # undecodable: its outcome (invalid) names no campaign either
                campaign = None
        ledger.arrive(
            message_id or where, datetime.fromtimestamp(stamp / 1000, UTC), where, campaign
        )


def read_window(
    settings: KafkaSettings,
    since: datetime,
    topics: Topics,
    campaign_of: CampaignOf | None = None,
) -> Ledger:
    """Triggers and outcomes from `since` to where both topics end now."""
    ledger = Ledger()
    consumer = _reader(settings)
    try:
        for topic in (topics.triggers_raw.name, topics.outcomes.name):
            # outcomes after triggers: their end is taken later, so it covers the triggers read
            window = WindowReader(consumer)
            window.add(topic, _starts(consumer, topic, since))
            fold(ledger, window.read(), topics, campaign_of)
    finally:
        consumer.close()
    return ledger


class LedgerCollector(Collector):
    """The report of the last `span` as Prometheus gauges, computed at each scrape."""

    def __init__(self, ledger: Ledger, lock: threading.Lock, span: timedelta, campaign: str | None):
        self._ledger, self._lock, self._span, self._campaign = ledger, lock, span, campaign

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC)
        with self._lock:
            result = report(self._ledger, now - self._span, now, self._campaign)
        yield from gauges(result, self._span)


def gauges(result: Report, span: timedelta) -> Iterator[GaugeMetricFamily]:
    scope = {"campaign": result.campaign or ""}
    keys, values = list(scope), list(scope.values())

    def gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
        family = GaugeMetricFamily(f"triggerline_outcomes_{name}", text, labels=keys)
        family.add_metric(values, value)
        return family

    yield gauge("window_seconds", "Span the other figures cover.", span.total_seconds())
    yield gauge("triggers_in", "Triggers that arrived in the window.", result.triggers_in)
    yield gauge("triggers_out", "Of those, triggers with an outcome.", result.triggers_out)
    yield gauge(
        "triggers_open", "Triggers without an outcome.", result.triggers_in - result.triggers_out
    )
    age = result.oldest_open.age.total_seconds() if result.oldest_open else 0.0
    yield gauge("oldest_open_age_seconds", "Age of the oldest trigger without an outcome.", age)
    settled = GaugeMetricFamily(
        "triggerline_outcomes_settled_triggers",
        "Triggers of the window by settled outcome.",
        labels=[*keys, "status", "reason"],
    )
    for (status, reason), count in sorted(result.counts.items(), key=lambda kv: kv[0][0]):
        settled.add_metric([*values, status, reason or ""], count)
    yield settled
    for side, text in (("in", "arrived"), ("out", "arrived and have an outcome")):
        family = GaugeMetricFamily(
            f"triggerline_outcomes_hourly_{side}",
            f"Triggers that {text}, per arrival hour (0: the current hour).",
            labels=[*keys, "hours_ago"],
        )
        for ago, hour in enumerate(reversed(result.hours)):
            family.add_metric(
                [*values, str(ago)], hour.triggers_in if side == "in" else hour.triggers_out
            )
        yield family


def serve(
    settings: KafkaSettings,
    span: timedelta,
    port: int,
    host: str,
    campaign: str | None,
    campaign_of: CampaignOf | None,
    stop: threading.Event,
) -> None:
    """Read both topics from `span` ago for ever, folding new records in; serve /metrics."""
    ledger, lock = Ledger(), threading.Lock()
    registry = CollectorRegistry()
    registry.register(LedgerCollector(ledger, lock, span, campaign))
    probes = Probes()
    server = HealthServer(
        host,
        port,
        probes,
        {"/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry))},
    ).start()
    consumer = _reader(settings)
    since = datetime.now(UTC) - span
    try:
        window = WindowReader(consumer)
        for topic in (topics().triggers_raw.name, topics().outcomes.name):
            window.add(topic, _starts(consumer, topic, since))
        consumer.assign(window.assignment())
        last_trim = time.monotonic()
        while not stop.is_set():
            batch = [m for m in consumer.consume(1000, 0.5) if m.error() is None]
            with lock:
                fold(ledger, batch, topics(), campaign_of)
                if time.monotonic() - last_trim > 60:
                    ledger.forget_before(datetime.now(UTC) - span)
                    last_trim = time.monotonic()
            probes.beat()
    finally:
        consumer.close()
        server.stop()


def _campaign_router(campaign: str | None) -> CampaignOf | None:
    if campaign is None:
        return None
    from services.processor.rules.routing import build_routes, route_trigger

    routes = build_routes(load_pipeline_config(load(PipelineConfigSettings).config))
    return lambda trigger_id: route_trigger(trigger_id, routes)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="triggerline outcomes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--since",
        default="24h",
        help="triggers that arrived since: a duration ago (24h, 90m) or an ISO time (default 24h)",
    )
    parser.add_argument("--campaign", help="only triggers of this campaign (e.g. cart_abandonment)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument(
        "--serve",
        type=int,
        metavar="PORT",
        help="keep reading and serve the report of the last --since on /metrics (Prometheus)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of --serve (default loopback)")
    args = parser.parse_args(argv)
    settings = load(KafkaSettings)
    now = datetime.now(UTC)
    since = parse_moment(args.since, now, "--since")
    campaign_of = _campaign_router(args.campaign)
    if args.serve is not None:
        logging.basicConfig(level=logging.INFO)
        stop = threading.Event()

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        serve(settings, now - since, args.serve, args.host, args.campaign, campaign_of, stop)
        return 0
    ledger = read_window(settings, since, topics(), campaign_of)
    result = report(ledger, since, datetime.now(UTC), args.campaign)
    print(json.dumps(result.to_json(), indent=2) if args.json else render_report(result))
    return 0

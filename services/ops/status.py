"""`triggerline status`: consumer lag per group, dead letters waiting, the fetcher's indicators.

Lag is what to watch: a group whose lag grows is not keeping up, one whose committed offsets
stop moving while lag stays is stuck. `--serve PORT` keeps measuring and exports the same numbers
as Prometheus gauges (the alerts in deploy/k8s/base/monitoring.yaml read them). Groups default
to the ones this environment configures, topics carry TRIGGERLINE_TOPICS_PREFIX.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from dataclasses import dataclass
from types import FrameType

import requests
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import Gauge

from services.common.health import HealthServer, Probes
from services.common.kafka import high_watermark, make_admin, make_reader
from services.common.settings import KafkaSettings, load
from services.common.topics import topics
from services.ops.groups import service_groups, status_group

LAG = Gauge(
    "triggerline_consumer_lag",
    "Records not yet consumed: partition ends minus committed offsets, by group and topic.",
    ["group", "topic"],
)
WAITING = Gauge(
    "triggerline_dead_letters_waiting",
    "Records a dead-letter topic holds (retention permitting), by topic.",
    ["topic"],
)


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


def group_lag(admin: AdminClient, probe: Consumer, group: str) -> list[GroupLag]:
    """Per topic: the group's committed offsets against the ends of the partitions it reads."""
    request = [ConsumerGroupTopicPartitions(group)]
    result = admin.list_consumer_group_offsets(request, request_timeout=30)[group].result()
    per_topic: dict[str, tuple[int, int]] = {}
    for tp in result.topic_partitions or []:
        if tp.offset < 0:
            continue
        end = high_watermark(probe, tp.topic, tp.partition)
        committed, total_end = per_topic.get(tp.topic, (0, 0))
        per_topic[tp.topic] = (committed + tp.offset, total_end + end)
    return [GroupLag(group, topic, c, e) for topic, (c, e) in sorted(per_topic.items())]


def waiting(probe: Consumer, topic: str) -> int:
    """Records a dead-letter topic holds (retention permitting)."""
    metadata = probe.list_topics(topic, timeout=30).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return 0
    total = 0
    for partition in metadata.partitions:
        low, high = probe.get_watermark_offsets(TopicPartition(topic, partition), 30)
        total += high - low
    return total


FETCHER_KEYS = (
    "trigger-received",
    "trigger-processed",
    "current-messages",
    "trigger-failures",
    "current-retries",
    "trigger-discarded",
    "worker-restarts",
)


def report(
    lags: list[GroupLag], dead: dict[str, int], fetcher: dict[str, object] | None
) -> dict[str, object]:
    """The figures as one document: what `--json` prints and `render` lays out."""
    return {
        "lag": [
            {
                "group": g.group,
                "topic": g.topic,
                "committed": g.committed,
                "end": g.end,
                "lag": g.lag,
            }
            for g in lags
        ],
        "dead_letters_waiting": dead,
        "fetcher": fetcher,
    }


def render(lags: list[GroupLag], dead: dict[str, int], fetcher: dict[str, object] | None) -> str:
    lines = [f"{'group':32} {'topic':45} {'lag':>10}"]
    lines += [f"{g.group:32} {g.topic:45} {g.lag:>10}" for g in lags] or ["(no committed offsets)"]
    lines.append("")
    lines += [f"{topic:45} {count:>10} waiting" for topic, count in dead.items()]
    if fetcher is not None:
        lines.append("")
        lines.append("fetcher: " + json.dumps(fetcher))
    return "\n".join(lines)


def dead_letter_topics() -> list[str]:
    dead = (topics().triggers_dlq, topics().triggers_unmatched, topics().emails_dlq)
    return [spec.name for spec in dead]


def measure(
    admin: AdminClient, probe: Consumer, groups: list[str]
) -> tuple[list[GroupLag], dict[str, int]]:
    lags = [row for group in groups for row in group_lag(admin, probe, group)]
    return lags, {topic: waiting(probe, topic) for topic in dead_letter_topics()}


def export(lags: list[GroupLag], dead: dict[str, int]) -> None:
    for row in lags:
        LAG.labels(row.group, row.topic).set(row.lag)
    for topic, count in dead.items():
        WAITING.labels(topic).set(count)


def serve(settings: KafkaSettings, groups: list[str], port: int, interval: float) -> int:
    """Measure every `interval` seconds and serve the gauges until SIGTERM."""
    probes = Probes(stall_after=max(60.0, 3 * interval))
    server = HealthServer("0.0.0.0", port, probes).start()  # noqa: S104  # scraped in-cluster
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    admin = make_admin(settings)
    probe = make_reader(settings, "triggerline-status", overrides={"group.id": status_group()})
    try:
        while not stop.is_set():
            try:
                export(*measure(admin, probe, groups))
                probes.ready("kafka")
            except Exception as exc:  # keep serving: a broker outage is what it reports on
                probes.not_ready("kafka", type(exc).__name__)
            probes.beat()
            stop.wait(interval)
    finally:
        probe.close()
        server.stop()
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="triggerline status", description=__doc__)
    parser.add_argument(
        "--group",
        action="append",
        help="consumer groups to report (default: the processor's and the mailer's, "
        "TRIGGERLINE_PROCESSOR_APP_ID and TRIGGERLINE_MAILER_GROUP_ID)",
    )
    parser.add_argument("--fetcher", default="http://127.0.0.1:7781", help="fetcher status URL")
    parser.add_argument("--serve", type=int, metavar="PORT", help="export gauges on this port")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between measures")
    parser.add_argument(
        "--json", action="store_true", help="one JSON document per report (lag, dead, fetcher)"
    )
    parser.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        help="report again every SECONDS until Ctrl-C (with --json: one document per line)",
    )
    args = parser.parse_args(argv)
    settings = load(KafkaSettings)
    groups = args.group or service_groups()
    if args.serve is not None:
        return serve(settings, groups, args.serve, args.interval)
    admin = make_admin(settings)
    probe = make_reader(settings, "triggerline-status", overrides={"group.id": status_group()})
    try:
        while True:
            lags, dead = measure(admin, probe, groups)
            fetcher = fetcher_figures(args.fetcher)
            if args.json:
                print(json.dumps(report(lags, dead, fetcher)), flush=True)
            else:
                if args.watch:
                    print("\033[2J\033[H", end="")  # clear the terminal between reports
                print(render(lags, dead, fetcher), flush=True)
            if not args.watch:
                return 0
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0
    finally:
        probe.close()


def fetcher_figures(url: str) -> dict[str, object] | None:
    """The fetcher's main indicators from its status page, or `None` when it does not answer."""
    try:
        body = requests.get(f"{url}/pipelined/status", timeout=3).json()
        stats = body["agents"][0]["stats"]
        return {key: stats[key] for key in FETCHER_KEYS if key in stats}
    except (requests.RequestException, ValueError, KeyError, IndexError, TypeError):
        return None

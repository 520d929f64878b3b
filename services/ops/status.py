"""`triggerline status`: consumer lag per group, dead letters waiting, the fetcher's indicators.

Lag is what to watch: a group whose lag grows is not keeping up, one whose committed offsets
stop moving while lag stays is stuck.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import requests
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from services.common.kafka import high_watermark, make_admin
from services.common.settings import KafkaSettings, load
from services.common.topics import TOPICS


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


def render(lags: list[GroupLag], dead: dict[str, int], fetcher: dict[str, object] | None) -> str:
    lines = [f"{'group':32} {'topic':45} {'lag':>10}"]
    lines += [f"{g.group:32} {g.topic:45} {g.lag:>10}" for g in lags] or ["(no committed offsets)"]
    lines.append("")
    lines += [f"{topic:45} {count:>10} waiting" for topic, count in dead.items()]
    if fetcher is not None:
        lines.append("")
        lines.append("fetcher: " + json.dumps(fetcher))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="triggerline status", description=__doc__)
    parser.add_argument(
        "--group",
        action="append",
        help="consumer groups to report (default: triggerline-processor, triggerline-mailer)",
    )
    parser.add_argument("--fetcher", default="http://127.0.0.1:7781", help="fetcher status URL")
    args = parser.parse_args(argv)
    settings = load(KafkaSettings)
    admin = make_admin(settings)
    probe = Consumer({**settings.client_config(), "group.id": "triggerline-status"})
    try:
        groups = args.group or ["triggerline-processor", "triggerline-mailer"]
        lags = [row for group in groups for row in group_lag(admin, probe, group)]
        dead_topics = (TOPICS.triggers_dlq, TOPICS.triggers_unmatched, TOPICS.emails_dlq)
        dead = {spec.name: waiting(probe, spec.name) for spec in dead_topics}
    finally:
        probe.close()
    fetcher: dict[str, object] | None = None
    try:
        body = requests.get(f"{args.fetcher}/pipelined/status", timeout=3).json()
        stats = body["agents"][0]["stats"]
        keys = ("trigger-received", "trigger-processed", "current-messages", "trigger-failures")
        fetcher = {key: stats[key] for key in keys}
    except (requests.RequestException, ValueError, KeyError, IndexError):
        fetcher = None
    print(render(lags, dead, fetcher))
    return 0

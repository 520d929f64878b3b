"""Who may do what on the Kafka cluster: one Strimzi `KafkaUser` per client, ACLs from the code.

Every name comes from the topic declaration and the settings' group ids, so the ACLs cannot
drift from what the services read and write. Consumers need Read and Describe, producers Write
and Describe, transactional producers Write and Describe on their transactional ids. Anything
not granted is refused by the brokers (`authorization.type: simple`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from services.common.topics import Topics

ResourceType = Literal["topic", "group", "transactionalId"]
Pattern = Literal["literal", "prefix"]

READ = ("Read", "Describe")
WRITE = ("Write", "Describe")
READ_WRITE = ("Read", "Write", "Describe")


@dataclass(frozen=True)
class Acl:
    """Operations allowed on one resource (or every resource with a name prefix)."""

    resource: ResourceType
    name: str
    operations: tuple[str, ...]
    pattern: Pattern = "literal"

    def document(self) -> dict[str, Any]:
        return {
            "resource": {"type": self.resource, "name": self.name, "patternType": self.pattern},
            "operations": list(self.operations),
        }


@dataclass(frozen=True)
class KafkaClient:
    """One Kafka identity: a SCRAM user whose Secret (same name) holds its password."""

    user: str
    purpose: str
    acls: tuple[Acl, ...]


@dataclass(frozen=True)
class Groups:
    """Consumer group ids and id prefixes the services use."""

    processor: str
    mailer: str
    redrive: str
    status: str
    pointer_reader_prefix: str
    fetcher_transactions_prefix: str


def _topics(names: Sequence[str], operations: tuple[str, ...]) -> tuple[Acl, ...]:
    return tuple(Acl("topic", name, operations) for name in names)


def kafka_clients(
    topics: Topics, campaigns: Sequence[str], groups: Groups
) -> tuple[KafkaClient, ...]:
    """Every client of the cluster with exactly the ACLs its code needs."""
    campaign_topics = [topics.emails(name).name for name in campaigns]
    retries = [spec.name for spec in topics.email_retries()]
    fetcher = KafkaClient(
        "triggerline-kafka-fetcher",
        "fetcher: writes triggers.raw and its pointer in one transaction",
        (
            *_topics([topics.triggers_raw.name, topics.triggers_dlq.name], WRITE),
            *_topics([topics.outcomes.name], WRITE),
            *_topics([topics.fetcher_pointers.name], READ_WRITE),
            # a restarted worker reads its pointer back with a throw-away group
            Acl("group", groups.pointer_reader_prefix, ("Read",), "prefix"),
            Acl("transactionalId", groups.fetcher_transactions_prefix, WRITE, "prefix"),
        ),
    )
    processor = KafkaClient(
        "triggerline-kafka-processor",
        "processor: the faust app, its internal topics (changelogs, repartition, assignor)",
        (
            *_topics([topics.triggers_raw.name], READ),
            # faust names every internal topic after its app id and creates the missing ones
            Acl("topic", f"{groups.processor}-", (*READ_WRITE, "Create"), "prefix"),
            Acl("topic", topics.processor_by_profile.name, READ_WRITE),
            *_topics([topics.triggers_dlq.name, topics.triggers_unmatched.name], WRITE),
            *_topics([topics.outcomes.name, *campaign_topics], WRITE),
            Acl("group", groups.processor, READ),
        ),
    )
    mailer = KafkaClient(
        "triggerline-kafka-mailer",
        "mailer: campaign topics in, retries around, outcomes and dead letters out",
        (
            *_topics(campaign_topics, READ),
            *_topics(retries, READ_WRITE),
            *_topics([topics.emails_dlq.name, topics.outcomes.name], WRITE),
            Acl("group", groups.mailer, READ),
        ),
    )
    # Idempotent, not transactional: Write on its topic is all the producer id needs (Kafka 2.8+
    # dropped the cluster-wide IdempotentWrite). The start-up topic check only describes
    # `outcomes`, which Strimzi creates: without Create, a missing topic fails loudly.
    feedback = KafkaClient(
        "triggerline-kafka-feedback",
        "feedback: unsubscribes, bounces and complaints out on outcomes, nothing read",
        _topics([topics.outcomes.name], WRITE),
    )
    every_topic = [spec.name for spec in topics.fixed()] + campaign_topics
    ops = KafkaClient(
        "triggerline-kafka-ops",
        "`triggerline status` (lag exporter) and `triggerline replay` (rewind, re-drive)",
        (
            *_topics(every_topic, READ_WRITE),
            # rewinds move the services' groups, or copy them to new ones named after them;
            # each re-drive filter keeps its position in a group of its own
            *(
                Acl("group", group, READ, "prefix")
                for group in (groups.processor, groups.mailer, groups.redrive)
            ),
            Acl("group", groups.status, READ),
            # re-drives produce in transactions named after their group
            Acl("transactionalId", groups.redrive, WRITE, "prefix"),
        ),
    )
    keda = KafkaClient(
        "triggerline-kafka-keda",
        "KEDA's Kafka scaler: reads committed offsets and partition ends, nothing else",
        (
            *_topics([topics.triggers_raw.name, *campaign_topics], ("Describe",)),
            Acl("group", groups.processor, ("Describe",)),
            Acl("group", groups.mailer, ("Describe",)),
        ),
    )
    return (fetcher, processor, mailer, feedback, ops, keda)


def kafka_user(client: KafkaClient, cluster: str) -> dict[str, Any]:
    """A Strimzi `KafkaUser` (kafka.strimzi.io/v1): SCRAM-SHA-512 and simple ACLs."""
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaUser",
        "metadata": {
            "name": client.user,
            "labels": {"strimzi.io/cluster": cluster},
            "annotations": {"triggerline.io/purpose": client.purpose},
        },
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {
                "type": "simple",
                "acls": [acl.document() for acl in client.acls],
            },
        },
    }

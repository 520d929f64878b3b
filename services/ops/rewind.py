"""Rewinding consumer groups: the plan from the cluster's offsets, and applying it.

A rewind commits new offsets for a group with no live member (Kafka refuses otherwise, and so
do we, before asking, naming the members). With a new group the plan is committed there and the
live group is left alone: start a second processor or mailer on it to reprocess.
"""

from __future__ import annotations

from collections.abc import Sequence

from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from services.common.kafka import make_admin, make_consumer
from services.common.settings import KafkaSettings
from services.ops.errors import OperatorError
from services.ops.groups import status_group
from services.ops.rules.replay import (
    PartitionMove,
    RewindRequest,
    partitions_to_move,
    plan_partition,
)
from services.ops.topic_window import offsets_at, partitions_of


class GroupActive(OperatorError):
    """The group has live members; stop them (scale to 0) before rewinding."""


def committed_offsets(admin: AdminClient, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets on every topic it ever committed on."""
    request = [ConsumerGroupTopicPartitions(group)]
    result = admin.list_consumer_group_offsets(request, request_timeout=30)[group].result()
    return {
        (tp.topic, tp.partition): tp.offset
        for tp in result.topic_partitions or []
        if tp.offset >= 0
    }


def live_members(admin: AdminClient, group: str) -> tuple[ConsumerGroupState, list[str]]:
    """The group's state and its members as `client-id@host` (empty when stopped)."""
    description = admin.describe_consumer_groups([group], request_timeout=30)[group].result()
    members = [f"{m.client_id}@{m.host.lstrip('/')}" for m in description.members]
    return description.state, members


def ensure_stopped(admin: AdminClient, group: str) -> None:
    state, members = live_members(admin, group)
    if state not in (ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD) or members:
        raise GroupActive(
            f"group {group} is {state.name.lower()} with live members "
            f"{', '.join(members) or '?'}; stop them first (scale the Deployment or "
            "StatefulSet to 0), or rewind into a new group with --to-new-group"
        )


def ensure_known(admin: AdminClient, group: str, committed: dict[tuple[str, int], int]) -> None:
    """An unknown group is most often a typo: refuse rather than plan for nobody."""
    state, members = live_members(admin, group)
    if not committed and not members and state in (ConsumerGroupState.DEAD,
                                                   ConsumerGroupState.UNKNOWN):  # fmt: skip
        raise OperatorError(
            f"consumer group {group} is unknown on this cluster (no members, no committed "
            "offsets); `triggerline status --group NAME` shows a group's lag"
        )


def ensure_fresh(admin: AdminClient, group: str, topics: Sequence[str]) -> None:
    """A group to copy a plan into must not be reading those topics already."""
    ensure_stopped(admin, group)
    taken = sorted({t for t, _ in committed_offsets(admin, group) if t in topics})
    if taken:
        raise OperatorError(
            f"group {group} already has offsets on {', '.join(taken)}; name a fresh group for "
            "--to-new-group, or rewind that group itself with --group"
        )


def rewind_plan(
    settings: KafkaSettings,
    group: str,
    topics: Sequence[str],
    request: RewindRequest,
    admin: AdminClient | None = None,
) -> list[PartitionMove]:
    """Per topic and partition: where the group is, and where it would restart.

    Refuses (`OperatorError`) an unknown group or topic and an offset outside the log, before
    anything changes. One admin client serves a whole command: librdkafka reports an event of
    an offsets listing as unserved when its client is destroyed right after it.
    """
    admin = admin or make_admin(settings)
    committed = committed_offsets(admin, group)
    ensure_known(admin, group, committed)
    probe = make_consumer(settings, status_group(), "triggerline-replay-plan")
    try:
        moves: list[PartitionMove] = []
        for topic in topics:
            partitions = partitions_to_move(request, topic, partitions_of(probe, topic))
            by_time: dict[int, int] = {}
            if request.mode == "datetime" and request.when is not None:
                by_time = offsets_at(probe, topic, partitions, request.when)
            for partition in partitions:
                low, high = probe.get_watermark_offsets(TopicPartition(topic, partition), 30)
                moves.append(
                    plan_partition(
                        topic,
                        partition,
                        committed.get((topic, partition)),
                        low,
                        high,
                        request,
                        by_time.get(partition),
                    )
                )
        return moves
    finally:
        probe.close()


def apply_rewind(
    settings: KafkaSettings,
    group: str,
    moves: Sequence[PartitionMove],
    new_group: str | None = None,
    admin: AdminClient | None = None,
) -> None:
    """Commit the plan's targets for `group`, or copy them into `new_group`.

    The rewound group must have no live member; a new group must not read those topics yet.
    """
    admin = admin or make_admin(settings)
    target = new_group or group
    topics = sorted({m.topic for m in moves})
    if new_group:
        ensure_fresh(admin, new_group, topics)
    else:
        ensure_stopped(admin, group)
    request = ConsumerGroupTopicPartitions(
        target, [TopicPartition(m.topic, m.partition, m.target) for m in moves]
    )
    try:
        admin.alter_consumer_group_offsets([request], request_timeout=30)[target].result()
    except KafkaException as exc:  # a member joined between the check and the commit
        raise GroupActive(f"the cluster refused the new offsets of {target}: {exc}") from None

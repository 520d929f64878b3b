"""KEDA objects for the two lag-scaled workloads, derived from the topic declaration and settings.

The processor and the mailer scale on the lag of their own consumer group, on the topics that
feed them: `triggers.raw` for the processor, each campaign's `emails.<campaign>` for the mailer
(never the retry topics, whose records wait on purpose). The bootstrap address is a per-overlay
setting: `deploy/k8s/kafka-placement` copies TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS into every
trigger, so KEDA, which resolves names from its own namespace, gets the fully qualified one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from services.common.topics import TopicSpec

BOOTSTRAP_PLACEHOLDER = "set-by-kafka-placement:9093"
AUTHENTICATION = "triggerline-kafka"
KEDA_CONFIG = "triggerline-keda-kafka"
CLUSTER_CA_CERT = "triggerline-cluster-ca-cert"


@dataclass(frozen=True)
class LagScaling:
    """One workload scaled on its group's lag over the topics it consumes."""

    kind: str
    name: str
    group: str
    topics: tuple[TopicSpec, ...]
    lag_per_replica: int
    session_timeout: timedelta
    offset_reset: str = "earliest"
    min_replicas: int = 1


def max_replicas(topics: Sequence[TopicSpec]) -> int:
    """The most replicas that each get a partition of every topic: the smallest count."""
    return min(spec.partitions for spec in topics)


def scale_down_period(session_timeout: timedelta) -> int:
    """Seconds between two removals: twice the session timeout, at least a minute.

    Under static membership (the processor's pod names) a removed member does not leave the
    group; its partitions wait for the session timeout before they move. Removing one pod per
    period lets each move finish before the next begins.
    """
    return max(60, math.ceil(2 * session_timeout.total_seconds()))


def scaled_object(scaling: LagScaling, user: str) -> dict[str, Any]:
    period = scale_down_period(scaling.session_timeout)
    triggers = [
        {
            "type": "kafka",
            "name": f"lag-{spec.name}".replace("_", "-").replace(".", "-"),
            "authenticationRef": {"name": AUTHENTICATION},
            "metadata": {
                "bootstrapServers": BOOTSTRAP_PLACEHOLDER,
                "consumerGroup": scaling.group,
                "topic": spec.name,
                # KEDA metadata values are strings
                "lagThreshold": str(scaling.lag_per_replica),
                "activationLagThreshold": "0",
                "offsetResetPolicy": scaling.offset_reset,
                "allowIdleConsumers": "false",
            },
        }
        for spec in scaling.topics
    ]
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": scaling.name,
            "annotations": {"triggerline.io/kafka-user": user},
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": scaling.kind, "name": scaling.name},
            "minReplicaCount": scaling.min_replicas,
            "maxReplicaCount": max_replicas(scaling.topics),
            "pollingInterval": 30,
            "cooldownPeriod": 300,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": period,
                            "selectPolicy": "Min",
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": period}],
                        }
                    }
                }
            },
            "triggers": triggers,
        },
    }


def trigger_authentication(user: str) -> list[dict[str, Any]]:
    """SCRAM-SHA-512 over TLS for KEDA: user name and mode in a ConfigMap, secrets by name."""
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": KEDA_CONFIG},
        "data": {"sasl": "scram_sha512", "tls": "enable", "username": user},
    }
    authentication = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": AUTHENTICATION},
        "spec": {
            "configMapTargetRef": [
                {"parameter": key, "name": KEDA_CONFIG, "key": key}
                for key in ("sasl", "tls", "username")
            ],
            "secretTargetRef": [
                {"parameter": "password", "name": user, "key": "password"},
                {"parameter": "ca", "name": CLUSTER_CA_CERT, "key": "ca.crt"},
            ],
        },
    }
    return [config, authentication]

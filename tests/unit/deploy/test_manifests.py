"""The Kubernetes manifests: derived files up to date, and the conventions every workload keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.topics import TOPICS
from services.ops.manifests import K8S, TOPICS_FILE, rendered

BASE = K8S / "base"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _base_objects() -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for path in sorted(BASE.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            objects.extend(_documents(path))
    return objects


WORKLOADS = [o for o in _base_objects() if o["kind"] in ("Deployment", "StatefulSet")]


def test_generated_files_are_up_to_date() -> None:
    for path, text in rendered().items():
        assert path.read_text(encoding="utf-8") == text, f"{path}: run `triggerline manifests`"


def test_every_declared_topic_is_a_kafka_topic_with_its_partitions() -> None:
    topics = {d["spec"]["topicName"]: d for d in _documents(TOPICS_FILE)}
    for spec in TOPICS.fixed():
        assert topics[spec.name]["spec"]["partitions"] == spec.partitions
        assert topics[spec.name]["apiVersion"] == "kafka.strimzi.io/v1"
    assert topics[TOPICS.emails("cart_abandonment").name]["metadata"]["name"] == (
        "emails.cart-abandonment"
    )


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w["metadata"]["name"])
def test_workloads_have_probes_resources_and_a_budget(workload: dict[str, Any]) -> None:
    for container in workload["spec"]["template"]["spec"]["containers"]:
        assert "readinessProbe" in container and "livenessProbe" in container
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert workload["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    budgets = [o for o in _base_objects() if o["kind"] == "PodDisruptionBudget"]
    labels = workload["spec"]["selector"]["matchLabels"]
    assert any(b["spec"]["selector"]["matchLabels"] == labels for b in budgets)


def test_autoscaling_never_exceeds_the_partitions_and_uses_string_metadata() -> None:
    scaled = [o for o in _base_objects() if o["kind"] == "ScaledObject"]
    assert {s["metadata"]["name"] for s in scaled} == {
        "triggerline-processor",
        "triggerline-mailer",
    }
    for item in scaled:
        assert item["spec"]["maxReplicaCount"] <= TOPICS.triggers_raw.partitions
        for trigger in item["spec"]["triggers"]:
            assert all(isinstance(v, str) for v in trigger["metadata"].values())
    assert not [o for o in _base_objects() if o["kind"] == "HorizontalPodAutoscaler"]


def test_network_is_denied_by_default_and_no_secret_is_in_clear() -> None:
    objects = _base_objects()
    deny = [o for o in objects if o["metadata"]["name"] == "triggerline-default-deny"]
    assert deny and deny[0]["spec"]["podSelector"] == {}
    assert not [o for o in objects if o["kind"] == "Secret"]
    assert "v1beta2" not in "".join(p.read_text() for p in K8S.rglob("*.yaml"))

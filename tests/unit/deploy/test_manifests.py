"""Derived files are current, every overlay renders, and what is rendered is complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.topics import topics
from services.ops.manifests import K8S, TOPICS_FILE, leftovers, rendered
from tests.unit.deploy.rendering import OVERLAY_NAMES, of_kind, render, render_dir


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_generated_files_are_up_to_date() -> None:
    expected = rendered()
    for path, text in expected.items():
        assert path.exists() and path.read_text(encoding="utf-8") == text, (
            f"{path}: run `triggerline manifests`"
        )
    assert not leftovers(expected), "run `triggerline manifests` to remove them"


def test_every_declared_topic_is_a_kafka_topic_with_its_partitions() -> None:
    kafka_topics = {d["spec"]["topicName"]: d for d in _documents(TOPICS_FILE)}
    for spec in topics().fixed():
        assert kafka_topics[spec.name]["spec"]["partitions"] == spec.partitions
        assert kafka_topics[spec.name]["apiVersion"] == "kafka.strimzi.io/v1"
    assert kafka_topics[topics().emails("cart_abandonment").name]["metadata"]["name"] == (
        "emails.cart-abandonment"
    )


def test_there_are_overlays_and_each_renders() -> None:
    assert {"dev", "prod"} <= set(OVERLAY_NAMES)
    for overlay in OVERLAY_NAMES:
        assert render(overlay)


def test_an_overlay_that_does_not_render_fails(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(pytest.fail.Exception, match="does not render"):
        render_dir(tmp_path)


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_rendered_objects_are_complete_and_ship_no_secret(overlay: str) -> None:
    objects = render(overlay)
    text = yaml.safe_dump_all(objects)
    assert not of_kind(objects, "Secret"), "secrets are referenced, never shipped"
    assert "set-by-" not in text, "a placeholder was not replaced (kafka-placement, overlay)"
    assert "v1beta2" not in text
    namespaces = of_kind(objects, "Namespace")
    assert len(namespaces) == 1
    labels = namespaces[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    app, kafka = namespaces[0]["metadata"]["name"], set()
    for item in objects:
        if item["kind"] == "Namespace":
            continue
        namespace = item["metadata"].get("namespace")
        assert namespace, f"{item['kind']}/{item['metadata']['name']} has no namespace"
        if namespace != app:
            kafka.add((item["kind"], item["metadata"]["name"], namespace))
    # only the brokers' ingress policy lives in the Kafka namespace, never ours
    assert [(k, n) for k, n, _ in kafka] == [("NetworkPolicy", "triggerline-kafka-clients")]
    assert next(iter(kafka))[2] != app


def test_no_v1beta2_anywhere_in_the_tree() -> None:
    assert "v1beta2" not in "".join(p.read_text() for p in K8S.rglob("*.yaml"))

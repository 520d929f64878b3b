"""Every rendered object is valid: built-in kinds against the Kubernetes schemas (strict, so a
misspelt field fails), custom resources against the vendored schemas in deploy/k8s/schemas."""

from __future__ import annotations

import json
from functools import cache

import jsonschema
import kubernetes_validate
import pytest

from services.ops.manifests import K8S
from tests.unit.deploy.rendering import OVERLAY_NAMES, Obj, render

KUBERNETES_VERSION = "1.32.0"  # the oldest we support: pod-index labels need 1.28
CUSTOM = {
    ("kafka.strimzi.io/v1", "KafkaTopic"): "kafkatopic_v1.json",
    ("kafka.strimzi.io/v1", "KafkaUser"): "kafkauser_v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject_v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "triggerauthentication_v1alpha1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule_v1.json",
}


@cache
def _validator(file: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((K8S / "schemas" / file).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def problems(item: Obj) -> list[str]:
    key = (item["apiVersion"], item["kind"])
    if key in CUSTOM:
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _validator(CUSTOM[key]).iter_errors(item)
        ]
    try:
        kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {key}: vendor one in deploy/k8s/schemas"]
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    return []


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_rendered_object_matches_its_schema(overlay: str) -> None:
    found = {
        f"{o['kind']}/{o['metadata']['name']}": p for o in render(overlay) if (p := problems(o))
    }
    assert not found


def test_the_schemas_refuse_what_the_operators_would_not_take() -> None:
    user = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaUser",
        "metadata": {"name": "u"},
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {
                "type": "simple",
                "acls": [{"resource": {"type": "topic", "name": "t"}, "operation": "Read"}],
            },
        },
    }
    assert problems(user)  # v1 has `operations`, a list
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "s"},
        "spec": {
            "scaleTargetRef": {"name": "x"},
            "triggers": [
                {
                    "type": "kafka",
                    "metadata": {
                        "bootstrapServers": "b:9093",
                        "consumerGroup": "g",
                        "lagThreshold": 10,
                    },
                }
            ],
        },
    }
    assert problems(scaled)  # KEDA metadata values are strings
    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "readinessProbe": {"httpGett": {}}}]},
    }
    assert problems(probe)  # strict: a misspelt field fails

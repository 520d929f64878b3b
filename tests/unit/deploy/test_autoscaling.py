"""KEDA as rendered: the right group, topics and address, a ceiling at the partition count, a
scale-down gentle enough for static membership, and credentials for SASL over TLS."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from services.common.pipeline_config import load_pipeline_config
from services.common.settings import parse_duration
from services.common.topics import topics
from services.mailer.settings import MailerSettings
from services.ops.autoscaling import scale_down_period
from services.processor.settings import ProcessorSettings
from services.resources import DEFAULT_PIPELINE_CONFIG
from tests.unit.deploy.rendering import OVERLAY_NAMES, Obj, named, of_kind, render

CAMPAIGNS = sorted(load_pipeline_config(DEFAULT_PIPELINE_CONFIG).campaigns)


def _setting(settings: dict[str, str], variable: str, model: type[BaseModel], field: str) -> str:
    return settings.get(variable, str(model.model_fields[field].default))


def expectations(objects: list[Obj]) -> dict[str, tuple[str, str, set[str], float]]:
    """ScaledObject -> (target kind, group, topics, session timeout s), from the settings."""
    settings = named(objects, "ConfigMap", "triggerline-settings")["data"]
    processor_timeout = settings.get("TRIGGERLINE_PROCESSOR_SESSION_TIMEOUT")
    return {
        "triggerline-processor": (
            "StatefulSet",
            _setting(settings, "TRIGGERLINE_PROCESSOR_APP_ID", ProcessorSettings, "app_id"),
            {topics().triggers_raw.name},
            parse_duration(processor_timeout).total_seconds()
            if processor_timeout
            else ProcessorSettings.model_fields["session_timeout"].default.total_seconds(),
        ),
        "triggerline-mailer": (
            "Deployment",
            _setting(settings, "TRIGGERLINE_MAILER_GROUP_ID", MailerSettings, "group_id"),
            {topics().emails(c).name for c in CAMPAIGNS},
            MailerSettings.model_fields["session_timeout"].default.total_seconds(),
        ),
    }


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_scaled_objects_follow_the_settings_and_the_topics(overlay: str) -> None:
    objects = render(overlay)
    settings = named(objects, "ConfigMap", "triggerline-settings")["data"]
    bootstrap = settings["TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS"]
    assert bootstrap.endswith(".svc.cluster.local:9093"), "KEDA needs the fully qualified name"
    partitions = {spec.name: spec.partitions for spec in topics().fixed()}
    partitions |= {topics().emails(c).name: topics().emails(c).partitions for c in CAMPAIGNS}
    scaled = {s["metadata"]["name"]: s for s in of_kind(objects, "ScaledObject")}
    assert set(scaled) == set(expectations(objects))
    for name, (kind, group, watched, timeout) in expectations(objects).items():
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": kind, "name": name}
        named(objects, kind, name)  # the target exists
        triggers = spec["triggers"]
        assert {t["metadata"]["topic"] for t in triggers} == watched, "scale on these topics only"
        for trigger in triggers:
            metadata = trigger["metadata"]
            assert metadata["bootstrapServers"] == bootstrap
            assert metadata["consumerGroup"] == group
            assert all(isinstance(v, str) for v in metadata.values())
            assert trigger["authenticationRef"]["name"] == "triggerline-kafka"
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert spec["maxReplicaCount"] <= min(partitions[t] for t in watched)
        down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
        assert down["stabilizationWindowSeconds"] >= timeout
        for policy in down["policies"]:
            assert policy["type"] == "Pods" and policy["value"] == 1
            assert policy["periodSeconds"] >= timeout, "one member leaves per session timeout"


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_keda_authenticates_with_scram_over_tls(overlay: str) -> None:
    objects = render(overlay)
    auth = named(objects, "TriggerAuthentication", "triggerline-kafka")["spec"]
    config = {r["parameter"]: r for r in auth["configMapTargetRef"]}
    values = named(objects, "ConfigMap", config["sasl"]["name"])["data"]
    assert values["sasl"] == "scram_sha512" and values["tls"] == "enable"
    user = values["username"]
    named(objects, "KafkaUser", user)
    secrets = {r["parameter"]: r["name"] for r in auth["secretTargetRef"]}
    assert secrets == {"password": user, "ca": "triggerline-cluster-ca-cert"}
    assert not of_kind(objects, "HorizontalPodAutoscaler"), "KEDA makes its own"


def test_scale_down_waits_for_the_session_timeout() -> None:
    assert scale_down_period(ProcessorSettings.model_fields["session_timeout"].default) >= 60

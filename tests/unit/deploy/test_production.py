"""Production must not run on local defaults: the rules, the CLI, and the rendered overlays."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from services.common.pipeline_config import parse_pipeline_config
from services.common.settings import env_names
from services.ops import configuration
from services.ops.rules.production import REFERENCED, hosts, is_local, production_problems
from services.resources import DEFAULT_PIPELINE_CONFIG
from tests.unit.deploy.rendering import (
    OVERLAY_NAMES,
    Obj,
    environment,
    named,
    of_kind,
    pods,
    render,
)

LOCAL_CONSUMER = "triggerline_local"


def defaults() -> dict[str, str]:
    values: dict[str, str] = {}
    for cls in configuration.all_settings():
        for variable, field in zip(env_names(cls), cls.model_fields, strict=True):
            default = cls.model_fields[field].default
            text = getattr(default, "get_secret_value", lambda d=default: d)()
            values[variable] = str(text).lower() if isinstance(text, bool) else str(text)
    return values


def cluster_environment(objects: list[Obj]) -> dict[str, str]:
    """What the processes of an overlay run with: defaults, then every pod's variables."""
    values = {k: v for k, v in defaults().items() if not k.startswith("TRIGGERLINE_SIMULATOR")}
    for pod in pods(objects):
        for container in pod.spec["containers"]:
            values |= environment(objects, container, REFERENCED)
    return values


def routing(objects: list[Obj]) -> str:
    return str(named(objects, "ConfigMap", "triggerline-pipeline")["data"]["pipeline.yaml"])


def test_rules_refuse_loopback_invalid_names_and_development_keys() -> None:
    base = defaults()
    problems = "\n".join(production_problems(base, base, LOCAL_CONSUMER, LOCAL_CONSUMER, []))
    for variable in (
        "TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS",
        "TRIGGERLINE_AUTH_IMS_URL",
        "TRIGGERLINE_AUTH_CLIENT_ID",
        "TRIGGERLINE_AUTH_IMS_ORG",
        "TRIGGERLINE_MAILER_SMTP_HOST",
        "TRIGGERLINE_MAILER_SMTP_PORT",
        "TRIGGERLINE_TOKENS_KEY",
        "TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL",
        "TRIGGERLINE_TOKENS_BOUNCE_DOMAIN",
        "TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT",
        "TRIGGERLINE_KAFKA_SECURITY_PROTOCOL",
    ):
        assert variable in problems
    assert "local-development-only" not in problems, "never repeat a secret"
    assert "upstream consumer" in problems
    assert production_problems({}, {}, "c", LOCAL_CONSUMER, ["A <a@shop.invalid>"])
    assert is_local(hosts("http://[::1]:80")[0]) and is_local("0.0.0.0")  # noqa: S104
    assert not is_local(hosts("triggerline-kafka-bootstrap.kafka.svc:9093")[0])


@pytest.mark.parametrize("overlay", ["prod"])
def test_the_production_overlay_passes_the_production_rules(overlay: str) -> None:
    objects = render(overlay)
    config = parse_pipeline_config(yaml.safe_load(routing(objects)))
    values = cluster_environment(objects)
    consumer = values.get("TRIGGERLINE_FETCHER_CONSUMER") or config.consumer()
    senders = [c.sender for c in config.campaigns.values()]
    assert production_problems(values, defaults(), consumer, LOCAL_CONSUMER, senders) == []


def test_the_production_routing_file_keeps_the_campaigns_of_config() -> None:
    prod = parse_pipeline_config(yaml.safe_load(routing(render("prod"))))
    local = parse_pipeline_config(yaml.safe_load(DEFAULT_PIPELINE_CONFIG.read_text()))
    assert sorted(prod.campaigns) == sorted(local.campaigns)
    assert {n: c.template for n, c in prod.campaigns.items()} == {
        n: c.template for n, c in local.campaigns.items()
    }


def test_every_environment_has_its_own_upstream_consumer_and_no_loopback() -> None:
    consumers = []
    for overlay in OVERLAY_NAMES:
        objects = render(overlay)
        values = cluster_environment(objects)
        consumers.append(
            values["TRIGGERLINE_FETCHER_CONSUMER"]
            or parse_pipeline_config(yaml.safe_load(routing(objects))).consumer()
        )
        for variable in ("TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS", "TRIGGERLINE_AUTH_IMS_URL"):
            assert not any(is_local(h) for h in hosts(values[variable])), (overlay, variable)
        for variable in ("TRIGGERLINE_MAILER_SMTP_HOST", "TRIGGERLINE_FETCHER_AUTH_URL"):
            assert not any(is_local(h) for h in hosts(values[variable])), (overlay, variable)
    assert LOCAL_CONSUMER not in consumers and len(set(consumers)) == len(consumers)


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_kafka_clients_use_their_own_user_over_tls_with_acls_for_their_groups(
    overlay: str,
) -> None:
    objects = render(overlay)
    users = {u["metadata"]["name"]: u for u in of_kind(objects, "KafkaUser")}
    for user in users.values():
        assert user["apiVersion"] == "kafka.strimzi.io/v1"
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    for pod in pods(objects):
        for container in pod.spec["containers"]:
            env = environment(objects, container, REFERENCED)
            name = env.get("TRIGGERLINE_KAFKA_SASL_USERNAME")
            if name is None:
                continue
            assert env["TRIGGERLINE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
            assert name in users, f"{pod.name}: no KafkaUser {name}"
            refs = [e for e in container["env"] if e["name"] == "TRIGGERLINE_KAFKA_SASL_PASSWORD"]
            assert refs[0]["valueFrom"]["secretKeyRef"] == {"name": name, "key": "password"}
    settings = named(objects, "ConfigMap", "triggerline-settings")["data"]
    groups = {
        "triggerline-kafka-processor": settings.get(
            "TRIGGERLINE_PROCESSOR_APP_ID", "triggerline-processor"
        ),
        "triggerline-kafka-mailer": settings.get(
            "TRIGGERLINE_MAILER_GROUP_ID", "triggerline-mailer"
        ),
    }
    for user_name, group in groups.items():
        acls = users[user_name]["spec"]["authorization"]["acls"]
        assert {"type": "group", "name": group, "patternType": "literal"} in [
            a["resource"] for a in acls
        ]


def production_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prod overlay's variables in this process, and nothing else of ours: what its pods'
    `config check --production` would see (secrets stand in for what the cluster references)."""
    objects = render("prod")
    for variable in list(os.environ):
        if variable.startswith("TRIGGERLINE_"):
            monkeypatch.delenv(variable)
    path = tmp_path / "pipeline.yaml"
    path.write_text(routing(objects))
    values: dict[str, str] = {}
    for pod in pods(objects):
        for container in pod.spec["containers"]:
            values |= environment(objects, container, REFERENCED)
    values |= {
        "TRIGGERLINE_PIPELINE_CONFIG": str(path),
        "TRIGGERLINE_PIPELINE_TEMPLATES_DIR": str(DEFAULT_PIPELINE_CONFIG.parent / "templates"),
        "TRIGGERLINE_DB_URL": "postgresql+psycopg://app:pw@db.example.com/triggerline",
        "TRIGGERLINE_TOKENS_KEY": "a-real-key-longer-than-the-32-characters-required",
    }
    for variable, value in values.items():
        if value != REFERENCED and variable != "TRIGGERLINE_FETCHER_REPLICA_INDEX":
            monkeypatch.setenv(variable, value)


def test_config_check_production_accepts_the_production_overlay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in list(os.environ):
        if variable.startswith("TRIGGERLINE_"):
            monkeypatch.delenv(variable)
    assert configuration.main(["check", "--production"]) == 1  # the local defaults
    assert "not for production" in capsys.readouterr().err
    production_environment(tmp_path, monkeypatch)
    for service in (None, "mailer", "fetcher", "auth", "processor", "feedback"):
        args = ["check", "--production"] + (["--service", service] if service else [])
        assert configuration.main(args) == 0, capsys.readouterr().err

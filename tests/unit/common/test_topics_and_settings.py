"""The topic declaration, settings loading and the routing file."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest

from services.common.backoff import Backoff
from services.common.errors import ConfigurationError
from services.common.pipeline_config import load_pipeline_config, parse_pipeline_config
from services.common.settings import (
    REPO_ROOT,
    KafkaSettings,
    load,
    parse_duration,
    unknown_variables,
)
from services.common.topics import delay_label, topics, topics_for

ADOBE_CONFIG = {
    "topics": [
        {
            "name": "triggers",
            "consumer": "customer_prod",
            "triggers": [
                {"name": "3e8a2ba7-fccc-49bb-bdac-33ee33cf02bf", "jsConnector": "cus:triggers.js"},
                {"name": "*", "jsConnector": "cus:pipeline.js"},
            ],
        }
    ]
}


def test_triggers_raw_has_twelve_partitions_and_names_are_unique() -> None:
    assert topics().triggers_raw.partitions == 12
    names = [spec.name for spec in topics().fixed()]
    assert len(names) == len(set(names))
    assert topics().fetcher_pointers.cleanup_policy == "compact"
    assert topics().fetcher_pointers.config()["retention.ms"] == "-1"


def test_campaign_topics_follow_the_rule() -> None:
    assert topics().emails("cart_abandonment").name == "emails.cart_abandonment"
    for bad in ("Cart", "a b", "dlq", "retry", ""):
        with pytest.raises(ValueError):
            topics().emails(bad)


def test_prefix_namespaces_every_topic() -> None:
    staged = topics_for("staging.")
    assert all(spec.name.startswith("staging.") for spec in staged.fixed())
    assert staged.emails("x").name == "staging.emails.x"


def test_retry_topics_are_named_by_delay() -> None:
    assert [spec.name for spec in topics().email_retries()] == [
        "emails.retry.30s",
        "emails.retry.5m",
        "emails.retry.30m",
    ]
    assert delay_label(timedelta(hours=2)) == "2h"
    assert delay_label(timedelta(seconds=90)) == "90s"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", 30), ("5m", 300), ("24h", 86400), ("2d", 172800), ("500ms", 0.5), ("7", 7)],
)
def test_durations(text: str, expected: float) -> None:
    assert parse_duration(text).total_seconds() == expected


def test_bad_duration_says_how_to_write_one() -> None:
    with pytest.raises(ValueError, match="30s, 5m"):
        parse_duration("soon")


def test_invalid_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIGGERLINE_KAFKA_SECURITY_PROTOCOL", "CARRIER_PIGEON")
    with pytest.raises(ConfigurationError, match="TRIGGERLINE_KAFKA_SECURITY_PROTOCOL"):
        load(KafkaSettings)


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIGGERLINE_KAFKA_SASL_PASSWORD", "hunter2-do-not-print")
    settings = load(KafkaSettings)
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)


def test_unknown_variables_are_reported() -> None:
    environ = {"TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS": "x", "TRIGGERLINE_KAFKA_BOOTSTRAP": "typo"}
    assert unknown_variables([KafkaSettings], environ) == ["TRIGGERLINE_KAFKA_BOOTSTRAP"]


def test_adobe_routing_json_is_accepted_unchanged() -> None:
    data = json.loads(json.dumps(ADOBE_CONFIG))
    data["campaigns"] = {
        "cart": {"template": "cart_abandonment", "connectors": ["cus:triggers.js"]},
        "generic": {"template": "browse_abandonment", "connectors": ["cus:pipeline.js"]},
    }
    config = parse_pipeline_config(data)
    assert config.consumer() == "customer_prod"
    assert config.connector_index()["cus:triggers.js"] == "cart"
    assert config.topics[0].triggers[1].name == "*"


def test_unrouted_connector_is_a_startup_error() -> None:
    with pytest.raises(ConfigurationError, match=r"cus:triggers\.js"):
        parse_pipeline_config(ADOBE_CONFIG)


def test_missing_consumer_is_a_startup_error() -> None:
    data = {"topics": [{"name": "triggers", "consumer": "", "triggers": []}]}
    with pytest.raises(ConfigurationError, match="consumer"):
        parse_pipeline_config(data)


def test_empty_routing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.json"
    path.write_text("")
    with pytest.raises(ConfigurationError, match="empty"):
        load_pipeline_config(path)


def test_the_shipped_local_config_loads() -> None:
    config = load_pipeline_config(REPO_ROOT / "config" / "pipeline.yaml")
    assert set(config.campaigns) >= {"cart_abandonment"}
    for campaign in config.campaigns.values():
        assert (REPO_ROOT / "config" / "templates" / campaign.template).is_dir()


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    backoff = Backoff(initial=timedelta(seconds=1), cap=timedelta(seconds=10))
    rng = random.Random(7)
    first = [backoff.delay(1, rng=rng) for _ in range(50)]
    assert all(timedelta(seconds=0.5) <= d <= timedelta(seconds=1) for d in first)
    assert all(backoff.delay(20, rng=rng) <= timedelta(seconds=10) for _ in range(50))
    assert backoff.delay(1, timedelta(seconds=30), rng) == timedelta(seconds=30)

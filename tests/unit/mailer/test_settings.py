"""Mailer settings from the environment, and the subscription regex they lead to."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from services.common.errors import ConfigurationError
from services.common.settings import load
from services.common.topics import topics, topics_for
from services.mailer.main import retry_topics
from services.mailer.settings import MailerSettings


def test_defaults_work_on_loopback_and_hide_secrets() -> None:
    settings = load(MailerSettings)
    assert (settings.smtp_host, settings.smtp_port, settings.health_port) == (
        "127.0.0.1",
        2525,
        7782,
    )
    assert settings.group_id == "triggerline-mailer"
    assert "local-development-only" not in repr(settings)
    assert [t.name for t in retry_topics(settings)] == [s.name for s in topics().email_retries()]


def test_environment_overrides_with_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIGGERLINE_MAILER_RETRY_DELAYS", "1s,2s")
    monkeypatch.setenv("TRIGGERLINE_MAILER_CLAIM_TIMEOUT", "90s")
    monkeypatch.setenv("TRIGGERLINE_MAILER_SMTP_PASSWORD", "hunter2")
    settings = load(MailerSettings)
    assert settings.retry_delays == (timedelta(seconds=1), timedelta(seconds=2))
    assert settings.claim_timeout == timedelta(seconds=90)
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    topics = retry_topics(settings)
    assert [(t.name, t.delay) for t in topics] == [
        ("emails.retry.30s", timedelta(seconds=1)),
        ("emails.retry.5m", timedelta(seconds=2)),
    ]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRIGGERLINE_MAILER_RETRY_DELAYS", "1s,2s,3s,4s"),
        ("TRIGGERLINE_MAILER_RETRY_DELAYS", "0s"),
        ("TRIGGERLINE_MAILER_CAMPAIGN_PATTERN", "[a-z]+"),
        ("TRIGGERLINE_MAILER_SMTP_PORT", "0"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load(MailerSettings)


@pytest.mark.parametrize(
    ("topic", "matches"),
    [
        ("emails.cart_abandonment", True),
        ("emails.d", True),
        ("emails.dlq2", True),
        ("emails.retr", True),
        ("emails.retry-later", True),
        ("emails.dlq", False),
        ("emails.retry", False),
        ("emails.retry.30s", False),
        ("emails.a.b", False),
        ("outcomes", False),
    ],
)
def test_the_subscription_regex_skips_dlq_and_retry_topics(topic: str, matches: bool) -> None:
    # librdkafka compiles it as a POSIX regex: no lookahead, which Python would also accept
    pattern = topics().emails_pattern()
    assert "(?" not in pattern
    assert bool(re.match(pattern, topic)) is matches


def test_the_subscription_regex_keeps_to_its_namespace() -> None:
    staging = topics_for("staging.")
    pattern = staging.emails_pattern()
    assert re.match(pattern, "staging.emails.cart_abandonment")
    assert not re.match(pattern, "staging.emails.dlq")
    assert not re.match(pattern, "emails.cart_abandonment")
    assert not re.match(pattern, "stagingXemails.cart_abandonment")

"""What a fresh local run drops before it starts."""

from __future__ import annotations

from services.common.topics import topics_for
from services.ops.stack_setup import topics_to_reset


def test_a_run_drops_its_topics_and_every_campaign_topic_its_mailer_would_read() -> None:
    existing = [
        "outcomes",
        "emails.cart_abandonment",  # declared
        "emails.t1a2b3c",  # left by a test: the mailer's pattern would pick it up
        "emails.retry.30s",
        "emails.dlq",
        "triggerline-processor-profile-state-changelog",
        "someone.elses.topic",
        "run1.emails.other",  # another namespace
    ]
    declared = ["outcomes", "emails.cart_abandonment", "emails.retry.30s", "emails.dlq"]
    doomed = topics_to_reset(
        existing, declared, "triggerline-processor", topics_for("").emails_pattern()
    )
    assert doomed == sorted(
        [
            "outcomes",
            "emails.cart_abandonment",
            "emails.t1a2b3c",
            "emails.retry.30s",
            "emails.dlq",
            "triggerline-processor-profile-state-changelog",
        ]
    )


def test_a_namespaced_run_leaves_the_default_namespace_alone() -> None:
    existing = ["emails.cart_abandonment", "run1.emails.cart_abandonment", "run1.emails.left"]
    doomed = topics_to_reset(existing, [], "run1-processor", topics_for("run1.").emails_pattern())
    assert doomed == ["run1.emails.cart_abandonment", "run1.emails.left"]

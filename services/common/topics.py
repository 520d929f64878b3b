"""The topic declaration: the one place topic names, partitions and retention are written.

The local bootstrap (`triggerline topics create`), the tests and the Kubernetes manifests all
derive from `topics()`; code says `topics().triggers_raw.name`, never a literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Literal

from services.common.settings import TopicSettings, load

CleanupPolicy = Literal["delete", "compact", "compact,delete"]

_DAY = timedelta(days=1)
_CAMPAIGN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
_RESERVED = ("dlq", "retry")
_FIRST = "abcdefghijklmnopqrstuvwxyz0123456789"
_REST = _FIRST + "_-"


def _chars(allowed: str, without: str = "") -> str:
    """A POSIX bracket expression of `allowed` minus `without` ('-' last, so it is literal)."""
    kept = [c for c in allowed if c not in without]
    return "[" + "".join(c for c in kept if c != "-") + ("-" if "-" in kept else "") + "]"


def _after_prefix(word: str, i: int) -> str:
    """Names that start with word[:i] and are not `word` itself (POSIX ERE, no lookahead)."""
    if i == len(word):
        return f"{_chars(_REST)}+"
    differ = f"{_chars(_REST, word[i])}{_chars(_REST)}*"
    return f"({differ}|{word[i]}{_after_prefix(word, i + 1)})?"


def _any_name_except(words: tuple[str, ...]) -> str:
    """A campaign-name regex that matches every valid name except the given words."""
    firsts = "".join(sorted({w[0] for w in words}))
    parts = [f"{_chars(_FIRST, firsts)}{_chars(_REST)}*"]
    for first in firsts:
        group = [w for w in words if w[0] == first]
        assert len(group) == 1, "reserved words must not share a first letter"
        parts.append(f"{first}{_after_prefix(group[0], 1)}")
    return "|".join(parts)


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the platform must create it."""

    name: str
    partitions: int
    retention: timedelta | None  # None: keep forever (compacted topics)
    cleanup_policy: CleanupPolicy = "delete"
    description: str = ""
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        """Topic-level configuration as Kafka names it."""
        config = {"cleanup.policy": self.cleanup_policy, **self.extra_config}
        retention_ms = -1 if self.retention is None else int(self.retention.total_seconds() * 1000)
        config["retention.ms"] = str(retention_ms)
        return config


RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=30),
    timedelta(minutes=5),
    timedelta(minutes=30),
)


def delay_label(delay: timedelta) -> str:
    """30s, 5m, 2h: the suffix of a retry topic."""
    seconds = int(delay.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Topics:
    """Every fixed topic, plus the rule that names campaign result topics."""

    triggers_raw: TopicSpec
    triggers_dlq: TopicSpec
    triggers_unmatched: TopicSpec
    fetcher_pointers: TopicSpec
    processor_by_profile: TopicSpec
    emails_dlq: TopicSpec
    outcomes: TopicSpec
    prefix: str = ""
    email_partitions: int = 12
    email_retention: timedelta = 7 * _DAY

    def emails(self, campaign: str) -> TopicSpec:
        """The result topic of one campaign: `emails.<campaign>`."""
        if not _CAMPAIGN_NAME.match(campaign):
            raise ValueError(
                f"campaign name {campaign!r} must be lowercase letters, digits, '-' or '_'"
            )
        if campaign in _RESERVED:
            raise ValueError(f"campaign name {campaign!r} is reserved")
        return TopicSpec(
            f"{self.prefix}emails.{campaign}",
            self.email_partitions,
            self.email_retention,
            description=f"Email requests of campaign {campaign}, keyed by profile id.",
        )

    def emails_pattern(self, campaign_pattern: str | None = None) -> str:
        """A subscription regex for the result topics of every campaign (or of those matching
        `campaign_pattern`); consumers subscribed with it find campaigns added later.

        librdkafka compiles subscriptions as POSIX extended regexes, which have no lookahead,
        so the default spells out "any campaign name except `dlq` and `retry`". Campaign names
        hold no dots, so `emails.retry.<delay>` never matches.
        """
        start = "^" + re.sub(r"([.\[\](){}*+?|^$\\])", r"\\\1", self.prefix) + r"emails\."
        if campaign_pattern is None:
            return rf"{start}({_any_name_except(_RESERVED)})$"
        for word in _RESERVED:
            if re.fullmatch(campaign_pattern, word):
                raise ValueError(f"campaign pattern {campaign_pattern!r} matches {word!r}")
        return rf"{start}({campaign_pattern})$"

    def email_retries(self) -> tuple[TopicSpec, ...]:
        """Delay topics the mailer routes transient failures through, shortest first."""
        return tuple(
            TopicSpec(
                f"{self.prefix}emails.retry.{delay_label(delay)}",
                6,
                7 * _DAY,
                description=f"Email requests waiting {delay_label(delay)} before another attempt.",
            )
            for delay in RETRY_DELAYS
        )

    def fixed(self) -> tuple[TopicSpec, ...]:
        """Every topic that exists whatever the campaigns are."""
        return (
            self.triggers_raw,
            self.triggers_dlq,
            self.triggers_unmatched,
            self.fetcher_pointers,
            self.processor_by_profile,
            self.emails_dlq,
            self.outcomes,
            *self.email_retries(),
        )


def topics_for(prefix: str = "") -> Topics:
    """The declaration under a namespace prefix (`staging.` gives `staging.triggers.raw`).

    A prefix lets several environments, or isolated test runs, share one cluster.
    """
    return Topics(
        prefix=prefix,
        triggers_raw=TopicSpec(
            f"{prefix}triggers.raw",
            12,
            7 * _DAY,
            description="Every upstream DATA envelope, keyed by mcId; written in transactions.",
        ),
        triggers_dlq=TopicSpec(
            f"{prefix}triggers.dlq",
            3,
            30 * _DAY,
            description="Envelopes that cannot be decoded or validated; headers say why.",
        ),
        triggers_unmatched=TopicSpec(
            f"{prefix}triggers.unmatched",
            12,
            14 * _DAY,
            description="Triggers whose visitor has no profile yet; re-drivable.",
        ),
        fetcher_pointers=TopicSpec(
            f"{prefix}triggerline-fetcher-pointers",
            1,
            None,
            cleanup_policy="compact",
            description="The fetcher's upstream pointer (partition:offset), written in the "
            "same transaction as the messages.",
            extra_config={"min.cleanable.dirty.ratio": "0.1", "segment.ms": "3600000"},
        ),
        processor_by_profile=TopicSpec(
            f"{prefix}triggerline-processor-by-profile-repartition",
            12,
            1 * _DAY,
            description="Resolved triggers re-keyed by profile id, so a profile's state "
            "lives on one partition.",
        ),
        emails_dlq=TopicSpec(
            f"{prefix}emails.dlq",
            3,
            30 * _DAY,
            description="Email requests that failed every attempt or cannot be rendered.",
        ),
        outcomes=TopicSpec(
            f"{prefix}outcomes",
            12,
            30 * _DAY,
            description="Exactly one terminal outcome per trigger.",
        ),
    )


@cache
def topics() -> Topics:
    """The process-wide declaration, under this environment's topic prefix.

    TRIGGERLINE_TOPICS_PREFIX is read on the first call, not at import, and kept for the life
    of the process, which names the same topics from start to end; `topics.cache_clear()` makes
    the next call read it again.
    """
    return topics_for(load(TopicSettings).prefix)

"""Where processor decisions go: faust topics for requests, outcomes, dead letters and re-keying.

The adapter encodes and sends; it never decides. Sends are buffered by faust's producer, which
is flushed before every offset commit, so an acked input always has its outputs on the broker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.common.dlq import dead_letter_headers
from services.common.headers import X_SOURCE, X_TRIGGERLINE_RELEASE
from services.common.kafka import Headers
from services.common.models import EmailRequest, Outcome
from services.common.serde import email_request_serde, outcome_serde
from services.common.topics import topics

SERVICE = "processor"


@dataclass(frozen=True)
class Source:
    """Where a consumed record came from, for dead letters and outcome details."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: Headers

    @property
    def position(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def origin(self) -> str:
        """The triggers.raw position this record started from (stage 1 adds `x-source`)."""
        for name, value in reversed(self.headers):
            if name == X_SOURCE and value:
                return value.decode(errors="replace") if isinstance(value, bytes) else value
        return self.position

    @property
    def is_release_tick(self) -> bool:
        return any(name == X_TRIGGERLINE_RELEASE for name, _ in self.headers)


def source_of(message: Any) -> Source:
    """A faust `Message` as a `Source` (headers may come as a list or a mapping)."""
    raw_headers = message.headers or []
    items: Iterable[tuple[str, Any]] = (
        raw_headers.items() if isinstance(raw_headers, Mapping) else raw_headers
    )
    headers: Headers = [(str(k), bytes(v) if v is not None else b"") for k, v in items]
    timestamp = message.timestamp
    return Source(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(timestamp * 1000) if timestamp is not None else None,
        key=message.key,
        value=message.value,
        headers=headers,
    )


class Outputs:
    """The topics the processor writes, declared once on the faust app."""

    def __init__(self, app: Any, campaigns: Sequence[str], repartition_topic: str) -> None:
        def raw(name: str) -> Any:
            return app.topic(
                name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
            )

        self._outcomes = raw(topics().outcomes.name)
        self._dlq = raw(topics().triggers_dlq.name)
        self._unmatched = raw(topics().triggers_unmatched.name)
        self.by_profile = raw(repartition_topic)
        self._emails = {campaign: raw(topics().emails(campaign).name) for campaign in campaigns}

    async def outcome(self, outcome: Outcome) -> None:
        await self._outcomes.send(
            key=outcome.message_id.encode(), value=outcome_serde().encode(outcome.to_record())
        )

    async def dead_letter(self, source: Source, reason: str, error: BaseException | None) -> None:
        await self._dlq.send(
            key=source.key,
            value=source.value or b"",
            headers=self._failure_headers(source, reason, error),
        )

    async def unmatched(self, source: Source, reason: str) -> None:
        """The original record, re-drivable later to `triggers.raw` once the profile exists."""
        await self._unmatched.send(
            key=source.key,
            value=source.value or b"",
            headers=self._failure_headers(source, reason, None),
        )

    async def forward(self, profile_id: str, source: Source) -> None:
        """Re-key the original envelope by profile id, so its profile's state is local."""
        headers = [*source.headers, (X_SOURCE, source.position.encode())]
        await self.by_profile.send(
            key=profile_id.encode(), value=source.value or b"", headers=headers
        )

    async def email_request(self, request: EmailRequest, wait: bool = False) -> None:
        """Send a request; `wait` returns only once the broker has it (before a state change
        that would otherwise forget it if the worker died in between)."""
        sent = await self._emails[request.campaign].send(
            key=request.profile_id.encode(),
            value=email_request_serde().encode(request.to_record()),
        )
        if wait:
            await sent

    async def release_tick(self, profile_id: str) -> None:
        """Ask the owner of a profile's partition to release its due holds.

        Table writes must happen while handling an event of that partition (faust sends the
        changelog to the event's partition), so the timer sends a tick instead of writing.
        """
        await self.by_profile.send(
            key=profile_id.encode(), value=b"", headers=[(X_TRIGGERLINE_RELEASE, b"1")]
        )

    @staticmethod
    def _failure_headers(source: Source, reason: str, error: BaseException | None) -> Headers:
        return dead_letter_headers(
            service=SERVICE,
            reason=reason,
            error=error,
            source_topic=source.topic,
            source_partition=source.partition,
            source_offset=source.offset,
            source_timestamp_ms=source.timestamp_ms,
            original=source.headers,
        )

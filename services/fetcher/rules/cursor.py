"""Where one upstream partition stands: what is done, what is still being retried.

Adobe's pointer is one offset per partition. Ours also names the envelopes still awaiting a retry
(`retryPeriodSec`), because the stream moves on past them: the stored pointer resumes at the
oldest of them, and `next` says which later envelopes were already written, so a restart re-reads
the retried ones without writing their successors twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cursor:
    """`next`: the next offset to read; below it everything is done except `retrying`."""

    next: int
    retrying: frozenset[int] = field(default_factory=frozenset)

    @property
    def resume_at(self) -> int:
        """Where a new stream of this partition must start."""
        return min(self.retrying, default=self.next)

    def done(self, offset: int) -> bool:
        """Whether the envelope at `offset` was already written or dead-lettered."""
        return offset < self.next and offset not in self.retrying

    def advanced(self, offset: int) -> Cursor:
        """After handling the envelope at `offset` (written or dead-lettered)."""
        return Cursor(max(self.next, offset + 1), self.retrying - {offset})

    def retry(self, offset: int) -> Cursor:
        """After the envelope at `offset` failed and waits for a retry."""
        return Cursor(max(self.next, offset + 1), self.retrying | {offset})

    def encode(self) -> bytes:
        """The pointer record's value; `offset` keeps the one-number form readers know."""
        document: dict[str, object] = {"offset": self.resume_at}
        if self.retrying:
            document["next"] = self.next
            document["retrying"] = sorted(self.retrying)
        return json.dumps(document).encode()

    @classmethod
    def decode(cls, value: bytes) -> Cursor:
        document = json.loads(value)
        offset = int(document["offset"])
        return cls(
            int(document.get("next", offset)),
            frozenset(int(o) for o in document.get("retrying", ())),
        )

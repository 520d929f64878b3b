"""Upstream bytes -> envelope lines, with a bound on how much one line may hold in memory.

Adobe does not publish the consume stream's byte framing (its Livestream sibling sends one JSON
record per CRLF line), so lines end at LF, a trailing CR is the JSON's own whitespace, and blank
lines are keep-alives. A line longer than `max_line_bytes` is never buffered whole: from the bound
on, only its first bytes, its length and its SHA-256 are kept while the rest streams through,
and it comes out as an `Oversized` frame for the dead-letter topic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

HEAD_BYTES = 64 * 1024  # what an oversized line keeps for its dead letter


@dataclass(frozen=True)
class Oversized:
    """A line over the bound: its start, its true size and its digest."""

    head: bytes
    size: int
    sha256: str


Frame = bytes | Oversized


class LineFramer:
    """Splits a byte stream into lines; feed it chunks as they arrive."""

    def __init__(self, max_line_bytes: int) -> None:
        self._max = max_line_bytes
        self._pending = b""
        self._hash: hashlib._Hash | None = None  # set while discarding an oversized line
        self._head = b""
        self._size = 0

    @property
    def buffered(self) -> int:
        """Bytes held for a line not yet complete (never more than the bound)."""
        return len(self._pending)

    def feed(self, chunk: bytes) -> list[Frame]:
        frames: list[Frame] = []
        if self._hash is not None:
            end = chunk.find(b"\n")
            if end < 0:
                self._discard(chunk)
                return frames
            self._discard(chunk[:end])
            frames.append(self._finish_oversized())
            chunk = chunk[end + 1 :]
        if b"\n" not in chunk:
            self._pending += chunk
            if len(self._pending) > self._max:
                self._start_oversized()
            return frames
        *complete, rest = (self._pending + chunk).split(b"\n")
        for line in complete:
            # blank lines are keep-alives (isspace, unlike strip, copies nothing)
            if not line or line.isspace():
                continue
            frames.append(line if len(line) <= self._max else _oversized(line))
        self._pending = rest
        if len(rest) > self._max:
            self._start_oversized()
        return frames

    def remainder(self) -> bytes | Oversized | None:
        """What the stream ended inside of: a line with no newline yet, if any."""
        if self._hash is not None:
            return self._finish_oversized()
        if self._pending.strip():
            return self._pending
        return None

    def _start_oversized(self) -> None:
        self._hash = hashlib.sha256()
        self._head = b""
        self._size = 0
        self._discard(self._pending)
        self._pending = b""

    def _discard(self, data: bytes) -> None:
        assert self._hash is not None
        self._hash.update(data)
        self._size += len(data)
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]

    def _finish_oversized(self) -> Oversized:
        assert self._hash is not None
        frame = Oversized(self._head, self._size, self._hash.hexdigest())
        self._hash = None
        self._head = b""
        return frame


def _oversized(line: bytes) -> Oversized:
    return Oversized(line[:HEAD_BYTES], len(line), hashlib.sha256(line).hexdigest())

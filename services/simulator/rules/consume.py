"""Where a consume stream starts on each partition, and how its offsets travel in sync markers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Literal

Reset = Literal["earliest", "latest"]


class BadRequest(ValueError):
    """A consume or sync request the pipeline answers with 400; the message is the body."""


@dataclass(frozen=True)
class Start:
    """Where one partition's stream starts, and whether the reset policy decided it."""

    offset: int
    reset: bool


def parse_assign(text: str, partitions: int) -> dict[int, int | None]:
    """`0:12,3:40` -> {0: 12, 3: 40}: the next offset to read on each named partition.

    Kafka's special offsets `-1` (latest) and `-2` (earliest) mean "no stored offset": the
    partition starts where `reset` says. That is how a client covers every partition in `assign`
    before it has a pointer for each.
    """
    assigned: dict[int, int | None] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        partition_text, sep, offset_text = item.partition(":")
        try:
            partition, offset = int(partition_text), int(offset_text)
        except ValueError:
            raise BadRequest(f"assign item {item!r} is not <partition>:<offset>") from None
        if not sep or partition < 0 or offset < -2:
            raise BadRequest(f"assign item {item!r} is not <partition>:<offset>")
        if partition >= partitions:
            raise BadRequest(f"partition {partition} does not exist (0..{partitions - 1})")
        if partition in assigned:
            raise BadRequest(f"partition {partition} is assigned twice")
        assigned[partition] = offset if offset >= 0 else None
    if not assigned:
        raise BadRequest("assign names no partition")
    return assigned


def parse_reset(text: str | None) -> Reset:
    """The reset policy; upstream's default is `latest`."""
    if text in (None, "", "latest"):
        return "latest"
    if text == "earliest":
        return "earliest"
    raise BadRequest(f"reset must be earliest or latest, not {text!r}")


def start_offset(wanted: int | None, earliest: int, high: int, reset: Reset) -> Start:
    """The next offset to stream from one partition.

    `wanted` is the assigned or stored offset (None when there is none). It stands when it is
    still in the log (`earliest <= wanted <= high`, high being the next offset to be written);
    otherwise the reset policy applies, as upstream does for an expired offset.
    """
    if wanted is not None and earliest <= wanted <= high:
        return Start(wanted, reset=False)
    return Start(earliest if reset == "earliest" else high, reset=True)


def partition_for(mcid: str, partitions: int) -> int:
    """The partition of a visitor: stable across runs, so one visitor's triggers stay in order."""
    digest = hashlib.blake2b(mcid.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def encode_marker(group: str, offsets: dict[int, int]) -> str:
    """An opaque sync marker carrying the group and its next offsets."""
    document = {"g": group, "o": {str(p): o for p, o in sorted(offsets.items())}}
    return base64.urlsafe_b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()


def decode_marker(marker: str) -> tuple[str, dict[int, int]]:
    """The group and offsets of a marker this simulator issued; `BadRequest` otherwise."""
    try:
        document = json.loads(base64.urlsafe_b64decode(marker.strip().encode()))
        return str(document["g"]), {int(p): int(o) for p, o in document["o"].items()}
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        raise BadRequest("sync marker is not one this pipeline issued") from None

"""Which upstream partitions a fetcher replica and each of its workers own."""

from __future__ import annotations

import base64
import binascii
import json


def replica_partitions(partitions: int, replica: int, replicas: int) -> list[int]:
    """Partition p belongs to replica p mod replicas: replicas never overlap and cover all."""
    if not 0 <= replica < replicas:
        raise ValueError(f"replica index {replica} must be in [0, {replicas})")
    return [p for p in range(partitions) if p % replicas == replica]


def worker_partitions(owned: list[int], workers: int) -> list[list[int]]:
    """Spread owned partitions over at most `workers` workers, round robin; no empty worker."""
    groups = [owned[i::workers] for i in range(min(workers, len(owned)))]
    return [group for group in groups if group]


def marker_partitions(marker: str) -> frozenset[int] | None:
    """The partitions a SYNC marker names, when it can be read; `None` when it cannot.

    Adobe calls the marker opaque and publishes no format; it "encodes the partition offsets to
    commit". Our reading (an inference, see docs/operations.md) accepts the two encodings that
    says: the `assign` syntax (`0:12,1:40`) and base64 JSON holding a partition -> offset object
    (under `o`, `offsets` or at the top). Anything else is left unread rather than guessed.
    """
    text = marker.strip()
    if not text:
        return None
    if all(part.count(":") == 1 for part in text.split(",")):
        try:
            return frozenset(int(part.split(":")[0]) for part in text.split(","))
        except ValueError:
            pass
    try:
        document = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        return None
    if isinstance(document, dict):
        offsets = document.get("o", document.get("offsets", document))
        if isinstance(offsets, dict):
            try:
                return frozenset(int(p) for p in offsets)
            except ValueError:
                return None
    return None


def uncovered(seen: frozenset[int], partitions: int) -> list[int]:
    """Partitions upstream has that `0..partitions-1` (the configured count) leaves unread."""
    return sorted(p for p in seen if not 0 <= p < partitions)

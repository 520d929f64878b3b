"""Which upstream partitions a fetcher replica and each of its workers own."""

from __future__ import annotations


def replica_partitions(partitions: int, replica: int, replicas: int) -> list[int]:
    """Partition p belongs to replica p mod replicas: replicas never overlap and cover all."""
    if not 0 <= replica < replicas:
        raise ValueError(f"replica index {replica} must be in [0, {replicas})")
    return [p for p in range(partitions) if p % replicas == replica]


def worker_partitions(owned: list[int], workers: int) -> list[list[int]]:
    """Spread owned partitions over at most `workers` workers, round robin; no empty worker."""
    groups = [owned[i::workers] for i in range(min(workers, len(owned)))]
    return [group for group in groups if group]

"""Latency end to end and by stage, from the journeys' timestamps.

End to end is upstream `createTime` to acceptance at the SMTP sink. It splits into stages that
add up to it exactly:

| stage | from | to | what happens in it |
|---|---|---|---|
| fetcher | createTime | triggers.raw record | upstream stream, parse, Avro, produce |
| fetcher_commit | triggers.raw record | pointer record | wait for the transaction's commit |
| processor_resolve | pointer record | repartition record | fetch, decode, route, profile, re-key |
| processor_decide | repartition record | emails.<campaign> record | fetch, dedup, rules, emit |
| mailer | emails.<campaign> record | SMTP acceptance | poll and batch, claim, render, SMTP |

`mailer_record` (acceptance to the `sent` outcome) comes after the email is out, so it is
reported apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from bench.pipeline.records import Journey

STAGES: tuple[tuple[str, str, str], ...] = (
    ("fetcher", "created", "raw"),
    ("fetcher_commit", "raw", "committed"),
    ("processor_resolve", "committed", "resolved"),
    ("processor_decide", "resolved", "decided"),
    ("mailer", "decided", "accepted"),
)
AFTER = ("mailer_record", "accepted", "recorded")


def rank(ordered: Sequence[float], point: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    at = max(0, min(len(ordered) - 1, math.ceil(point / 100 * len(ordered)) - 1))
    return ordered[at]


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and max, in the values' unit, rounded to 0.1."""
    if not values:
        return {}
    ordered = sorted(values)
    points = {f"p{p:g}": rank(ordered, p) for p in (50, 95, 99)}
    return {**{k: round(v, 1) for k, v in points.items()}, "max": round(ordered[-1], 1)}


def complete(journeys: Sequence[Journey]) -> list[Journey]:
    """The journeys with every timestamp of the stage table."""
    names = {name for _, start, end in STAGES for name in (start, end)}
    return [j for j in journeys if all(getattr(j, name) is not None for name in names)]


def _stage(journey: Journey, start: str, end: str) -> float:
    return float(getattr(journey, end)) - float(getattr(journey, start))


def end_to_end(journey: Journey) -> float:
    assert journey.accepted is not None and journey.created is not None
    return journey.accepted - journey.created


def stage_table(journeys: Sequence[Journey], band: float = 1.0) -> dict[str, object]:
    """Where the time goes: each stage's own percentiles, and the average split of the triggers
    whose end-to-end latency lies at the median and at the p99 (within +-`band`/2 percentile
    points of it), so the columns add up to those latencies."""
    full = complete(journeys)
    if not full:
        return {}
    ordered = sorted(full, key=end_to_end)
    table: dict[str, object] = {
        "triggers": len(full),
        "per_stage_ms": {
            name: summary([_stage(j, start, end) for j in full]) for name, start, end in STAGES
        },
    }
    recorded = [j for j in full if j.recorded is not None]
    table["per_stage_ms"][AFTER[0]] = summary(  # type: ignore[index]
        [_stage(j, AFTER[1], AFTER[2]) for j in recorded]
    )
    for point in (50, 99):
        low = max(0, math.floor((point - band / 2) / 100 * len(ordered)))
        high = min(len(ordered), max(low + 1, math.ceil((point + band / 2) / 100 * len(ordered))))
        sample = ordered[low:high]
        split = {
            name: round(sum(_stage(j, start, end) for j in sample) / len(sample), 1)
            for name, start, end in STAGES
        }
        table[f"split_at_p{point}_ms"] = {
            "end_to_end": round(sum(end_to_end(j) for j in sample) / len(sample), 1),
            "triggers": len(sample),
            **split,
        }
    return table


def recovery_after(
    journeys: Sequence[Journey], event: float, until: float, threshold_ms: float = 1000.0
) -> dict[str, float | None]:
    """How long after `event` (epoch ms) the processors' lag stayed at or above `threshold_ms`.

    The lag at a moment is how long the oldest trigger visible on `triggers.raw` (committed)
    and not yet decided has waited. It is at or above the threshold at moment w when a trigger
    committed at or before w - threshold was decided after w; so the last such moment before
    `until` is the latest decision, before `until`, of a trigger that took longer than the
    threshold. `max_lag_s` is the longest wait of a trigger decided in the window.
    """
    last_bad: float | None = None
    worst = 0.0
    for j in journeys:
        if j.committed is None or j.decided is None:
            continue
        if j.decided < event or j.committed >= until:
            continue
        took = j.decided - j.committed
        worst = max(worst, took)
        if took >= threshold_ms:
            moment = min(j.decided, until)
            last_bad = moment if last_bad is None else max(last_bad, moment)
    return {
        "seconds_to_lag_under_1s": 0.0 if last_bad is None else round((last_bad - event) / 1000, 2),
        "max_lag_s": round(worst / 1000, 2),
    }

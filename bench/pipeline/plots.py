"""The benchmark's pictures: throughput and latency percentiles over time, latency by stage."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from bench.pipeline.records import Journey, SinkMail
from bench.pipeline.stages import STAGES, end_to_end, rank


@dataclass(frozen=True)
class Span:
    """A phase on the time axis (epoch ms)."""

    name: str
    start: float
    end: float


def _shade(axis: Any, spans: Sequence[Span], origin: float) -> None:
    for number, span in enumerate(spans):
        left, right = (span.start - origin) / 1000, (span.end - origin) / 1000
        axis.axvspan(left, right, color="grey" if number % 2 else "silver", alpha=0.25, lw=0)
        axis.text(left, 1.0, f" {span.name}", transform=axis.get_xaxis_transform(), va="top")


def throughput(
    path: Path, journeys: Sequence[Journey], mail: Sequence[SinkMail], spans: Sequence[Span]
) -> None:
    """Triggers created upstream and emails accepted at the sink, per second."""
    origin = min(span.start for span in spans)
    offered = Counter(int((j.created - origin) // 1000) for j in journeys if j.created is not None)
    delivered = Counter(int((m.at - origin) // 1000) for m in mail)
    last = max([*offered, *delivered, 0])
    seconds = list(range(last + 1))
    figure, axis = plt.subplots(figsize=(11, 4))
    axis.plot(seconds, [offered[s] for s in seconds], label="created upstream", lw=0.8)
    axis.plot(seconds, [delivered[s] for s in seconds], label="accepted by SMTP", lw=0.8)
    _shade(axis, spans, origin)
    axis.set_xlabel("seconds since the first phase started")
    axis.set_ylabel("per second")
    axis.set_title("Throughput: triggers in, emails out")
    axis.legend(loc="upper left", bbox_to_anchor=(0, 0.9))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def latency(
    path: Path, journeys: Sequence[Journey], spans: Sequence[Span], window: int = 5
) -> None:
    """End-to-end latency percentiles of the triggers created in each `window` seconds."""
    origin = min(span.start for span in spans)
    buckets: dict[int, list[float]] = {}
    for j in journeys:
        if j.created is not None and j.accepted is not None:
            buckets.setdefault(int((j.created - origin) // (window * 1000)), []).append(
                end_to_end(j)
            )
    keys = sorted(buckets)
    figure, axis = plt.subplots(figsize=(11, 4))
    for point in (50, 95, 99):
        values = [rank(sorted(buckets[k]), point) / 1000 for k in keys]
        axis.plot([k * window for k in keys], values, label=f"p{point}", lw=0.9)
    axis.plot(
        [k * window for k in keys], [max(buckets[k]) / 1000 for k in keys], label="max", lw=0.5
    )
    _shade(axis, spans, origin)
    axis.set_yscale("log")
    axis.set_xlabel("seconds since the first phase started (by upstream createTime)")
    axis.set_ylabel("seconds, createTime to SMTP acceptance")
    axis.set_title(f"End-to-end latency, per {window} s of triggers")
    axis.legend(loc="upper left", bbox_to_anchor=(0, 0.9))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def stages(path: Path, tables: dict[str, dict[str, Any]]) -> None:
    """Per phase, the average stage split of the median trigger (left) and of the p99 (right)."""
    phases = [p for p, table in tables.items() if table.get("split_at_p50_ms")]
    figure, axes = plt.subplots(1, 2, figsize=(12, 0.5 * len(phases) + 1.8), sharey=True)
    for axis, point in zip(axes, (50, 99), strict=True):
        left = [0.0] * len(phases)
        for name, _, _ in STAGES:
            widths = [
                max(0.0, float(tables[p][f"split_at_p{point}_ms"][name])) / 1000 for p in phases
            ]
            axis.barh(phases, widths, left=left, label=name)
            left = [a + b for a, b in zip(left, widths, strict=True)]
        axis.set_xlabel("seconds")
        axis.set_title(f"the p{point} trigger")
    axes[0].invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(STAGES), fontsize="small")
    figure.suptitle("Where the time goes, createTime to SMTP acceptance, by stage")
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)

"""The whole pipeline, measured from outside: simulated upstream to the SMTP sink, on the real
broker, with every service as its own process (`triggerline stack`'s process management).

Phases, one after another, each drained before the next:

* `1x`, `2x`, `4x`: triggers paced at 1M/h (278/s), twice and four times that, arrivals spread
  evenly (the simulator appends one envelope every 1/rate s on an absolute schedule);
* `backlog`: the fetcher stops, upstream piles up `--backlog` triggers, the fetcher starts again;
* `scale`: 1M/h while the processors go from 1 to 3 and then to 2; the time from each scale
  event until the processors' lag is back under 1 s is reported.

Every trigger comes from a shopper of its own (shopper 0, 1, 2... in turn), so trigger `i` must
become exactly one email to `shopper<i>@example.com`: lost and duplicate counts come from the
SMTP sink's journal, by recipient and by Message-ID. Latency is upstream `createTime` to SMTP
acceptance; the stage table splits it with the timestamps the pipeline already writes (see
bench/pipeline/stages.py). CPU is per process from /proc, the broker's JVM included (shared with
whatever else uses it); peak RSS per process is sampled once a second.

Writes bench/results/e2e-<timestamp>.json and three PNG plots beside it.

    make bench                                    # the full run (about 25 minutes here)
    .venv/bin/python -m bench.e2e --quick         # 15 s phases, a 10,000-trigger backlog
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, write_result  # noqa: E402
from bench.pipeline import plots  # noqa: E402
from bench.pipeline.accounting import reconcile, shopper_number  # noqa: E402
from bench.pipeline.harness import Pipeline, RunConfig, local_broker_pid  # noqa: E402
from bench.pipeline.records import Journey, RunRecords, read_run  # noqa: E402
from bench.pipeline.sampling import BROKER_JIT, Sampler, Usage, cpu_between  # noqa: E402
from bench.pipeline.stages import end_to_end, recovery_after, stage_table, summary  # noqa: E402
from services.common.kafka import ensure_topics, make_admin  # noqa: E402
from services.common.pipeline_config import load_pipeline_config  # noqa: E402
from services.common.settings import KafkaSettings, PipelineConfigSettings, load  # noqa: E402
from services.common.topics import TopicSpec  # noqa: E402

NOMINAL = 1_000_000 / 3600  # 1M triggers an hour


@dataclass
class Phase:
    """One phase as it ran: its triggers are numbers [first, end) of the run."""

    name: str
    rate: float  # offered per second; 0 for the backlog
    first: int
    end: int
    started: float  # epoch ms: generation began (backlog: the fetcher started again)
    generated: float = 0.0  # epoch ms: the last trigger was appended upstream
    drained: float = 0.0  # epoch ms: the sink had every email (or the deadline passed)
    cpu_s: dict[str, float] = field(default_factory=dict)
    peak_rss: dict[str, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


class Bench:
    def __init__(self, pipeline: Pipeline, drain_timeout: float) -> None:
        self.pipeline = pipeline
        self.drain_timeout = drain_timeout
        self.generated = 0
        self.phases: list[Phase] = []
        self.sampler = Sampler(self._pids, local_broker_pid())

    def _pids(self) -> dict[str, int]:
        return {
            label: child.process.pid
            for label, child in self.pipeline.labels().items()
            if child.alive and child.process is not None
        }

    def _begin(self, name: str, rate: float, count: int) -> tuple[Phase, Usage]:
        before = self.sampler.usage(reset_peaks=True)
        phase = Phase(name, rate, self.generated, self.generated + count, time.time() * 1000)
        print(f"phase {name}: {count} triggers at {rate or 'unpaced'}/s", flush=True)
        return phase, before

    def _finish(self, phase: Phase, before: Usage) -> None:
        reached = self.pipeline.wait_delivered(phase.end, self.drain_timeout, settle=2.0)
        phase.drained = time.time() * 1000
        after = self.sampler.usage()
        phase.cpu_s = cpu_between(before, after)
        phase.peak_rss = after.peak_rss
        self.generated = phase.end
        self.phases.append(phase)
        print(f"  drained: {reached}/{phase.end} emails at the sink", flush=True)

    def paced(self, name: str, rate: float, seconds: float) -> None:
        count = round(rate * seconds)
        phase, before = self._begin(name, rate, count)
        self.pipeline.generate(count, rate)
        self.pipeline.wait_generated(phase.end, seconds * 2 + 60)
        phase.generated = time.time() * 1000
        self._finish(phase, before)

    def backlog(self, count: int) -> None:
        fetcher = self.pipeline.child("fetcher")
        fetcher.stop()
        self.pipeline.generate(count, 0)
        self.pipeline.wait_generated(self.generated + count, 600)
        phase, before = self._begin("backlog", 0, count)
        phase.generated = phase.started
        port = self.pipeline.options.ports["fetcher"]
        self.pipeline.restart(fetcher, f"http://127.0.0.1:{port}/healthz")
        self._finish(phase, before)

    def scale(self, seconds: float) -> None:
        """1 processor for `seconds`, 3 for `seconds`, then 2 for `seconds`, at 1M/h."""
        count = round(NOMINAL * seconds * 3)
        phase, before = self._begin("scale", NOMINAL, count)
        self.pipeline.generate(count, NOMINAL)
        for processors, at in ((3, 1), (2, 2)):
            time.sleep(max(0.0, phase.started / 1000 + seconds * at - time.time()))
            issued = time.time() * 1000
            while len([p for p in self.pipeline.processors if p.alive]) < processors:
                self.pipeline.add_processor()
            while len([p for p in self.pipeline.processors if p.alive]) > processors:
                self.pipeline.retire_processor()
            done = time.time() * 1000
            phase.events.append({"processors": processors, "at": issued, "done": done})
            print(f"  {processors} processors ({(done - issued) / 1000:.1f} s)", flush=True)
        self.pipeline.wait_generated(phase.end, seconds * 6 + 60)
        phase.generated = time.time() * 1000
        self._finish(phase, before)


def raw_kafka_tps(
    kafka: KafkaSettings, prefix: str, payloads: list[tuple[bytes | None, bytes]]
) -> dict[str, float]:
    """Produce the run's own triggers.raw payloads to a scratch topic with confluent-kafka
    (defaults, 12 partitions, acks=all) and consume them back: Kafka's ceiling for this data."""
    if not payloads:
        return {}
    topic = f"{prefix}raw-baseline"
    ensure_topics(make_admin(kafka), [TopicSpec(topic, 12, timedelta(hours=1))])
    bootstrap = kafka.bootstrap_servers
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    started = time.perf_counter()
    for key, value in payloads:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)
    produced = time.perf_counter()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"e2e-raw-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 120
    while seen < len(payloads) and time.monotonic() < deadline:
        seen += sum(1 for m in consumer.consume(5000, 0.5) if not m.error())
    finished = time.perf_counter()
    consumer.close()
    return {
        "records": len(payloads),
        "mean_bytes": round(sum(len(v) for _, v in payloads) / len(payloads)),
        "produce_tps": round(len(payloads) / (produced - started)),
        "consume_tps": round(seen / (finished - produced)),
        "raw_kafka_tps": round(seen / (finished - started)),
    }


def phase_result(
    phase: Phase, records: RunRecords, journeys: list[Journey], raw: dict[str, float]
) -> dict[str, Any]:
    mine = [j for j in journeys if phase.first <= shopper_number(j) < phase.end]
    done = [j for j in mine if j.accepted is not None and j.created is not None]
    counts = reconcile(phase.first, phase.end, records.mail, journeys)
    triggers = phase.end - phase.first
    first_created = min((j.created for j in done if j.created), default=phase.started)
    last_accepted = max((j.accepted for j in done if j.accepted), default=phase.drained)
    span_from = phase.started if phase.name == "backlog" else first_created
    throughput = len(done) / max(0.001, (last_accepted - span_from) / 1000)
    generation_s = max(0.001, (phase.generated - phase.started) / 1000)
    result: dict[str, Any] = {
        "phase": phase.name,
        "triggers": triggers,
        "offered_tps": round(phase.rate, 1) if phase.rate else None,
        "offered_measured_tps": round(triggers / generation_s, 1) if phase.rate else None,
        "achieved_tps": round(throughput, 1),
        "throughput_tps": round(throughput, 1),
        "raw_kafka_tps": raw.get("raw_kafka_tps"),
        "ratio_to_raw_kafka": round(throughput / raw["raw_kafka_tps"], 4) if raw else None,
        "latency_ms": summary([end_to_end(j) for j in done]),
        "lost": counts.lost,
        "duplicate_emails": counts.duplicate_emails,
        "duplicate_message_ids": counts.duplicate_message_ids,
        "outcomes": counts.outcomes,
        "exactly_once": counts.exactly_once,
        "cpu_ms_per_trigger": {
            label: round(seconds * 1000 / triggers, 3) for label, seconds in phase.cpu_s.items()
        },
        # without the broker's JIT compiler threads, busy after its start whatever the load
        "cpu_ms_per_trigger_total": round(
            sum(s for label, s in phase.cpu_s.items() if label != BROKER_JIT) * 1000 / triggers, 3
        ),
        "peak_rss_mb": {label: round(b / 2**20, 1) for label, b in phase.peak_rss.items()},
        "arrivals": arrivals(mine) if phase.rate else None,
        "stages": stage_table(done),
        "seconds": round((phase.drained - phase.started) / 1000, 1),
    }
    if phase.events:
        ends = [e["at"] for e in phase.events[1:]] + [phase.generated]
        result["scale_events"] = [
            {
                "processors": event["processors"],
                "at_s": round((event["at"] - phase.started) / 1000, 1),
                "processes_ready_after_s": round((event["done"] - event["at"]) / 1000, 1),
                **recovery_after(mine, event["at"], until),
            }
            for event, until in zip(phase.events, ends, strict=True)
        ]
    return result


def arrivals(journeys: list[Journey]) -> dict[str, float]:
    """How evenly triggers arrived upstream: counts per 100 ms of createTime."""
    created = sorted(j.created for j in journeys if j.created is not None)
    if len(created) < 2:
        return {}
    first = created[0]
    buckets = [0] * (int((created[-1] - first) // 100) + 1)
    for at in created:
        buckets[int((at - first) // 100)] += 1
    mean = sum(buckets) / len(buckets)
    deviation = (sum((b - mean) ** 2 for b in buckets) / len(buckets)) ** 0.5
    return {
        "per_100ms_mean": round(mean, 2),
        "per_100ms_max": max(buckets),
        "per_100ms_stdev": round(deviation, 2),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60, help="length of each paced phase")
    parser.add_argument("--backlog", type=int, default=100_000, help="triggers in the backlog")
    parser.add_argument("--scale-seconds", type=float, default=40, help="each processor count")
    parser.add_argument("--quick", action="store_true", help="15 s phases, 10,000 backlog")
    parser.add_argument("--bootstrap", default=os.environ.get("TRIGGERLINE_TEST_BOOTSTRAP"))
    parser.add_argument("--database-url", help="instead of the stack's SQLite file")
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--note", default="", help="a remark stored with the result")
    args = parser.parse_args(argv)
    # A stopped benchmark still stops its stack (the `finally` below) and deletes its topics.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    if args.quick:
        args.seconds, args.backlog, args.scale_seconds = 15, 10_000, 15
    bootstrap = args.bootstrap or "127.0.0.1:19092"
    rates = {"1x": NOMINAL, "2x": 2 * NOMINAL, "4x": 4 * NOMINAL}
    shoppers = (
        round(NOMINAL * 10)
        + sum(round(r * args.seconds) for r in rates.values())
        + args.backlog
        + round(NOMINAL * args.scale_seconds * 3)
    )
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    load_start = os.getloadavg()
    (ROOT / "var").mkdir(exist_ok=True)  # a fresh clone has none yet
    with tempfile.TemporaryDirectory(prefix="e2e-", dir=ROOT / "var") as var:
        pipeline = Pipeline(
            RunConfig(shoppers, Path(var), bootstrap, database_url=args.database_url)
        )
        print(f"seeding {shoppers} shoppers and starting the stack in {var}", flush=True)
        bench = Bench(pipeline, args.drain_timeout)
        try:
            pipeline.start()
            bench.sampler.start()
            bench.paced("warmup", NOMINAL, 10)
            for name, rate in rates.items():
                bench.paced(name, rate, args.seconds)
            bench.backlog(args.backlog)
            bench.scale(args.scale_seconds)
        except BaseException:
            bench.sampler.stop()
            pipeline.stop()
            pipeline.delete_topics()
            raise
        bench.sampler.stop()
        pipeline.stop()
        load_end = os.getloadavg()
        campaigns = sorted(load_pipeline_config(load(PipelineConfigSettings).config).campaigns)
        print("reading the run back from its topics and the sink's journal", flush=True)
        records = read_run(
            bootstrap,
            pipeline.topics,
            campaigns,
            pipeline.env["TRIGGERLINE_FETCHER_CONSUMER"],
            pipeline.journal,
        )
        raw = raw_kafka_tps(pipeline.kafka, pipeline.prefix, records.payload_sample)
        pipeline.delete_topics()
    journeys = list(records.journeys.values())
    results = [phase_result(p, records, journeys, raw) for p in bench.phases]
    name = f"e2e-{stamp}" + ("-quick" if args.quick else "")
    spans = [plots.Span(p.name, p.started, p.drained) for p in bench.phases]
    pictures = {
        "throughput": RESULTS / f"{name}-throughput.png",
        "latency": RESULTS / f"{name}-latency.png",
        "stages": RESULTS / f"{name}-stages.png",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    plots.throughput(pictures["throughput"], journeys, records.mail, spans)
    plots.latency(pictures["latency"], journeys, spans)
    plots.stages(pictures["stages"], {r["phase"]: r["stages"] for r in results if r["stages"]})
    total = reconcile(0, bench.generated, records.mail, journeys)
    write_result(
        name,
        {
            "machine_load": {"loadavg_start": load_start, "loadavg_end": load_end},
            "note": args.note,
            "setup": {
                "processors": "1 (2-3 in the scale phase)",
                "database": "postgresql" if args.database_url else "sqlite (the stack's own)",
                "mix": "the simulator's realistic variability (make run's); distinct shoppers; "
                "cart 85%, browse and search abandonment the rest",
                "broker": f"{bootstrap}, shared with whatever else runs on this machine",
            },
            "results": results,
            "total": asdict(total) | {"exactly_once": total.exactly_once},
            "raw_kafka": raw,
            "retry_topic_records": records.retry_records,
            "email_dlq_records": records.email_dlq_records,
            "plots": {k: str(v.relative_to(ROOT)) for k, v in pictures.items()},
        },
    )
    return 0 if total.exactly_once else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

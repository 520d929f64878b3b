"""Engine comparison: what one process of faust-streaming and of Quix Streams moves here.

The processor's throughput and latency targets are out of faust's reach on this machine
(docs/operations.md); this measures, in one run, how far another engine built for the job gets
with the same triggers, broker and producer settings:

* backlog: N pre-loaded triggers forwarded by one process (faust agent; Quix Streams; Quix
  Streams with an Avro decode and a RocksDB state check per record). The rate is first to last
  output by the reader's clock: Quix keeps the input's timestamp on its outputs.
* paced: one process forwards triggers offered at each rate; CPU per record from /proc.

Quix Streams is not a project dependency; give a Python that has it:

    python3.11 -m venv /tmp/qx && /tmp/qx/bin/pip install quixstreams==3.28.1 fastavro==1.13.1
    .venv/bin/python -m bench.engine_comparison --quix-python /tmp/qx/bin/python
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROOT, cpu_seconds, read_stamps, write_result
from bench.processor_throughput import OWNED, cleanup, make_namespace, new_app_id, produce
from services.common.kafka import ensure_topics, make_admin
from services.common.settings import KafkaSettings
from services.common.topics import TopicSpec

Command = Callable[[str, str, str, str], list[str]]


def engines(bootstrap: str, quix_python: str) -> dict[str, Command]:
    """Forwarder command lines by name: (app id, source, sink, data dir) -> argv."""

    def faust(app: str, source: str, sink: str, data: str) -> list[str]:
        return [sys.executable, "-m", "bench.faust_passthrough", app, bootstrap, source, sink, data]

    def quix(mode: str) -> Command:
        def command(app: str, source: str, sink: str, data: str) -> list[str]:
            OWNED.append(f"changelog__{app}")  # Quix's state changelog topics
            return [quix_python, "-m", "bench.quix_passthrough", app, bootstrap, source, sink,
                    data, mode]  # fmt: skip

        return command

    return {"faust": faust, "quix": quix("plain"), "quix_decode_and_state": quix("stateful")}


def arrivals(bootstrap: str, topic: str, count: int, deadline: float) -> list[float]:
    """The reader's clock when each of the first `count` records of `topic` arrived."""
    return read_stamps(bootstrap, topic, count, deadline, lambda _: time.monotonic())


def sink_for(bootstrap: str, prefix: str, name: str) -> str:
    topic = f"{prefix}compare.{name}"
    admin = make_admin(KafkaSettings(bootstrap_servers=bootstrap))
    ensure_topics(admin, [TopicSpec(topic, 12, None)])
    return topic


def backlog(bootstrap: str, root: Path, count: int, commands: dict[str, Command]) -> dict[str, Any]:
    ns = make_namespace(bootstrap, root, "backlog", 5000)
    produce(bootstrap, ns, count)
    rates: dict[str, Any] = {}
    for name, command in commands.items():
        sink = sink_for(bootstrap, ns.prefix, name)
        argv = command(new_app_id(), ns.topics.triggers_raw.name, sink, str(root / name))
        process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
        try:
            seen = arrivals(bootstrap, sink, count, deadline=max(120.0, count / 100))
        finally:
            process.terminate()
            process.wait(30)
        span = max(seen) - min(seen) if len(seen) > 1 else float("nan")
        rates[name] = {"records": len(seen), "per_s_first_to_last_output": round(len(seen) / span)}
    return rates


def paced(
    bootstrap: str, root: Path, rate: float, seconds: float, name: str, command: Command
) -> dict[str, Any]:
    ns = make_namespace(bootstrap, root, f"paced-{name}-{rate:.0f}", 100)
    sink = sink_for(bootstrap, ns.prefix, name)
    argv = command(new_app_id(), ns.topics.triggers_raw.name, sink, str(root / f"{name}-{rate}"))
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        produce(bootstrap, ns, 50)
        if len(arrivals(bootstrap, sink, 50, deadline=90)) < 50:
            raise RuntimeError(f"{name} never forwarded its warm-up records")
        before = cpu_seconds(process.pid)
        sent = produce(bootstrap, ns, int(rate * seconds), rate)
        time.sleep(1)  # the last records' processing
        spent = cpu_seconds(process.pid) - before
    finally:
        process.terminate()
        process.wait(30)
    return {
        "offered_per_s": rate,
        "cpu_ms_per_record": round(spent * 1000 / len(sent), 2),
        "cores": round(spent / (seconds + 1), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--bootstrap", default=os.environ.get("TRIGGERLINE_TEST_BOOTSTRAP", "127.0.0.1:19092")
    )
    parser.add_argument("--quix-python", required=True, help="a Python with quixstreams")
    parser.add_argument("--count", type=int, default=20_000, help="pre-loaded triggers")
    parser.add_argument("--rates", default="100,278", help="paced rates (records/s)")
    parser.add_argument("--paced-seconds", type=float, default=15)
    args = parser.parse_args()
    commands = engines(args.bootstrap, args.quix_python)
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        root = Path(tmp)
        rates = backlog(args.bootstrap, root, args.count, commands)
        costs = {
            name: [
                paced(args.bootstrap, root, float(rate), args.paced_seconds, name, commands[name])
                for rate in args.rates.split(",")
            ]
            for name in ("faust", "quix")
        }
    cleanup(args.bootstrap)
    write_result(
        "engine_comparison",
        {
            "backlog_one_hop": rates,
            "paced_one_hop": costs,
            "notes": "one process per engine on this machine's cores, shared with the broker "
            "and this benchmark; faust with the processor's producer settings and logging, "
            "Quix Streams at-least-once with linger 5 ms; forwarders only, so the processor's "
            "own cost comes on top (two hops, lookups, rules)",
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

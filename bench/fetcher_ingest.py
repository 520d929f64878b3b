"""Fetcher ingest: envelopes/s from the simulator into committed `triggers.raw`.

Beside it, in the same run, a raw confluent-kafka producer sends the same Avro payloads (no
HTTP, no transactions): the ratio says what the fetcher's exactly-once path costs. The steps no
fetcher can skip (parse, Avro encode, transactional produce, and the broker's share of that
produce) are also timed apart on the same envelopes: their sum is the floor under the rate these
cores allow, whatever the threading around them. The broker's JVM compiler threads are reported
apart: a broker started minutes before spends whole cores compiling Kafka's own code.

    .venv/bin/python -m bench.fetcher_ingest --envelopes 150000 --threads 1 --replicas 2
    .venv/bin/python -m bench.fetcher_ingest --envelopes 150000 --threads 1 --replicas 2 \
        --flush-count 5000
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from confluent_kafka import Producer

from bench.common import ROOT, cpu_seconds, free_port, jvm_cpu_seconds, write_result
from services.common.headers import MESSAGE_ID, UPSTREAM_OFFSET, UPSTREAM_PARTITION, UPSTREAM_TOPIC
from services.common.kafka import ensure_topics, make_admin
from services.common.runtime import freeze_startup_heap
from services.common.serde import envelope_serde
from services.common.settings import KafkaSettings
from services.common.topics import TopicSpec, topics_for
from services.fetcher.envelopes import Data, parse_envelope
from services.fetcher.transaction import POLL_EVERY, make_ingest_producer
from services.simulator.generator import Mix, TriggerGenerator


def raw_produce(
    settings: KafkaSettings, payloads: list[tuple[bytes, bytes]], broker_pid: int | None
) -> dict[str, Any]:
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    ensure_topics(make_admin(settings), [TopicSpec(topic, 12, None)])
    producer = Producer(
        {
            **settings.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
        }
    )
    broker = Broker(broker_pid)
    started, cpu_started = time.perf_counter(), time.process_time()
    for key, value in payloads:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started  # librdkafka's threads included
    make_admin(settings).delete_topics([topic])
    return {"envelopes": len(payloads), "seconds": round(elapsed, 3),
            "per_second": round(len(payloads) / elapsed),
            "cpu_ms_per_envelope": round(cpu * 1000 / len(payloads), 4),
            **broker.spent(len(payloads))}  # fmt: skip


class Broker:
    """CPU a local broker spends from now on, its JIT compiler threads apart."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.start = jvm_cpu_seconds(pid) if pid else None

    def spent(self, envelopes: int) -> dict[str, float]:
        if not self.pid or self.start is None:
            return {}
        now = jvm_cpu_seconds(self.pid)
        return {
            "broker_cpu_ms_per_envelope": round(
                (now["work"] - self.start["work"]) * 1000 / envelopes, 4
            ),
            # Compiling Kafka's code keeps a young broker busy for minutes, whatever the load.
            "broker_jit_cpu_ms_per_envelope": round(
                (now["jit"] - self.start["jit"]) * 1000 / envelopes, 4
            ),
        }


def envelope_lines(count: int, seed: int) -> list[bytes]:
    """`count` generated DATA envelopes as the pipeline streams them (one JSON line each)."""
    generator = TriggerGenerator(Mix(), seed)
    now = int(time.time() * 1000)
    lines = []
    for offset in range(count):
        document = generator.next(now).envelope
        assert document is not None
        document.update(
            {"topic": "triggers", "partition": offset % 15, "offset": offset, "createTime": now}
        )
        lines.append(json.dumps(document).encode())
    return lines


def payloads(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    """The Avro records the fetcher produces for those envelopes, with their keys."""
    serde = envelope_serde()
    out = []
    for line in lines:
        parsed = parse_envelope(line)
        assert isinstance(parsed, Data)
        out.append((parsed.key.encode(), serde.encode(parsed.record)))
    return out


def hot_path(
    settings: KafkaSettings, lines: list[bytes], broker_pid: int | None, flush_count: int
) -> dict[str, Any]:
    """CPU per envelope of each step the fetcher cannot skip, measured apart on the same data:
    the floor under its rate whatever the threading, HTTP reading or bookkeeping around them."""
    serde = envelope_serde()

    records = [envelope for envelope in map(parse_envelope, lines) if isinstance(envelope, Data)]
    values = [serde.encode(envelope.record) for envelope in records]
    # The inputs stay out of the collector's reach, as a service's start-up heap does: a full
    # collection walking these 50,000 records would be charged to the steps measured.
    freeze_startup_heap()

    def per_envelope(step: Callable[[], None]) -> float:
        started = time.process_time()
        step()
        return round((time.process_time() - started) * 1e6 / len(lines), 1)

    def parse_all() -> None:
        for line in lines:
            parse_envelope(line)

    def encode_all() -> None:
        for envelope in records:
            serde.encode(envelope.record)

    parse_us = per_envelope(parse_all)
    encode_us = per_envelope(encode_all)

    topic = f"bench-txn-{uuid.uuid4().hex[:8]}"
    ensure_topics(make_admin(settings), [TopicSpec(topic, 12, None)])
    producer = make_ingest_producer(settings, f"bench-{topic}", timedelta(seconds=5))
    producer.init_transactions(30)
    broker = Broker(broker_pid)

    def produce_in_transactions() -> None:
        producer.begin_transaction()
        for sent, (envelope, value) in enumerate(zip(records, values, strict=True), 1):
            headers: list[tuple[str, str | bytes | None]] = [
                (UPSTREAM_TOPIC, b"triggers"),
                (UPSTREAM_PARTITION, str(envelope.partition).encode()),
                (UPSTREAM_OFFSET, str(envelope.offset).encode()),
                (MESSAGE_ID, envelope.message_id.encode()),
            ]
            producer.produce(topic, value=value, key=envelope.key.encode(), headers=headers)
            if sent % POLL_EVERY == 0:
                producer.poll(0)
            if sent % flush_count == 0:  # pointerFlushMessageCount
                producer.commit_transaction(30)
                producer.begin_transaction()
        producer.commit_transaction(30)

    produce_us = per_envelope(produce_in_transactions)
    spent = broker.spent(len(records))
    gc.unfreeze()
    make_admin(settings).delete_topics([topic])
    return {
        "envelopes": len(lines),
        "parse_envelope_us": parse_us,
        "avro_encode_us": encode_us,
        "transactional_produce_us": produce_us,
        **{key.replace("_ms_", "_us_").replace("cpu_", ""): round(value * 1000, 1)
           for key, value in spent.items()},
    }  # fmt: skip


def fetcher_run(
    settings: KafkaSettings,
    count: int,
    seed: int,
    threads: int,
    replicas: int,
    broker_pid: int | None = None,
    flush_count: int = 1000,
) -> dict[str, Any]:
    sim_port, auth_port = free_port(), free_port()
    status_ports = [free_port() for _ in range(replicas)]
    run = uuid.uuid4().hex[:8]
    secret, fetcher_secret = uuid.uuid4().hex, uuid.uuid4().hex
    prefix = f"bench-{run}."
    ensure_topics(make_admin(settings), topics_for(prefix).fixed())
    env = {
        **os.environ,
        "TRIGGERLINE_LOG_LEVEL": "WARNING",
        "TRIGGERLINE_TOPICS_PREFIX": prefix,
        "TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "TRIGGERLINE_SIMULATOR_PORT": str(sim_port),
        "TRIGGERLINE_SIMULATOR_CLIENT_SECRET": secret,
        "TRIGGERLINE_SIMULATOR_RETENTION_MESSAGES": str(count * 2),
        "TRIGGERLINE_AUTH_PORT": str(auth_port),
        "TRIGGERLINE_AUTH_IMS_URL": f"http://127.0.0.1:{sim_port}",
        "TRIGGERLINE_AUTH_CLIENT_SECRET": secret,
        "TRIGGERLINE_AUTH_CLIENTS": f"fetcher:{fetcher_secret}",
        "TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT": f"http://127.0.0.1:{sim_port}",
        "TRIGGERLINE_FETCHER_AUTH_URL": f"http://127.0.0.1:{auth_port}",
        "TRIGGERLINE_FETCHER_AUTH_SECRET": fetcher_secret,
        "TRIGGERLINE_FETCHER_CONSUMER": f"bench_{run}",
        "TRIGGERLINE_FETCHER_RESET": "earliest",
        "TRIGGERLINE_FETCHER_REPLICA_COUNT": str(replicas),
        "TRIGGERLINE_FETCHER_PROCESSING_THREADS": str(threads),
        "TRIGGERLINE_FETCHER_TRANSACTIONAL_ID_PREFIX": f"bench-{run}",
        "TRIGGERLINE_FETCHER_POINTER_FLUSH_MESSAGE_COUNT": str(flush_count),
    }
    cli = [sys.executable, "-m", "services.cli"]
    children = [
        subprocess.Popen([*cli, "simulator", "--triggers", str(count), "--rate", "0",
                          "--seed", str(seed)], env=env),
        subprocess.Popen([*cli, "auth"], env=env),
    ]  # fmt: skip
    try:
        base = f"http://127.0.0.1:{sim_port}"
        _wait(lambda: requests.get(f"{base}/simulator/stats", timeout=2).json().get("done"), 600)
        _wait(lambda: requests.get(f"http://127.0.0.1:{auth_port}/readyz", timeout=2).ok, 60)
        for index, port in enumerate(status_ports):
            replica_env = {
                **env,
                "TRIGGERLINE_FETCHER_REPLICA_INDEX": str(index),
                "TRIGGERLINE_FETCHER_MONITOR_SERVER_PORT": str(port),
            }
            children.append(subprocess.Popen([*cli, "fetcher"], env=replica_env))

        def stats_of(port: int) -> dict[str, Any]:
            url = f"http://127.0.0.1:{port}/pipelined/status"
            body: dict[str, Any] = requests.get(url, timeout=2).json()["agents"][0]["stats"]
            return body

        def processed() -> int:
            total = 0
            for port in status_ports:
                with contextlib.suppress(requests.RequestException, ValueError, KeyError):
                    total += int(stats_of(port)["trigger-processed"])
            return total

        simulator, fetchers = children[0].pid, [child.pid for child in children[2:]]
        _wait(lambda: processed() > 0, 120)
        first = time.perf_counter()
        # CPU is counted over the same window as the rate, for the envelopes inside it only.
        at_first = processed()
        cpu_first = [cpu_seconds(pid) for pid in (simulator, *fetchers)]
        bench_first = time.process_time()
        broker = Broker(broker_pid)
        _wait(lambda: processed() >= count, 1200, every=0.05)
        elapsed = time.perf_counter() - first
        cpu = [
            cpu_seconds(pid) - c for pid, c in zip((simulator, *fetchers), cpu_first, strict=True)
        ]
        bench_cpu = time.process_time() - bench_first
        stats = [stats_of(port) for port in status_ports]
        window = max(1, sum(int(s["trigger-processed"]) for s in stats) - at_first)
        return {
            "envelopes": count,
            "seconds": round(elapsed, 3),
            "per_second": round(count / elapsed),
            "replicas": replicas,
            "processing_threads": threads,
            "pointer_flushes": sum(s["pointer-flushes"] for s in stats),
            "average_pointer_flush_time_ms": max(s["average-pointer-flush-time-ms"] for s in stats),
            "bytes_read": sum(s["bytes-read"] for s in stats),
            # CPU ms per envelope committed in the timed window: what the 2 cores are spent on.
            "cpu_ms_per_envelope": {
                "fetchers": round(sum(cpu[1:]) * 1000 / window, 4),
                "simulator": round(cpu[0] * 1000 / window, 4),
                "bench_polling": round(bench_cpu * 1000 / window, 4),
                # Shared with whatever else uses the broker meanwhile: an upper bound.
                **{
                    key.replace("_cpu_ms_per_envelope", ""): value
                    for key, value in broker.spent(window).items()
                },
            },
            "cpu_seconds": {
                "fetchers": [round(c, 2) for c in cpu[1:]],
                "simulator": round(cpu[0], 2),
                "window_envelopes": window,
                # Cores this run's own processes kept busy; the rest went to Kafka and others.
                "cores_busy": round(sum(cpu) / elapsed, 2),
            },
        }
    finally:
        for child in reversed(children):
            child.terminate()
        for child in children:
            child.wait(30)
        admin = make_admin(settings)
        admin.delete_topics([spec.name for spec in topics_for(prefix).fixed()])


def _wait(check: Any, deadline: float, every: float = 0.2) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(every)
    raise TimeoutError(f"gave up after {deadline}s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--envelopes", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--replicas", type=int, default=1, help="fetcher processes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--flush-count",
        type=int,
        default=1000,
        help="pointerFlushMessageCount: envelopes per transaction (Adobe's default: 1000)",
    )
    parser.add_argument(
        "--broker-pid",
        type=int,
        default=_local_broker_pid(),
        help="a local Kafka broker's pid, to report its CPU too (default: deploy/local's)",
    )
    args = parser.parse_args()
    settings = KafkaSettings()
    lines = envelope_lines(args.envelopes, args.seed)
    raw = raw_produce(settings, payloads(lines), args.broker_pid)
    steps = hot_path(settings, lines[:50_000], args.broker_pid, args.flush_count)
    fetched = fetcher_run(
        settings,
        args.envelopes,
        args.seed,
        args.threads,
        args.replicas,
        args.broker_pid,
        args.flush_count,
    )
    target = 50_000
    spent = fetched["cpu_ms_per_envelope"]
    per_envelope = spent["fetchers"] + spent["simulator"] + spent.get("broker", 0.0)
    # What every envelope costs whatever the fetcher's design: its Avro encoding, its
    # transactional produce and the broker's share of that produce.
    floor_us = (
        steps["avro_encode_us"]
        + steps["transactional_produce_us"]
        + steps.get("broker_us_per_envelope", 0.0)
    )
    cores = os.cpu_count() or 1
    # One file per transaction size, so the run at Adobe's default is never overwritten.
    variant = "" if args.flush_count == 1000 else f"-flush-{args.flush_count}"
    write_result(
        f"fetcher_ingest{variant}",
        {
            "pointer_flush_message_count": args.flush_count,
            "fetcher": fetched,
            "raw_kafka_produce": raw,
            "ratio_to_raw_kafka": round(fetched["per_second"] / raw["per_second"], 3),
            "hot_path_cpu_us_per_envelope": steps,
            "floor_us_per_envelope": round(floor_us, 1),
            "most_per_second_these_cores_allow_at_floor": round(cores * 1e6 / floor_us),
            "target_per_second": target,
            # The CPU the target would take at this run's cost per envelope (fetchers,
            # simulator and, when given, the broker), against the machine's cores.
            "cores_needed_at_target": round(target * per_envelope / 1000, 2),
        },
    )


def _local_broker_pid() -> int | None:
    """The pid of the broker `deploy/local/kafka.sh up` started, if it still runs."""
    try:
        pid = int((ROOT / "deploy" / "local" / ".kafka" / "kafka.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


if __name__ == "__main__":
    main()

"""Fetcher ingest: envelopes/s from the simulator into committed `triggers.raw`.

Beside it, in the same run, a raw confluent-kafka producer sends the same Avro payloads (no
HTTP, no transactions): the ratio says what the fetcher's exactly-once path costs.

    .venv/bin/python -m bench.fetcher_ingest --envelopes 200000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import requests
from confluent_kafka import Producer

from bench.common import cpu_seconds, free_port, write_result
from services.common.kafka import ensure_topics, make_admin
from services.common.serde import envelope_serde
from services.common.settings import KafkaSettings
from services.common.topics import TopicSpec, topics_for
from services.fetcher.envelopes import Data, parse_envelope
from services.simulator.generator import Mix, TriggerGenerator


def raw_produce(settings: KafkaSettings, payloads: list[tuple[bytes, bytes]]) -> dict[str, Any]:
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
            "cpu_ms_per_envelope": round(cpu * 1000 / len(payloads), 4)}  # fmt: skip


def payloads(count: int, seed: int) -> list[tuple[bytes, bytes]]:
    """The Avro records the fetcher would produce for `count` generated envelopes."""
    generator = TriggerGenerator(Mix(), seed)
    serde = envelope_serde()
    out = []
    now = int(time.time() * 1000)
    for offset in range(count):
        document = generator.next(now).envelope
        assert document is not None
        document.update(
            {"topic": "triggers", "partition": offset % 15, "offset": offset, "createTime": now}
        )
        parsed = parse_envelope(json.dumps(document).encode())
        assert isinstance(parsed, Data)
        out.append((parsed.key.encode(), serde.encode(parsed.record)))
    return out


def fetcher_run(
    settings: KafkaSettings,
    count: int,
    seed: int,
    threads: int,
    replicas: int,
    broker_pid: int | None = None,
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
        broker_first = cpu_seconds(broker_pid) if broker_pid else 0.0
        _wait(lambda: processed() >= count, 1200, every=0.05)
        elapsed = time.perf_counter() - first
        cpu = [
            cpu_seconds(pid) - c for pid, c in zip((simulator, *fetchers), cpu_first, strict=True)
        ]
        bench_cpu = time.process_time() - bench_first
        broker_cpu = cpu_seconds(broker_pid) - broker_first if broker_pid else None
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
                "broker": None if broker_cpu is None else round(broker_cpu * 1000 / window, 4),
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
        "--broker-pid", type=int, help="a local Kafka broker's pid, to report its CPU too"
    )
    args = parser.parse_args()
    settings = KafkaSettings()
    raw = raw_produce(settings, payloads(args.envelopes, args.seed))
    fetched = fetcher_run(
        settings, args.envelopes, args.seed, args.threads, args.replicas, args.broker_pid
    )
    target = 50_000
    spent = fetched["cpu_ms_per_envelope"]
    per_envelope = spent["fetchers"] + spent["simulator"] + (spent["broker"] or 0.0)
    write_result(
        "fetcher_ingest",
        {
            "fetcher": fetched,
            "raw_kafka_produce": raw,
            "ratio_to_raw_kafka": round(fetched["per_second"] / raw["per_second"], 3),
            "target_per_second": target,
            # The CPU the target would take at this run's cost per envelope (fetchers,
            # simulator and, when given, the broker), against the machine's cores.
            "cores_needed_at_target": round(target * per_envelope / 1000, 2),
        },
    )


if __name__ == "__main__":
    main()

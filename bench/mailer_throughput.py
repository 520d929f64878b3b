"""Mailer throughput: emails/s from a campaign topic to the local SMTP sink, as JSON.

Each run produces N email requests to a fresh `emails.<campaign>` topic on the local broker,
runs `triggerline mailer` (`--processes` of them, one consumer group) as separate processes
against an SMTP sink in a process of its own (`--sink`: postfix's C `smtp-sink` by default, or
our aiosmtpd sink), and times the emails from the first to the last; it also reads the
mailers' and the sink's CPU time over that span. Either sink's received messages are checked:
exactly N, no Message-ID twice. The same invocation measures two raw baselines: the sink's own
ceiling with a trivial smtplib sender over as many connections, and a plain Kafka consume and
decode of the same requests. Results go to bench/results/mailer_throughput.json.

    .venv/bin/python -m bench.mailer_throughput --count 10000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write_result  # noqa: E402
from bench.sinks import SINK_NAMES, SINKS, SinkKind, start_sink  # noqa: E402
from services.common.kafka import ensure_topics, make_admin  # noqa: E402
from services.common.models import EmailRequest  # noqa: E402
from services.common.serde import email_request_serde  # noqa: E402
from services.common.settings import KafkaSettings  # noqa: E402
from services.common.topics import topics  # noqa: E402


def produce(bootstrap: str, topic: str, campaign: str, run: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"})
    serde = email_request_serde()
    now = datetime.now(UTC)
    for n in range(count):
        request = EmailRequest(
            idempotency_key=f"bench-{run}-{n}",
            campaign=campaign,
            trigger_id="3e8a2ba7-fccc-49bb-bdac-33ee33cf02bf",
            message_id=f"bench-{run}-{n}",
            trigger_timestamp=now,
            profile_id=f"p-{run}-{n}",
            email=f"shopper{n}@bench.example.com",
            first_name=f"Shopper {n}",
            products=("Red Shoes", "Blue Hat"),
            variables={"cartUrl": f"https://shop.example/cart/{n}"},
        )
        while True:
            try:
                value = serde.encode(request.to_record())
                producer.produce(topic, key=request.profile_id, value=value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)


def sink_ceiling(kind: SinkKind, count: int, connections: int) -> dict[str, Any]:
    """The sink's own max rate: a trivial smtplib sender, `connections` threads, one message."""
    sink = start_sink(kind, count, timeout=120)
    sink.measure([os.getpid()])  # this process runs nothing but the sending threads now
    body = "".join(
        f"line {n} of a plain benchmark message, about as long as a real one\r\n" for n in range(25)
    )

    def send(worker: int) -> None:
        conn = smtplib.SMTP("127.0.0.1", sink.port, timeout=30)
        try:
            for n in range(worker, count, connections):
                head = f"From: a@bench.example\r\nTo: b@bench.example\r\nMessage-ID: <{n}@raw>\r\n"
                conn.sendmail("a@bench.example", ["b@bench.example"], head + "\r\n" + body)
            conn.quit()
        except smtplib.SMTPServerDisconnected:
            pass  # the sink stops as soon as the last message is in
        finally:
            conn.close()

    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(send, range(connections)))
    report = sink.result(120)
    seconds = report["last"] - report["first"]
    return {
        "emails": report["received"],
        "smtp_connections": report["sessions"],
        "emails_per_second": round((report["received"] - 1) / seconds, 1),
        "sink_cpu_ms_per_email": round(1000 * report["cpu"] / report["received"], 3),
        "sender_cpu_ms_per_email": round(1000 * report["senders_cpu"] / report["received"], 3),
    }


def kafka_ceiling(bootstrap: str, topic: str, count: int) -> dict[str, Any]:
    """A plain consume and Avro decode of the same requests: what Kafka alone allows."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-raw-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    serde = email_request_serde()
    consumer.subscribe([topic])
    seen, started, first = 0, time.monotonic(), None
    try:
        while seen < count and time.monotonic() - started < 120:
            for message in consumer.consume(500, 0.5):
                if message.error() is None:
                    EmailRequest.from_record(serde.decode(message.value()))
                    first = first or time.monotonic()
                    seen += 1
    finally:
        consumer.close()
    seconds = time.monotonic() - (first or started)
    return {"requests": seen, "requests_per_second": round(seen / seconds, 1)}


def skip_retry_backlog(bootstrap: str, group: str) -> int:
    """Commit the group's offsets at the end of the shared retry topics; returns records skipped.

    Tests leave tens of thousands of other campaigns' records there, which a brand-new group
    would read (and skip) while the benchmark runs; a mailer that has been running has not.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    ends: list[TopicPartition] = []
    skipped = 0
    try:
        for spec in topics().email_retries():
            metadata = consumer.list_topics(spec.name, timeout=10).topics[spec.name]
            for number in metadata.partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(spec.name, number), timeout=10
                )
                ends.append(TopicPartition(spec.name, number, high))
                skipped += high - low
        consumer.commit(offsets=ends, asynchronous=False)
    finally:
        consumer.close()
    return skipped


def mailer_run(args: argparse.Namespace, kafka: KafkaSettings) -> dict[str, Any]:
    run = uuid.uuid4().hex[:10]
    campaign = f"bench{run}"
    spec = replace(topics().emails(campaign), partitions=args.partitions)
    shared = [topics().outcomes, topics().emails_dlq, *topics().email_retries()]
    ensure_topics(make_admin(kafka), [spec, *shared])
    produce(args.bootstrap, spec.name, campaign, run, args.count)
    group = f"bench-mailer-{run}"
    skipped = skip_retry_backlog(args.bootstrap, group)
    timeout = max(120.0, args.count / 50)
    with tempfile.TemporaryDirectory() as tmp:
        sink = start_sink(args.sink, args.count, timeout)
        work = Path(tmp)
        pipeline = work / "pipeline.yaml"
        pipeline.write_text(
            "topics:\n  - {name: triggers, consumer: bench}\ncampaigns:\n"
            f"  {campaign}: {{template: cart_abandonment, validity: 1d}}\n"
        )
        env = {
            **os.environ,
            "TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS": args.bootstrap,
            "TRIGGERLINE_DB_URL": args.database_url or f"sqlite:///{work / 'bench.db'}",
            "TRIGGERLINE_PIPELINE_CONFIG": str(pipeline),
            "TRIGGERLINE_MAILER_SMTP_PORT": str(sink.port),
            "TRIGGERLINE_MAILER_SMTP_POOL_SIZE": str(args.pool_size),
            "TRIGGERLINE_MAILER_BATCH_SIZE": str(args.batch_size),
            "TRIGGERLINE_MAILER_GROUP_ID": group,
            "TRIGGERLINE_MAILER_CAMPAIGN_PATTERN": campaign,
            "TRIGGERLINE_MAILER_HEALTH_PORT": "0",
            "TRIGGERLINE_LOG_LEVEL": "WARNING",
            # a throwaway key; the development flag allows the default link and bounce domain
            "TRIGGERLINE_TOKENS_KEY": secrets.token_urlsafe(48),
            "TRIGGERLINE_TOKENS_DEVELOPMENT": "true",
        }
        started = time.monotonic()
        command = [sys.executable, "-m", "services.cli", "mailer"]
        mailers = [subprocess.Popen(command, cwd=ROOT, env=env) for _ in range(args.processes)]
        try:
            sink.measure([mailer.pid for mailer in mailers])
            report = sink.result(timeout + 60)
        finally:
            for mailer in mailers:
                mailer.send_signal(signal.SIGTERM)
            for mailer in mailers:
                mailer.wait(60)
    seconds = report["last"] - report["first"]
    emails = report["received"]
    return {
        "emails_received": emails,
        "duplicates": report["duplicates"],
        "seconds_first_to_last_email": round(seconds, 3),
        "seconds_including_start_up": round(report["last"] - started, 3),
        "emails_per_second": round((emails - 1) / seconds, 1) if seconds > 0 else None,
        "smtp_connections": report["sessions"],
        "mailer_cpu_ms_per_email": round(1000 * report["senders_cpu"] / max(1, emails), 3),
        "sink_cpu_ms_per_email": round(1000 * report["cpu"] / max(1, emails), 3),
        "topic": spec.name,
        "retry_backlog_skipped": skipped,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--pool-size", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--processes", type=int, default=1, help="mailer processes in one group")
    parser.add_argument(
        "--sink", choices=SINKS, default="smtp-sink", help="the SMTP server the mailer sends to"
    )
    parser.add_argument("--runs", type=int, default=3, help="mailer runs; median and spread")
    parser.add_argument(
        "--database-url",
        default="",
        help="the mailers' claim database (default: a fresh SQLite file per run); several "
        "mailer processes contend for SQLite's one write lock, so give them PostgreSQL",
    )
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("TRIGGERLINE_TEST_BOOTSTRAP", "127.0.0.1:19092"),
    )
    args = parser.parse_args()
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    runs = [mailer_run(args, kafka) for _ in range(args.runs)]
    rates = sorted(r["emails_per_second"] or 0.0 for r in runs)
    baseline_count = min(args.count, 5000)
    result = {
        "requests_per_run": args.count,
        "emails_per_second": statistics.median(rates),
        "emails_per_second_min": rates[0],
        "emails_per_second_max": rates[-1],
        "smtp_connections": [r["smtp_connections"] for r in runs],
        "mailer_cpu_ms_per_email": statistics.median(r["mailer_cpu_ms_per_email"] for r in runs),
        "duplicates": sum(r["duplicates"] for r in runs),
        "runs": runs,
        "baselines": {
            "sink_ceiling_trivial_smtplib_sender": sink_ceiling(
                args.sink, baseline_count, args.pool_size
            ),
            "kafka_consume_and_decode": kafka_ceiling(
                args.bootstrap, runs[-1]["topic"], args.count
            ),
        },
        "smtp_pool_size": args.pool_size,
        "mailer_processes": args.processes,
        "batch_size": args.batch_size,
        "partitions": args.partitions,
        "database": args.database_url.split(":", 1)[0] if args.database_url else "sqlite",
        "sink": args.sink,
        "sink_detail": f"{SINK_NAMES[args.sink]}, loopback",
        "target_emails_per_second": 2000,
    }
    # One file per set-up, so the reference run (one process, C sink, SQLite) is not overwritten.
    variant = "" if args.sink == "smtp-sink" else f"-{args.sink}"
    if args.processes > 1:
        variant += f"-{args.processes}-processes-{result['database'].split('+')[0]}"
    write_result(f"mailer_throughput{variant}", result)
    complete = all(r["emails_received"] == args.count for r in runs)
    return 0 if complete and result["duplicates"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

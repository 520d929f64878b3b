"""Mailer throughput: emails/s from a campaign topic to the local SMTP sink, as JSON.

Produces N email requests to a fresh `emails.<campaign>` topic on the local broker, runs
`triggerline mailer` as a separate process against an in-process SMTP sink on loopback, and
times the emails from the first to the last. Results go to bench/results/mailer_throughput.json.

    .venv/bin/python bench/mailer_throughput.py --count 20000 --pool-size 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Producer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.common.kafka import ensure_topics, make_admin  # noqa: E402
from services.common.models import EmailRequest  # noqa: E402
from services.common.serde import email_request_serde  # noqa: E402
from services.common.settings import KafkaSettings  # noqa: E402
from services.common.topics import TOPICS  # noqa: E402
from services.simulator.smtp_sink import SmtpSink  # noqa: E402


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--pool-size", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--processes", type=int, default=1, help="mailer processes in one group")
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("TRIGGERLINE_TEST_BOOTSTRAP", "127.0.0.1:19092"),
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "bench" / "results" / "mailer_throughput.json"
    )
    args = parser.parse_args()

    run = uuid.uuid4().hex[:10]
    campaign = f"bench{run}"
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    spec = replace(TOPICS.emails(campaign), partitions=args.partitions)
    shared = [TOPICS.outcomes, TOPICS.emails_dlq, *TOPICS.email_retries()]
    ensure_topics(make_admin(kafka), [spec, *shared])
    produce(args.bootstrap, spec.name, campaign, run, args.count)

    with tempfile.TemporaryDirectory() as tmp, SmtpSink() as sink:
        work = Path(tmp)
        pipeline = work / "pipeline.yaml"
        pipeline.write_text(
            "topics:\n  - {name: triggers, consumer: bench}\ncampaigns:\n"
            f"  {campaign}: {{template: cart_abandonment, validity: 1d}}\n"
        )
        env = {
            **os.environ,
            "TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS": args.bootstrap,
            "TRIGGERLINE_DB_URL": f"sqlite:///{work / 'bench.db'}",
            "TRIGGERLINE_PIPELINE_CONFIG": str(pipeline),
            "TRIGGERLINE_MAILER_SMTP_PORT": str(sink.port),
            "TRIGGERLINE_MAILER_SMTP_POOL_SIZE": str(args.pool_size),
            "TRIGGERLINE_MAILER_BATCH_SIZE": str(args.batch_size),
            "TRIGGERLINE_MAILER_GROUP_ID": f"bench-mailer-{run}",
            "TRIGGERLINE_MAILER_CAMPAIGN_PATTERN": campaign,
            "TRIGGERLINE_MAILER_HEALTH_PORT": "0",
            "TRIGGERLINE_LOG_LEVEL": "WARNING",
        }
        started = time.monotonic()
        command = [sys.executable, "-m", "services.cli", "mailer"]
        mailers = [subprocess.Popen(command, cwd=ROOT, env=env) for _ in range(args.processes)]
        try:
            sink.wait_for(1, timeout=120)
            first = time.monotonic()
            mails = sink.wait_for(args.count, timeout=max(120.0, args.count / 50))
            last = time.monotonic()
        finally:
            for mailer in mailers:
                mailer.send_signal(signal.SIGTERM)
            for mailer in mailers:
                mailer.wait(60)
        received = len(mails)
        duplicates = sum(n - 1 for n in Counter(m.message_id for m in mails).values() if n > 1)
        seconds = last - first
        result = {
            "benchmark": "mailer_throughput",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "requests": args.count,
            "emails_received": received,
            "duplicates": duplicates,
            "seconds_first_to_last_email": round(seconds, 3),
            "seconds_including_start_up": round(last - started, 3),
            "emails_per_second": round((received - 1) / seconds, 1) if seconds > 0 else None,
            "smtp_connections": sink.sessions,
            "smtp_pool_size": args.pool_size,
            "mailer_processes": args.processes,
            "batch_size": args.batch_size,
            "partitions": args.partitions,
            "database": "sqlite",
            "sink": "aiosmtpd in the benchmark process, loopback",
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "target_emails_per_second": 2000,
        }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if received == args.count and duplicates == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

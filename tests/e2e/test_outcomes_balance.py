"""A mixed stream through the whole stack: triggers in = outcomes out, one email per `sent`.

The simulator sends repeats, malformed envelopes, unknown trigger ids and visitors without a
profile among ordinary triggers; every envelope must end in exactly one outcome, and the sink
must hold exactly one email per `sent` outcome, each with its own idempotency key.
"""

from __future__ import annotations

import email
import email.policy
import time
from collections import Counter
from pathlib import Path

import requests

from services.common.kafka import make_admin
from services.common.settings import KafkaSettings
from services.common.topics import topics_for
from services.ops.outcome_tally import OutcomeTally
from services.ops.stack import LocalStack
from services.ops.stack_environment import StackOptions, local_environment
from services.ops.stack_setup import prepare
from tests.conftest import free_port

SERVICES_WITH_PORTS = (
    "simulator", "auth", "fetcher", "mailer", "processor", "smtp",
    "feedback", "feedback_health", "feedback_smtp",
)  # fmt: skip


def test_every_trigger_of_a_mixed_stream_ends_in_exactly_one_outcome(
    tmp_path: Path, kafka_settings: KafkaSettings, unique: str
) -> None:
    total = 300
    options = StackOptions(
        triggers=total,
        rate=150,
        profiles=200,
        seed=7,
        var=tmp_path,
        timeout=180,
        fresh=False,
        ports={name: free_port() for name in SERVICES_WITH_PORTS},
        processor_app_id=f"e2e-mix-{unique}",
        topics_prefix=f"e2e-mix-{unique}.",
        visitors=260,  # visitors 200..259 have no profile
    )
    env = local_environment(options, unique)
    env.update(
        {
            "TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
            "TRIGGERLINE_PROCESSOR_STORE": "memory",
            "TRIGGERLINE_PROCESSOR_AUTO_OFFSET_RESET": "earliest",
            "TRIGGERLINE_SIMULATOR_UNPROFILED_SHARE": "0.1",
            "TRIGGERLINE_SIMULATOR_REPEAT_SHARE": "0.05",
            "TRIGGERLINE_SIMULATOR_MALFORMED_SHARE": "0.03",
            "TRIGGERLINE_SIMULATOR_UNKNOWN_SHARE": "0.03",
        }
    )
    prepare(options, env, kafka_settings)
    topics = topics_for(options.topics_prefix)
    tally = OutcomeTally(kafka_settings, topics.outcomes.name)
    stack = LocalStack(options, env)
    try:
        stack.start()
        simulator = f"http://127.0.0.1:{options.ports['simulator']}/simulator/stats"
        end = time.monotonic() + 150
        emitted = None
        while time.monotonic() < end:
            tally.poll(0.5)
            stats = requests.get(simulator, timeout=5).json()
            if stats.get("done"):
                emitted = int(stats["emitted"])
                if tally.total >= emitted:
                    break
        assert emitted == total
        time.sleep(3)  # a sleep: anything counted twice would show up now
        tally.poll(1.0)
        logs = "\n".join(f"--- {c.command}\n{c.tail(10)}" for c in stack.children)
        assert tally.total == total, f"{dict(tally.counts)}\n{logs}"
        labels = Counter(o.label for o in tally.outcomes)
        assert labels["invalid"] > 0 and labels["unrouted"] > 0 and labels["unmatched"] > 0
        assert labels["duplicate"] > 0 and labels["sent"] > 0
        sent = [o for o in tally.outcomes if o.label == "sent"]
        assert len({o.idempotency_key for o in sent}) == len(sent)
        mails = sorted((tmp_path / "mail").glob("*.eml"))
        assert len(mails) == len(sent)
        keys = Counter(
            email.message_from_bytes(m.read_bytes(), policy=email.policy.default)[
                "X-Triggerline-Key"
            ]
            for m in mails
        )
        assert max(keys.values()) == 1
    finally:
        stack.stop()
        tally.close()
        admin = make_admin(kafka_settings)
        prefixes = (options.topics_prefix, options.processor_app_id)
        ours = [n for n in admin.list_topics(timeout=10).topics if n.startswith(prefixes)]
        if ours:
            admin.delete_topics(ours, operation_timeout=30)

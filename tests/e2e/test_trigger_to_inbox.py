"""One cart-abandonment trigger, from the upstream simulator to one email at the SMTP sink.

The whole stack runs as separate processes on loopback against the real broker, in its own
topic namespace, so nothing else on the broker can add or take away a message.
"""

from __future__ import annotations

import email
import email.policy
import json
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from confluent_kafka import Message

from services.common.kafka import make_admin
from services.common.models import Outcome
from services.common.serde import outcome_serde
from services.common.settings import KafkaSettings
from services.ops.stack import LocalStack
from services.ops.stack_environment import StackOptions, local_environment
from services.ops.stack_setup import prepare
from services.simulator.catalog import BROWSE_ABANDONMENT, CART_ABANDONMENT
from services.simulator.population import shopper
from tests.conftest import Consumed, free_port
from tests.integration.processor.triggers import adobe_envelope

SERVICES_WITH_PORTS = ("simulator", "auth", "fetcher", "mailer", "processor", "smtp")


def _cart_envelope(
    index: int,
    product: str,
    trigger_id: str = CART_ABANDONMENT.trigger_id,
    message_id: str | None = None,
) -> dict[str, object]:
    """A cart abandonment (or another trigger) from a visitor no profile knows, carrying
    shopper `index`'s declared id: resolution has to go through the enrichments."""
    return adobe_envelope(
        mcid="9" * 38,
        trigger_id=trigger_id,
        message_id=message_id,
        declared_id=shopper(index).declared_id,
        products=(product, "", product),
        page_urls=("https://shop.example/cart", ""),
    )


def _inject(port: int, envelope: dict[str, object]) -> None:
    """Append the envelope to the simulator's pipeline."""
    injected = requests.post(
        f"http://127.0.0.1:{port}/simulator/envelopes",
        data=json.dumps([envelope]),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert injected.status_code == 200, injected.text


def _outcome(message: Message) -> Outcome:
    return Outcome.from_record(outcome_serde().decode(message.value()))


def _wait_for_mail(maildir: Path, deadline: float) -> list[Path]:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        found = sorted(maildir.glob("*.eml")) if maildir.is_dir() else []
        if found:
            return found
        time.sleep(0.2)  # poll interval: at the deadline the caller's assertion shows the logs
    return []


def test_one_cart_abandonment_becomes_exactly_one_email(
    tmp_path: Path,
    kafka_settings: KafkaSettings,
    unique: str,
    consume_until: Callable[..., Consumed],
) -> None:
    index = 7
    product = f"Trail running shoes {unique}"
    options = StackOptions(
        triggers=0,
        rate=0,
        profiles=20,
        seed=1,
        var=tmp_path,
        timeout=120,
        fresh=False,
        ports={
            name: free_port()
            for name in (*SERVICES_WITH_PORTS, "feedback", "feedback_health", "feedback_smtp")
        },
        processor_app_id=f"e2e-processor-{unique}",
        topics_prefix=f"e2e-{unique}.",
        generate=False,
    )
    unique_prefixes = (options.topics_prefix, options.processor_app_id)
    env = local_environment(options, unique)
    env["TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS"] = kafka_settings.bootstrap_servers
    env["TRIGGERLINE_PROCESSOR_STORE"] = "memory"
    env["TRIGGERLINE_PROCESSOR_AUTO_OFFSET_RESET"] = "earliest"
    prepare(options, env, kafka_settings)
    stack = LocalStack(options, env)
    try:
        stack.start()
        _inject(options.ports["simulator"], _cart_envelope(index, product))
        mails = _wait_for_mail(tmp_path / "mail", deadline=90)
        assert mails, "no email arrived within 90 s; logs:\n" + "\n".join(
            f"--- {c.command}\n{c.tail(15)}" for c in stack.children
        )
        time.sleep(3)  # a sleep: anything sent twice would have arrived by now
        mails = sorted((tmp_path / "mail").glob("*.eml"))
        assert len(mails) == 1, [m.name for m in mails]
        message = email.message_from_bytes(mails[0].read_bytes(), policy=email.policy.default)
        assert message["To"] is not None and shopper(index).email in str(message["To"])
        body = message.get_body(preferencelist=("plain",))
        assert body is not None and product in body.get_content()
        # The link a person would click, as the email has it, opens the confirmation page of
        # the stack's own feedback service; its button's POST suppresses the address.
        link = str(message["List-Unsubscribe"]).strip("<>")
        assert link.startswith(f"http://127.0.0.1:{options.ports['feedback']}/unsubscribe?")
        page = requests.get(link, timeout=10)
        assert page.status_code == 200 and "Unsubscribe from marketing emails?" in page.text
        assert "token" in parse_qs(urlsplit(link).query)
        clicked = requests.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=10)
        assert clicked.status_code == 200
        assert str(message["Return-Path"]).startswith("<bounce+")  # the VERP return path
        # The shopper's next marketing trigger (another campaign: no dedup window in the way)
        # ends suppressed, and no second email leaves.
        following = f"{unique}-following"
        browse = _cart_envelope(index, product, BROWSE_ABANDONMENT.trigger_id, following)
        _inject(options.ports["simulator"], browse)
        ended = consume_until(
            [f"{options.topics_prefix}outcomes"],
            1,
            deadline=60,
            match=lambda m: _outcome(m).message_id == following,
        )
        (outcome,) = [_outcome(m) for m in ended.messages]
        assert outcome.label == "suppressed:unsubscribed", outcome
        assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
        assert not stack.dead(), [c.command for c in stack.dead()]
    finally:
        stack.stop()
        admin = make_admin(kafka_settings)
        ours = [n for n in admin.list_topics(timeout=10).topics if n.startswith(unique_prefixes)]
        if ours:
            admin.delete_topics(ours, operation_timeout=30)

"""Builders shared by the mailer's unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.common.models import EmailRequest

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def request(**overrides: Any) -> EmailRequest:
    values: dict[str, Any] = {
        "idempotency_key": "key-1",
        "campaign": "cart_abandonment",
        "trigger_id": "3e8a2ba7-fccc-49bb-bdac-33ee33cf02bf",
        "message_id": "msg-1",
        "trigger_timestamp": NOW,
        "profile_id": "p-1",
        "email": "ann@example.com",
        "first_name": "Ann",
        "products": ("Red Shoes", "Blue Hat"),
        "variables": {"cartUrl": "https://shop.example/cart?id=1&x=2"},
    }
    values.update(overrides)
    return EmailRequest(**values)


def write_template(root: Path, name: str, subject: str, html: str, text: str) -> None:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "subject.txt").write_text(subject)
    (folder / "body.html").write_text(html)
    (folder / "body.txt").write_text(text)

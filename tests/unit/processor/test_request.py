"""The email request: personalised values as given, names and products made safe and capped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.enrichments import Enrichments
from services.common.models import EmailRequest
from services.common.personalisation_config import Personalisation
from services.processor.rules.keys import idempotency_key
from services.processor.rules.request import build_email_request
from services.processor.rules.trigger import Trigger

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
TRIGGER = Trigger("msg-1", "3e8a2ba7", "1" * 38, AT, "{}")


def limits(max_products: int = 20) -> Personalisation:
    dimensions = ("products",)
    return Personalisation(product_dimensions=dimensions, max_products=max_products, max_length=50)


def request(
    first_name: str | None = "Ann", session: tuple[str, ...] = ("Kettle",), max_products: int = 20
) -> EmailRequest:
    return build_email_request(
        campaign="cart",
        trigger=TRIGGER,
        enrichments=Enrichments(products_object=session),
        profile_id="P1",
        email="ann@example.com",
        first_name=first_name,
        locale="fr-FR",
        personalisation=limits(max_products),
        variables={"cartUrl": "https://shop.example/cart"},
        validity=timedelta(days=2),
    )


def test_the_request_carries_the_values_and_its_deadline() -> None:
    made = build_email_request(
        campaign="cart",
        trigger=TRIGGER,
        enrichments=Enrichments(products_object=("Kettle", "Cups")),
        profile_id="P1",
        email="ann@example.com",
        first_name="Ann",
        locale="fr-FR",
        personalisation=limits(),
        variables={"cartUrl": "https://shop.example/cart"},
        validity=timedelta(days=2),
    )
    assert made.idempotency_key == idempotency_key("cart", "P1", "msg-1")
    assert made.products == ("Kettle", "Cups")
    assert made.variables == {"cartUrl": "https://shop.example/cart"}
    assert made.expires_at == AT + timedelta(days=2)


@pytest.mark.parametrize(
    ("first_name", "expected"),
    [
        ("Ann", "Ann"),
        (None, None),
        ("", None),
        ("\r\nBcc: x@evil.test", None),
        ("Ann\r\nBcc: x@evil.test", "Ann"),  # a CR/LF in a CRM name never adds a header
        ("A" * 500, "A" * 50),
        ("\u202eAnn", "Ann"),
        ("דוד", "דוד"),
    ],
)
def test_the_first_name_is_made_header_safe(first_name: str | None, expected: str | None) -> None:
    assert request(first_name=first_name).first_name == expected


def test_a_huge_session_keeps_the_first_products_only() -> None:
    session = tuple(f"Product {i}" for i in range(20_000))
    assert request(session=session).products == session[:20]
    assert request(session=session, max_products=0).products == ()

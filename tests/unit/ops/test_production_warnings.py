"""Production warnings: printed by `config check --production`, never a refusal."""

from __future__ import annotations

from services.ops.rules.production import production_problems, production_warnings

CERT = "TRIGGERLINE_FEEDBACK_SMTP_TLS_CERT"
KEY = "TRIGGERLINE_FEEDBACK_SMTP_TLS_KEY"


def test_an_mx_without_a_certificate_is_warned_about_in_one_line() -> None:
    (warning,) = production_warnings({CERT: "", KEY: ""})
    assert CERT in warning and KEY in warning and "STARTTLS" in warning
    assert "\n" not in warning


def test_an_mx_with_a_certificate_is_not_warned_about() -> None:
    assert production_warnings({CERT: "/etc/smtp-tls/tls.crt", KEY: "/etc/smtp-tls/tls.key"}) == []


def test_a_check_scoped_to_another_service_says_nothing_of_the_mx() -> None:
    assert production_warnings({"TRIGGERLINE_MAILER_SMTP_HOST": "relay.example.com"}) == []


def test_an_mx_without_a_certificate_is_not_a_refusal() -> None:
    values = {CERT: "", KEY: ""}
    assert production_problems(values, values, "consumer", "local", []) == []

"""`triggerline templates check` and preview: the matrix, the judgements, the command."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from services.common.db.engine import make_engine, upgrade
from services.common.db.tables import profiles
from services.common.personalisation_config import Variable
from services.common.settings import REPO_ROOT, DatabaseSettings
from services.ops import templates as command
from services.ops.rules.template_checks import (
    MAX_LINE,
    header_problems,
    leaked,
    subject_problems,
    undeclared_names,
)
from services.ops.rules.template_matrix import (
    HUGE_SESSION,
    MARK,
    profile_variants,
    sample_host,
    trigger_variants,
)
from services.processor.rules.profile import Profile
from tests.integration.processor.triggers import adobe_envelope

SHIPPED = REPO_ROOT / "config" / "templates"
CONFIG = REPO_ROOT / "config" / "pipeline.yaml"


def declared(**fields: dict[str, object]) -> dict[str, Variable]:
    return {name: Variable.model_validate(spec) for name, spec in fields.items()}


def test_every_subset_of_optional_data_then_the_extremes() -> None:
    variables = declared(cartUrl={"from": "pageURL", "type": "url"}, terms={"from": "eVar7"})
    variants = trigger_variants(variables, ("shop.example",), has_products=True)
    names = [v.name for v in variants]
    # 2^3 subsets of products, cartUrl and terms, most data first
    assert names[0] == "all data" and names[7] == "no data"
    assert set(names[1:7]) == {
        "without products",
        "without cartUrl",
        "without terms",
        "without cartUrl, terms",
        "without products, terms",
        "without products, cartUrl",
    }
    full, without_link = variants[0].enrichments, variants[names.index("without cartUrl")]
    assert full.first("pageURL") == "https://shop.example/cart?item=42&utm_source=email"
    assert full.products_object and full.first("eVar7") == "boots"
    assert without_link.enrichments.first("pageURL") is None
    huge = variants[names.index(f"{HUGE_SESSION} products")]
    assert len(huge.enrichments.products_object) == HUGE_SESSION
    hostile = {v.name for v in variants if MARK in v.forbidden}
    assert hostile >= {
        "javascript: link",
        "link to a foreign host",
        "CR/LF and a fake header in text",
    }


def test_a_required_variable_stays_present_in_the_subsets() -> None:
    variables = declared(terms={"from": "eVar7", "required": True})
    variants = trigger_variants(variables, (), has_products=False)
    subsets = [v for v in variants if v.name in ("all data", "no data")]
    assert [v.name for v in subsets] == ["all data"]  # nothing optional: one subset
    assert all(v.enrichments.first("eVar7") for v in variants if not v.forbidden)


def test_profile_variants_cover_names_in_every_locale() -> None:
    variants = profile_variants(("en-GB", "fr-FR"))
    assert len(variants) == 3 * 9
    names = {v.first_name for v in variants}
    assert None in names and "" in names and any(n and "\r\n" in n for n in names)
    assert {v.locale for v in variants} == {"en-GB", "fr-FR", None}


def test_sample_host() -> None:
    assert sample_host(("*.shop.example", "x.example")) == "www.shop.example"
    assert sample_host(()) == "shop.example"


def test_judgements() -> None:
    assert undeclared_names({"body.txt": {"cartUrll", "first_name"}}, {"first_name"}) == [
        "body.txt reads 'cartUrll', which no variable declares"
    ]
    assert subject_problems(" ") == ["the subject is empty"]
    assert subject_problems("x" * MAX_LINE) == []
    assert "999 characters" in subject_problems("x" * (MAX_LINE + 1))[0]
    head = b"From: a@b.c\r\nSubject: hi\r\n there\r\nBcc: x@evil.test\r\nMIME-Version: 1.0\r\n\r\nx"
    assert header_problems(head, ["From", "Subject"]) == [
        "unexpected header line 'Bcc: x@evil.test'"
    ]
    assert "1000 characters" in header_problems(b"Subject: " + b"x" * 991, ["Subject"])[0]
    assert leaked((MARK, "evil.test"), ["fine", f"oops {MARK}"]) == [
        f"hostile input {MARK!r} reached the email"
    ]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = command.main(list(argv))
    return code, capsys.readouterr().out


def test_the_shipped_templates_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "check", "--config", str(CONFIG), "--templates", str(SHIPPED))
    assert code == 0, out
    assert "3 campaigns" in out and " 0 problems" in out


@pytest.mark.parametrize(
    ("part", "source", "expected"),
    [
        ("body.txt", "{{ cartUrll }}", "body.txt reads 'cartUrll', which no variable declares"),
        ("body.html", "{{ products[1] }}", "UndefinedError"),  # fails without 2 products
        ("subject.txt", "{{ '' }}", "empty subject"),
        ("subject.txt", "{{ 'x' * 1200 }}", "1200 characters after folding"),
        ("body.html", "{% for p in products %}", "(loading)"),
        ("body.html", "{{ first_name.upper() }}", "UndefinedError"),  # no name: None
    ],
)
def test_a_broken_template_fails_naming_campaign_variant_and_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, part: str, source: str, expected: str
) -> None:
    shutil.copytree(SHIPPED, tmp_path / "templates")
    (tmp_path / "templates" / "cart_abandonment" / part).write_text(source)
    folder = str(tmp_path / "templates")
    code, out = run(capsys, "check", "--config", str(CONFIG), "--templates", folder)
    assert code == 1, out
    failures = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert failures and all(line.startswith("FAIL cart_abandonment [") for line in failures), out
    assert any(expected in line for line in failures), out


def test_values_that_skipped_the_safe_rules_would_be_caught(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With header safety switched off, the hostile variants' markers reach the email."""
    unsafe = lambda value, limit: value[:limit]  # noqa: E731
    monkeypatch.setattr("services.common.personalisation.single_line", unsafe)
    monkeypatch.setattr("services.processor.rules.request.single_line", unsafe)
    code, out = run(capsys, "check", "--config", str(CONFIG), "--templates", str(SHIPPED))
    assert code == 1, out
    assert f"hostile input {MARK!r} reached the email" in out, out


def test_preview_writes_and_prints_the_eml(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'profiles.db'}"
    engine = make_engine(DatabaseSettings.model_validate({"url": url}))
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(profiles).values(
                profile_id="P-7",
                email="ann@example.com",
                first_name="Ann\r\nBcc: x@evil.test",
                locale="fr-FR",
                email_consent=True,
                created_at=datetime.now(UTC),
            )
        )
    engine.dispose()
    monkeypatch.setenv("TRIGGERLINE_DB_URL", url)
    envelope = adobe_envelope(
        mcid="1" * 38, page_urls=("javascript:alert(1)",), products=(";Blue Kettle;1;3",)
    )
    trigger = tmp_path / "trigger.json"
    trigger.write_text(json.dumps({"event": envelope}, indent=2))
    out_file = tmp_path / "preview.eml"
    code, out = run(
        capsys,
        "preview",
        "cart_abandonment",
        "--trigger",
        str(trigger),
        "--profile",
        "P-7",
        "--out",
        str(out_file),
        "--config",
        str(CONFIG),
    )
    assert code == 0
    assert out_file.read_bytes().decode() in out
    assert "To: Ann <ann@example.com>" in out and "Bcc" not in out
    assert "javascript" not in out and "https://shop.example/cart" in out
    assert "Blue Kettle" in out


def test_preview_says_when_the_trigger_would_be_skipped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        CONFIG.read_text().replace(
            'searchTerms: {from: [eVar7], default: ""}',
            "searchTerms: {from: [eVar7], required: true}",
        )
    )
    monkeypatch.setattr(command, "find_profile", lambda _id: Profile("P-1", "a@b.example"))
    trigger = tmp_path / "trigger.json"
    trigger.write_text(json.dumps(adobe_envelope(mcid="1" * 38)))
    code = command.main(
        [
            "preview",
            "search_abandonment",
            "--trigger",
            str(trigger),
            "--profile",
            "P-1",
            "--config",
            str(config),
            "--out",
            str(tmp_path / "x.eml"),
        ]
    )
    assert code == 1 and not (tmp_path / "x.eml").exists()
    assert "skipped:missing_data (searchTerms is absent)" in capsys.readouterr().err

"""`triggerline profiles import|suppress` on SQLite and PostgreSQL (the `engine` fixture):
upserts, dry runs, rejects."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from services.cli import main as cli
from services.common.db.tables import identities, profiles, suppressions

MCID = "4" * 38


@pytest.fixture
def database(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("TRIGGERLINE_DB_URL", engine.url.render_as_string(hide_password=False))
    return engine


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def table(engine: Engine, which: str) -> list[tuple[object, ...]]:
    chosen = {"profiles": profiles, "identities": identities, "suppressions": suppressions}[which]
    with engine.connect() as conn:
        columns = [c for c in chosen.c if c.name != "created_at"]
        return [tuple(r) for r in conn.execute(select(*columns).order_by(*columns[:2]))]


HEADER = ["profile_id", "email", "first_name", "locale", "timezone", "email_consent", "mcid",
          "declared_id"]  # fmt: skip


def test_import_upserts_reports_a_dry_run_and_rejects_by_line(
    database: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_csv(
        tmp_path / "customers.csv",
        [
            HEADER,
            ["P-1", "ann@example.com", "Ann", "en-GB", "Europe/London", "yes", MCID, "D1"],
            ["P-2", "bob@example.com", "", "fr-FR", "", "no", "", "D2"],
            ["", "nobody@example.com", "", "", "", "", "", ""],  # line 4: no id
            ["P-3", "not-an-address", "", "", "", "", "", ""],  # line 5
            ["P-4", "dan@example.com", "", "", "", "", MCID, ""],  # line 6: Ann's mcid
            ["P-1", "ann@example.com", "", "", "", "", "", ""],  # line 7: P-1 again
        ],
    )
    assert cli(["profiles", "import", str(source), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "6 rows: would insert 2, would update 0, unchanged 0, would add 5 identities" in out
    assert table(database, "profiles") == []
    assert cli(["profiles", "import", str(source)]) == 0
    assert "insert 2" in capsys.readouterr().out
    assert table(database, "profiles") == [
        ("P-1", "ann@example.com", "Ann", "en-GB", "Europe/London", True),
        ("P-2", "bob@example.com", None, "fr-FR", None, False),
    ]
    assert sorted(table(database, "identities")) == [
        ("declared", "D1", "P-1"),
        ("declared", "D2", "P-2"),
        ("email", "ann@example.com", "P-1"),
        ("email", "bob@example.com", "P-2"),
        ("mcid", MCID, "P-1"),
    ]
    with (tmp_path / "customers.csv.rejects.csv").open() as handle:
        rejects = [(r["line"], r["reason"]) for r in csv.DictReader(handle)]
    assert rejects == [
        ("4", "missing_id"),
        ("5", "invalid_email"),
        ("6", "identity_conflict"),
        ("7", "duplicate_profile"),
    ]
    # a later file: one change, one identity that belongs to someone else in the database
    later = write_csv(
        tmp_path / "later.csv",
        [
            ["CustomerId", "Mail", "Lang", "Loyalty"],
            ["P-2", "bob@example.com", "de-DE", "D2"],
            ["P-5", "eve@example.com", "en-GB", "D1"],
        ],
    )
    args = ["profiles", "import", str(later), "--map", "profile_id=CustomerId", "--map",
            "email=Mail", "--map", "locale=Lang", "--identity", "declared=Loyalty"]  # fmt: skip
    assert cli(args) == 0
    assert "insert 0, update 1, unchanged 0, add 0 identities, rejected 1" in (
        capsys.readouterr().out
    )
    assert table(database, "profiles")[1] == ("P-2", "bob@example.com", None, "de-DE", None, False)


def test_jsonl_import_with_a_mapping(database: Engine, tmp_path: Path) -> None:
    source = tmp_path / "crm.jsonl"
    lines = [
        {"id": "C-1", "mail": "c1@example.com", "optIn": True, "ecid": MCID},
        {"id": "C-2", "mail": "c2@example.com", "optIn": False, "tz": "Europe/Paris"},
    ]
    source.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    maps = ["profile_id=id", "email=mail", "consent=optIn", "timezone=tz"]
    args = [
        "profiles",
        "import",
        str(source),
        *(f"--map={m}" for m in maps),
        "--identity=mcid=ecid",
    ]
    assert cli(args) == 0
    assert table(database, "profiles") == [
        ("C-1", "c1@example.com", None, None, None, True),
        ("C-2", "c2@example.com", None, None, "Europe/Paris", False),
    ]
    assert table(database, "identities") == [("mcid", MCID, "C-1")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "bad.csv",
            "profile_id,email\nP-1,a@b.io\nP-2,b@b.io,extra\n",
            "bad.csv line 3: 3 fields where the header has 2",
        ),
        (
            "bad.jsonl",
            '{"profile_id": "P-1", "email": "a@b.io"}\n{"profile_id": \n',
            "bad.jsonl line 2: not JSON",
        ),
        (
            "list.jsonl",
            '{"profile_id": "P-1", "email": "a@b.io"}\n[1, 2]\n',
            "list.jsonl line 2: a JSON line must be an object",
        ),
        ("empty.csv", "", "empty.csv: empty, or no header line"),
        ("nocol.csv", "id,mail\nP-1,a@b.io\n", "column 'profile_id' (profile_id) is not in"),
        (
            "latin.csv",
            "profile_id,email,first_name\nP-1,a@b.io,Ren\xe9\n",
            "not UTF-8 text",
        ),
        ("data.txt", "x", "say --format csv or --format jsonl"),
    ],
)
def test_a_malformed_file_is_one_line_and_imports_nothing(
    database: Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str,
    message: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode("latin-1"))
    assert cli(["profiles", "import", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert table(database, "profiles") == [] and table(database, "identities") == []


def test_suppress_adds_addresses_once_keeping_the_first_reason(
    database: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write_csv(tmp_path / "bounces.csv", [["email"], ["Gone@Example.com"]])
    assert cli(["profiles", "suppress", str(first), "--reason", "hard_bounce"]) == 0
    source = write_csv(
        tmp_path / "unsubscribed.csv",
        [
            ["email", "reason"],
            ["gone@example.com", ""],  # already suppressed as a hard bounce
            ["ann@example.com", "unsubscribed"],
            ["ANN@example.com", "unsubscribed"],  # the same address
            ["nope", ""],
        ],
    )
    assert cli(["profiles", "suppress", str(source), "--dry-run"]) == 0
    assert (
        "would add 1, widened to all mail 0, already suppressed 1, repeated 1, rejected 1"
        in capsys.readouterr().out
    )
    assert cli(["profiles", "suppress", str(source)]) == 0
    assert table(database, "suppressions") == [
        ("ann@example.com", "unsubscribed", "import:unsubscribed.csv"),
        ("gone@example.com", "hard_bounce", "import:bounces.csv"),
    ]
    with database.connect() as conn:
        assert conn.execute(select(func.count()).select_from(profiles)).scalar_one() == 0


def test_a_bounce_list_widens_an_unsubscribe_and_an_unsubscribe_never_narrows_a_bounce(
    database: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The import decides like the feedback service and the mailer (`suppression_change`): an
    unsubscribe stops marketing only, so a later bounce list must make it stop all mail."""
    unsubscribed = write_csv(tmp_path / "unsub.csv", [["email"], ["ann@example.com"]])
    assert cli(["profiles", "suppress", str(unsubscribed), "--reason", "unsubscribed"]) == 0
    bounces = write_csv(tmp_path / "bounces.csv", [["email"], ["ann@example.com"]])
    capsys.readouterr()
    assert cli(["profiles", "suppress", str(bounces), "--reason", "hard_bounce"]) == 0
    assert "added 0, widened to all mail 1, already suppressed 0" in capsys.readouterr().out
    assert cli(["profiles", "suppress", str(unsubscribed), "--reason", "unsubscribed"]) == 0
    assert "added 0, widened to all mail 0, already suppressed 1" in capsys.readouterr().out
    assert table(database, "suppressions") == [
        ("ann@example.com", "hard_bounce", "import:bounces.csv"),
    ]

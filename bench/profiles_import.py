"""Profile import throughput: rows/s of `triggerline profiles import` into PostgreSQL, as JSON.

Writes N synthetic profiles (id, email, first name, locale, time zone, consent, an mcid and a
declared id: three identities each) to a CSV file, then times, each in a fresh database:

- `import`: `triggerline profiles import FILE` into an empty database (a first load);
- `reimport`: the same command again over what it wrote (every row unchanged);
- `dry_run`: `--dry-run` over the loaded database;
- `baseline_copy`: the same rows written with PostgreSQL's COPY into the same tables, the
  fastest raw bulk load (no checks, no upsert, no rejects) to set the import beside.

Results go to bench/results/profiles_import.json.

    .venv/bin/python -m bench.profiles_import --count 1000000
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write_result  # noqa: E402
from services.common.db.engine import make_engine, upgrade  # noqa: E402
from services.common.settings import DatabaseSettings  # noqa: E402

SERVER = os.environ.get(
    "TRIGGERLINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:15432/triggerline"
)
LOCALES = ("en-GB", "fr-FR", "de-DE", "en-US")
ZONES = ("Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York")
COLUMNS = ("profile_id", "email", "first_name", "locale", "timezone", "email_consent")


def write_file(path: Path, count: int) -> None:
    rng = random.Random(7)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow([*COLUMNS, "mcid", "declared_id"])
        for n in range(count):
            out.writerow(
                [
                    f"P-{n:09d}",
                    f"shopper{n}@bench.example.com",
                    f"Shopper{n % 977}",
                    LOCALES[n % 4],
                    ZONES[n % 4],
                    "yes" if n % 10 else "no",
                    "".join(rng.choice("0123456789") for _ in range(38)),
                    f"D{n:09d}",
                ]
            )


def fresh_database() -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(DatabaseSettings.model_validate({"url": url}))
    upgrade(engine)
    engine.dispose()
    return url


def drop_database(url: str) -> None:
    admin = create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def timed_command(args: list[str], url: str) -> dict[str, Any]:
    env = {**os.environ, "TRIGGERLINE_DB_URL": url}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(
            (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2
        ),
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        "summary": done.stdout.strip().splitlines(),
    }


def baseline_copy(path: Path, url: str) -> float:
    """COPY the same rows into profiles and identities: a raw bulk load, nothing checked."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur, path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = list(reader)
        with cur.copy(
            "COPY profiles (profile_id, email, first_name, locale, timezone, email_consent, "
            "created_at) FROM STDIN"
        ) as copy:
            for r in rows:
                copy.write_row((r[0], r[1], r[2], r[3], r[4], r[5] == "yes", now))
        with cur.copy("COPY identities (kind, value, profile_id) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(("mcid", r[6], r[0]))
                copy.write_row(("declared", r[7], r[0]))
                copy.write_row(("email", r[1].lower(), r[0]))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "profiles.csv"
        write_file(path, args.count)
        command = [
            str(ROOT / ".venv" / "bin" / "triggerline"),
            "profiles",
            "import",
            str(path),
            "--batch-size",
            str(args.batch_size),
        ]
        url = fresh_database()
        try:
            first = timed_command(command, url)
            again = timed_command(command, url)
            dry = timed_command([*command, "--dry-run"], url)
        finally:
            drop_database(url)
        url = fresh_database()
        try:
            copy_seconds = baseline_copy(path, url)
        finally:
            drop_database(url)

    def rate(seconds: float) -> int:
        count: int = args.count
        return round(count / seconds)

    write_result(
        "profiles_import",
        {
            "rows": args.count,
            "identities_per_row": 3,
            "database": "PostgreSQL (local, deploy/local/postgres.sh)",
            "import_command": f"triggerline profiles import FILE --batch-size {args.batch_size}",
            "import": {**first, "rows_per_s": rate(first["seconds"])},
            "reimport_unchanged": {**again, "rows_per_s": rate(again["seconds"])},
            "dry_run": {**dry, "rows_per_s": rate(dry["seconds"])},
            "baseline_copy": {
                "seconds": round(copy_seconds, 2),
                "rows_per_s": rate(copy_seconds),
                "what": "psycopg COPY of the same rows into profiles and identities",
            },
        },
    )


if __name__ == "__main__":
    main()

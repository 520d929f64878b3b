"""`triggerline db`: upgrade the schema (Alembic) and seed the demo profiles."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, insert

from services.common.db.engine import make_engine, upgrade
from services.common.db.tables import identities, profiles
from services.common.settings import DatabaseSettings, load
from services.simulator.population import shopper

_BATCH = 5000


def seed_demo_profiles(engine: Engine, count: int, start: int = 0) -> int:
    """Write profiles for visitors [start, start + count), replacing earlier rows for them.

    Each profile is reachable by its visitor id (mcid), its declared shopper id and its email.
    """
    now = datetime.now(UTC)
    written = 0
    with engine.begin() as connection:
        for first in range(start, start + count, _BATCH):
            shoppers = [shopper(i) for i in range(first, min(first + _BATCH, start + count))]
            ids = [s.profile_id for s in shoppers]
            connection.execute(delete(identities).where(identities.c.profile_id.in_(ids)))
            connection.execute(delete(profiles).where(profiles.c.profile_id.in_(ids)))
            connection.execute(
                insert(profiles),
                [
                    {
                        "profile_id": s.profile_id,
                        "email": s.email,
                        "first_name": s.first_name,
                        "locale": s.locale,
                        "timezone": s.timezone,
                        "email_consent": True,
                        "created_at": now,
                    }
                    for s in shoppers
                ],
            )
            connection.execute(
                insert(identities),
                [
                    {"kind": kind, "value": value, "profile_id": s.profile_id}
                    for s in shoppers
                    for kind, value in (
                        ("mcid", s.mcid),
                        ("declared", s.declared_id),
                        ("email", s.email),
                    )
                ],
            )
            written += len(shoppers)
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="triggerline db")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("upgrade", help="bring the schema to the latest migration")
    seed = sub.add_parser("seed", help="write the demo profiles the simulator's visitors match")
    seed.add_argument("--profiles", type=int, default=1000)
    args = parser.parse_args(argv)
    engine = make_engine(load(DatabaseSettings))
    upgrade(engine)
    if args.action == "seed":
        print(f"seeded {seed_demo_profiles(engine, args.profiles)} demo profiles")
    else:
        print("database schema is up to date")
    engine.dispose()
    return 0

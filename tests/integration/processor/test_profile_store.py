"""ProfileStore on SQLite and PostgreSQL (the `engine` fixture): identities, profiles and
suppressions in few queries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, event, insert

from services.common.db.tables import identities, profiles, suppressions
from services.common.identity import IdentityKind
from services.processor.profiles import ProfileStore
from services.processor.rules.identity import IdentityKey

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def seed(engine: Engine, count: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(profiles),
            [
                {
                    "profile_id": f"P{n}",
                    "email": f" Shopper{n}@Example.com",
                    "first_name": f"Shopper {n}",
                    "locale": "fr",
                    "timezone": "Europe/Paris",
                    "email_consent": n % 2 == 0,
                    "created_at": NOW,
                }
                for n in range(count)
            ],
        )
        rows = [{"kind": "mcid", "value": f"m{n}", "profile_id": f"P{n}"} for n in range(count)]
        rows.append({"kind": "declared", "value": "shopper-1", "profile_id": "P1"})
        conn.execute(insert(identities), rows)
        conn.execute(
            insert(suppressions),
            [{"email": "shopper3@example.com", "reason": "hard_bounce", "created_at": NOW}],
        )


def count_statements(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_a_batch_of_identities_costs_a_statement_per_chunk_and_fills_the_caches(
    engine: Engine,
) -> None:
    asyncio.run(batch_of_identities(engine))


def test_a_profile_miss_is_one_statement_plus_its_suppression(engine: Engine) -> None:
    asyncio.run(profile_miss(engine))


async def batch_of_identities(engine: Engine) -> None:
    seed(engine, 700)  # more than one IN-list chunk of values
    store = ProfileStore(engine, 10_000, timedelta(minutes=1))
    keys = [IdentityKey(IdentityKind.MCID, f"m{n}") for n in range(700)]
    keys += [
        IdentityKey(IdentityKind.MCID, "nobody"),
        IdentityKey(IdentityKind.DECLARED, "shopper-1"),
    ]
    statements = count_statements(engine)

    await store.prefetch(keys)

    # identities with their profiles: two chunks of mcids, one of declared ids; suppressions of
    # the 700 addresses found: two chunks
    assert len(statements) == 3 + 2
    found = await store.find_profiles(keys)
    assert found[IdentityKey(IdentityKind.MCID, "m5")] == "P5"
    assert IdentityKey(IdentityKind.MCID, "nobody") not in found
    assert found[IdentityKey(IdentityKind.DECLARED, "shopper-1")] == "P1"
    profile = await store.profile("P3")
    assert profile is not None and profile.email == " Shopper3@Example.com"
    assert (profile.first_name, profile.timezone, profile.email_consent) == (
        "Shopper 3",
        "Europe/Paris",
        False,
    )
    assert await store.suppression(profile.email) == "hard_bounce"
    assert await store.suppression("shopper4@example.com") is None
    assert len(statements) == 5, "every answer after the batch came from the cache"


async def profile_miss(engine: Engine) -> None:
    seed(engine, 5)
    store = ProfileStore(engine, 100, timedelta(minutes=1))
    statements = count_statements(engine)
    profile = await store.profile("P3")
    assert profile is not None and profile.profile_id == "P3"
    assert await store.profile("P-unknown") is None
    assert await store.suppression("SHOPPER3@example.com ") == "hard_bounce"
    # P3 and its address's suppression entry; P-unknown alone; the suppression from the cache
    assert len(statements) == 2 + 1

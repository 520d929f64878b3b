"""ProfileStore: identity and profile lookups in the database, behind a bounded expiring cache.

Blocking SQLAlchemy calls run in a worker thread so the faust event loop keeps turning (other
partitions, heartbeats, the web server). Database errors become `TransientFailure`: the caller
retries, the trigger is never dropped for a database outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, and_, or_, select
from sqlalchemy.exc import SQLAlchemyError

from services.common.db.tables import identities, profiles, suppressions
from services.common.errors import TransientFailure
from services.processor.cache import TtlCache
from services.processor.rules.identity import IdentityKey, IdentityKind


@dataclass(frozen=True)
class Profile:
    """What the processor needs of a profile to address an email request."""

    profile_id: str
    email: str
    first_name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    email_consent: bool = True


class ProfileStore:
    """Lookups by identity and by profile id; answers (found or not) cached for `ttl`."""

    def __init__(self, engine: Engine, cache_size: int, ttl: timedelta) -> None:
        self._engine = engine
        self._identities: TtlCache[IdentityKey, str | None] = TtlCache(cache_size, ttl)
        self._profiles: TtlCache[str, Profile | None] = TtlCache(cache_size, ttl)
        self._suppressions: TtlCache[str, str | None] = TtlCache(cache_size, ttl)

    async def find_profiles(self, keys: Sequence[IdentityKey]) -> dict[IdentityKey, str]:
        """Profile ids of those keys that have one; one query for all uncached keys."""
        found: dict[IdentityKey, str] = {}
        missing: list[IdentityKey] = []
        for key in keys:
            hit, profile_id = self._identities.get(key)
            if not hit:
                missing.append(key)
            elif profile_id is not None:
                found[key] = profile_id
        if missing:
            fetched = await asyncio.to_thread(self._query_identities, missing)
            for key in missing:
                self._identities.put(key, fetched.get(key))
            found.update(fetched)
        return found

    async def profile(self, profile_id: str) -> Profile | None:
        hit, cached = self._profiles.get(profile_id)
        if hit:
            return cached
        row = await asyncio.to_thread(self._query_profile, profile_id)
        self._profiles.put(profile_id, row)
        return row

    async def suppression(self, email: str) -> str | None:
        """Why the address is on the suppression list (`unsubscribed`...), or None.

        Cached like profiles: an unsubscribe can take up to the cache TTL to reach the
        processor, which is why the mailer checks the list again just before sending.
        """
        address = email.strip().lower()  # the list's key, as the mailer writes it
        hit, cached = self._suppressions.get(address)
        if hit:
            return cached
        reason = await asyncio.to_thread(self._query_suppression, address)
        self._suppressions.put(address, reason)
        return reason

    def _query_suppression(self, address: str) -> str | None:
        query = select(suppressions.c.reason).where(suppressions.c.email == address)
        try:
            with self._engine.connect() as connection:
                reason = connection.execute(query).scalar_one_or_none()
        except SQLAlchemyError as exc:
            raise TransientFailure(f"suppression lookup failed: {type(exc).__name__}") from exc
        return None if reason is None else str(reason)

    def _query_identities(self, keys: Iterable[IdentityKey]) -> dict[IdentityKey, str]:
        condition = or_(
            *(and_(identities.c.kind == k.kind.value, identities.c.value == k.value) for k in keys)
        )
        query = select(identities.c.kind, identities.c.value, identities.c.profile_id).where(
            condition
        )
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(query).all()
        except SQLAlchemyError as exc:
            raise TransientFailure(f"identity lookup failed: {type(exc).__name__}") from exc
        return {IdentityKey(IdentityKind(kind), value): pid for kind, value, pid in rows}

    def _query_profile(self, profile_id: str) -> Profile | None:
        query = select(
            profiles.c.profile_id,
            profiles.c.email,
            profiles.c.first_name,
            profiles.c.locale,
            profiles.c.timezone,
            profiles.c.email_consent,
        ).where(profiles.c.profile_id == profile_id)
        try:
            with self._engine.connect() as connection:
                row = connection.execute(query).first()
        except SQLAlchemyError as exc:
            raise TransientFailure(f"profile lookup failed: {type(exc).__name__}") from exc
        if row is None:
            return None
        return Profile(
            profile_id=row.profile_id,
            email=row.email,
            first_name=row.first_name,
            locale=row.locale,
            timezone=row.timezone,
            email_consent=bool(row.email_consent),
        )

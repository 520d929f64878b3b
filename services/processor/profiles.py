"""ProfileStore: identity and profile lookups in the database, behind a bounded expiring cache.

Blocking SQLAlchemy calls run in a worker thread so the faust event loop keeps turning (other
partitions, heartbeats, the web server). Database errors become `TransientFailure`: the caller
retries, the trigger is never dropped for a database outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, Engine, select
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


# Values per `IN (...)` list: well inside every dialect's bound-parameter limit.
_IN_CHUNK = 500


class ProfileStore:
    """Lookups by identity and by profile id; answers (found or not) cached for `ttl`.

    A database round trip costs far more than the rest of a trigger's handling, so each miss
    fetches what the next steps will ask for in the same worker-thread call and connection: an
    identity lookup also loads the profiles it finds and their suppression entries, and a
    profile lookup also loads its suppression entry. Every answer is cached for the same `ttl`,
    so no answer is trusted for longer than before.
    """

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
            found.update(await self._fetch_identities(missing))
        return found

    async def prefetch(self, keys: Iterable[IdentityKey]) -> None:
        """Load the uncached keys of a whole batch of triggers in one worker-thread call, so
        the per-trigger `find_profiles` that follows is answered from the cache."""
        missing = list(dict.fromkeys(key for key in keys if not self._identities.get(key)[0]))
        if missing:
            await self._fetch_identities(missing)

    async def _fetch_identities(self, missing: list[IdentityKey]) -> dict[IdentityKey, str]:
        fetched, rows, reasons = await asyncio.to_thread(self._query_identities, missing)
        for key in missing:
            self._identities.put(key, fetched.get(key))
        self._remember(rows, reasons)
        return fetched

    async def profile(self, profile_id: str) -> Profile | None:
        hit, cached = self._profiles.get(profile_id)
        if hit:
            return cached
        rows, reasons = await asyncio.to_thread(self._query_profiles, [profile_id])
        self._remember(rows, reasons)
        return rows.get(profile_id)

    async def suppression(self, email: str) -> str | None:
        """Why the address is on the suppression list (`unsubscribed`...), or None.

        Cached like profiles: an unsubscribe can take up to the cache TTL to reach the
        processor, which is why the mailer checks the list again just before sending.
        """
        address = suppression_key(email)
        hit, cached = self._suppressions.get(address)
        if hit:
            return cached
        reasons = await asyncio.to_thread(self._query_suppressions, [address])
        self._suppressions.put(address, reasons.get(address))
        return reasons.get(address)

    def _remember(
        self, rows: Mapping[str, Profile | None], reasons: Mapping[str, str | None]
    ) -> None:
        for profile_id, row in rows.items():
            self._profiles.put(profile_id, row)
        for address, reason in reasons.items():
            self._suppressions.put(address, reason)

    # -- blocking queries, run in a worker thread -----------------------------------------------

    def _query_identities(
        self, keys: Sequence[IdentityKey]
    ) -> tuple[dict[IdentityKey, str], dict[str, Profile | None], dict[str, str | None]]:
        """Identity answers, plus the profiles found and their suppression entries."""
        by_kind: dict[str, list[str]] = {}
        for key in keys:
            by_kind.setdefault(key.kind.value, []).append(key.value)
        found: dict[IdentityKey, str] = {}
        try:
            with self._engine.connect() as connection:
                # One `kind = ? AND value IN (...)` per kind and chunk: a long OR of pairs
                # would exceed SQLite's expression depth on a large batch.
                for kind, values in by_kind.items():
                    for chunk in _chunks(values):
                        query = select(
                            identities.c.kind, identities.c.value, identities.c.profile_id
                        ).where(identities.c.kind == kind, identities.c.value.in_(chunk))
                        for k, value, pid in connection.execute(query):
                            found[IdentityKey(IdentityKind(k), value)] = pid
                wanted = list(dict.fromkeys(found.values()))
                rows, reasons = self._select_profiles(connection, wanted)
        except SQLAlchemyError as exc:
            raise TransientFailure(f"identity lookup failed: {type(exc).__name__}") from exc
        return found, rows, reasons

    def _query_profiles(
        self, profile_ids: Sequence[str]
    ) -> tuple[dict[str, Profile | None], dict[str, str | None]]:
        try:
            with self._engine.connect() as connection:
                return self._select_profiles(connection, profile_ids)
        except SQLAlchemyError as exc:
            raise TransientFailure(f"profile lookup failed: {type(exc).__name__}") from exc

    def _query_suppressions(self, addresses: Sequence[str]) -> dict[str, str | None]:
        try:
            with self._engine.connect() as connection:
                return self._select_suppressions(connection, addresses)
        except SQLAlchemyError as exc:
            raise TransientFailure(f"suppression lookup failed: {type(exc).__name__}") from exc

    def _select_profiles(
        self, connection: Connection, profile_ids: Sequence[str]
    ) -> tuple[dict[str, Profile | None], dict[str, str | None]]:
        """The profiles (None where gone) and the suppression entries of their addresses."""
        rows: dict[str, Profile | None] = dict.fromkeys(profile_ids)
        for chunk in _chunks(profile_ids):
            query = select(
                profiles.c.profile_id,
                profiles.c.email,
                profiles.c.first_name,
                profiles.c.locale,
                profiles.c.timezone,
                profiles.c.email_consent,
            ).where(profiles.c.profile_id.in_(chunk))
            for row in connection.execute(query):
                rows[row.profile_id] = Profile(
                    profile_id=row.profile_id,
                    email=row.email,
                    first_name=row.first_name,
                    locale=row.locale,
                    timezone=row.timezone,
                    email_consent=bool(row.email_consent),
                )
        addresses = [suppression_key(p.email) for p in rows.values() if p is not None]
        return rows, self._select_suppressions(connection, addresses)

    @staticmethod
    def _select_suppressions(
        connection: Connection, addresses: Sequence[str]
    ) -> dict[str, str | None]:
        reasons: dict[str, str | None] = dict.fromkeys(addresses)
        for chunk in _chunks(list(reasons)):
            query = select(suppressions.c.email, suppressions.c.reason).where(
                suppressions.c.email.in_(chunk)
            )
            for address, reason in connection.execute(query):
                reasons[address] = None if reason is None else str(reason)
        return reasons


def suppression_key(email: str) -> str:
    """The suppression list's key for an address, as the mailer writes it."""
    return email.strip().lower()


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]

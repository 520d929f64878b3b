"""ProfileStore: identity and profile lookups in the database, behind a bounded expiring cache.

Blocking SQLAlchemy calls run in a worker thread so the faust event loop keeps turning (other
partitions, heartbeats, the web server). Database errors become `TransientFailure`: the caller
retries, the trigger is never dropped for a database outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, select
from sqlalchemy.exc import SQLAlchemyError

from services.common.db.chunks import in_chunks
from services.common.db.tables import identities, profiles, suppressions
from services.common.errors import TransientFailure
from services.common.identity import IdentityKind
from services.common.suppression import suppression_key
from services.processor.cache import TtlCache
from services.processor.rules.identity import IdentityKey
from services.processor.rules.profile import Profile, ProfileView

__all__ = ["Profile", "ProfileStore"]

# The statements are built once: constructing and cache-keying a SQLAlchemy expression on every
# lookup cost more than running it. A cache miss on an identity is one statement for the
# identities and their profiles, and one for the suppression entries of the addresses found.
_PROFILE_COLUMNS = (
    profiles.c.profile_id.label("found_profile_id"),
    profiles.c.email,
    profiles.c.first_name,
    profiles.c.locale,
    profiles.c.timezone,
    profiles.c.email_consent,
)
# One `kind = ? AND value IN (...)` per kind and chunk: a long OR of pairs would exceed
# SQLite's expression depth on a large batch.
_IDENTITIES_AND_PROFILES = (
    select(identities.c.kind, identities.c.value, identities.c.profile_id, *_PROFILE_COLUMNS)
    .select_from(identities.outerjoin(profiles, profiles.c.profile_id == identities.c.profile_id))
    .where(
        identities.c.kind == bindparam("kind"),
        identities.c.value.in_(bindparam("values", expanding=True)),
    )
)
_PROFILES = select(*_PROFILE_COLUMNS).where(
    profiles.c.profile_id.in_(bindparam("values", expanding=True))
)
_SUPPRESSIONS = select(suppressions.c.email, suppressions.c.reason).where(
    suppressions.c.email.in_(bindparam("values", expanding=True))
)


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

    def at_hand(self, profile_id: str) -> ProfileView | None:
        """The profile and its suppression entry if both are cached, else None (not waiting)."""
        hit, profile = self._profiles.get(profile_id)
        if not hit:
            return None
        if profile is None:
            return ProfileView(None)
        hit, reason = self._suppressions.get(suppression_key(profile.email))
        return ProfileView(profile, reason) if hit else None

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
        rows: dict[str, Profile | None] = {}
        try:
            with self._engine.connect() as connection:
                for kind, values in by_kind.items():
                    for chunk in in_chunks(values):
                        params = {"kind": kind, "values": list(chunk)}
                        for row in connection.execute(_IDENTITIES_AND_PROFILES, params):
                            found[IdentityKey(IdentityKind(row.kind), row.value)] = row.profile_id
                            rows[row.profile_id] = _profile(row)
                reasons = self._select_suppressions(connection, _addresses(rows))
        except SQLAlchemyError as exc:
            raise TransientFailure(f"identity lookup failed: {type(exc).__name__}") from exc
        return found, rows, reasons

    def _query_profiles(
        self, profile_ids: Sequence[str]
    ) -> tuple[dict[str, Profile | None], dict[str, str | None]]:
        """The profiles (None where gone) and the suppression entries of their addresses."""
        rows: dict[str, Profile | None] = dict.fromkeys(profile_ids)
        try:
            with self._engine.connect() as connection:
                for chunk in in_chunks(profile_ids):
                    for row in connection.execute(_PROFILES, {"values": list(chunk)}):
                        rows[row.found_profile_id] = _profile(row)
                return rows, self._select_suppressions(connection, _addresses(rows))
        except SQLAlchemyError as exc:
            raise TransientFailure(f"profile lookup failed: {type(exc).__name__}") from exc

    def _query_suppressions(self, addresses: Sequence[str]) -> dict[str, str | None]:
        try:
            with self._engine.connect() as connection:
                return self._select_suppressions(connection, addresses)
        except SQLAlchemyError as exc:
            raise TransientFailure(f"suppression lookup failed: {type(exc).__name__}") from exc

    @staticmethod
    def _select_suppressions(
        connection: Connection, addresses: Sequence[str]
    ) -> dict[str, str | None]:
        reasons: dict[str, str | None] = dict.fromkeys(addresses)
        for chunk in in_chunks(list(reasons)):
            for address, reason in connection.execute(_SUPPRESSIONS, {"values": list(chunk)}):
                reasons[address] = None if reason is None else str(reason)
        return reasons


def _profile(row: Row[Any]) -> Profile | None:
    """The profile columns of a row; None when an identity points at a profile that is gone."""
    if row.found_profile_id is None:
        return None
    # In `_PROFILE_COLUMNS` order, which is `Profile`'s.
    found_id, email, first_name, locale, timezone, consent = row[-6:]
    return Profile(found_id, email, first_name, locale, timezone, bool(consent))


def _addresses(rows: Mapping[str, Profile | None]) -> list[str]:
    return [suppression_key(p.email) for p in rows.values() if p is not None]

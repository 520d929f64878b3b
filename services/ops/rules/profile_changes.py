"""What importing a batch of profile rows changes in the database, decided before writing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from services.ops.rules.profile_rows import Identity, ProfileRow, Reject

ChangeKind = Literal["insert", "update", "unchanged"]
COLUMNS = ("email", "first_name", "locale", "timezone", "email_consent")


@dataclass(frozen=True)
class StoredProfile:
    """A profile row as the database holds it."""

    profile_id: str
    email: str
    first_name: str | None
    locale: str | None
    timezone: str | None
    email_consent: bool


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    profile: StoredProfile  # what the row will be after the import
    changed: tuple[str, ...] = ()  # the columns an update changes


def _keep(given: str | None, kept: str | None) -> str | None:
    return kept if given is None else given


def merged(stored: StoredProfile | None, row: ProfileRow, default_consent: bool) -> Change:
    """The row the database should hold: the file's values, and for an empty cell the stored
    value (or, for a new profile, the default)."""

    consent_default = stored.email_consent if stored is not None else default_consent
    after = StoredProfile(
        row.profile_id,
        row.email,
        _keep(row.first_name, stored.first_name if stored else None),
        _keep(row.locale, stored.locale if stored else None),
        _keep(row.timezone, stored.timezone if stored else None),
        consent_default if row.consent is None else row.consent,
    )
    if stored is None:
        return Change("insert", after)
    changed = tuple(c for c in COLUMNS if getattr(stored, c) != getattr(after, c))
    return Change("update" if changed else "unchanged", after, changed)


def identity_conflict(row: ProfileRow, owners: Mapping[Identity, str]) -> Reject | None:
    """An identity the database already gives to another profile: refused, never moved."""
    for identity in row.identities:
        owner = owners.get(identity)
        if owner is not None and owner != row.profile_id:
            return Reject(
                row.line,
                "identity_conflict",
                f"{identity[0]} {identity[1]} belongs to profile {owner} in the database",
            )
    return None


@dataclass
class BatchPlan:
    """One batch decided: what to write, and the rows refused against the database."""

    writes: list[StoredProfile] = field(default_factory=list)
    identities: list[tuple[str, str, str]] = field(default_factory=list)  # kind, value, profile
    rejects: list[Reject] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def plan_batch(
    rows: Sequence[ProfileRow],
    stored: Mapping[str, StoredProfile],
    owners: Mapping[Identity, str],
    default_consent: bool,
) -> BatchPlan:
    """Inserts and updates for the batch, new identities, and rows whose identities belong to
    another profile already. Unchanged profiles with nothing new are not written at all."""
    plan = BatchPlan()
    for row in rows:
        conflict = identity_conflict(row, owners)
        if conflict is not None:
            plan.rejects.append(conflict)
            plan.counts[f"rejected:{conflict.reason}"] += 1
            continue
        change = merged(stored.get(row.profile_id), row, default_consent)
        plan.counts[change.kind] += 1
        if change.kind != "unchanged":
            plan.writes.append(change.profile)
        for kind, value in row.identities:
            if owners.get((kind, value)) is None:
                plan.identities.append((kind, value, row.profile_id))
                plan.counts["identities_added"] += 1
    return plan


def describe_import(counts: Counter[str], dry_run: bool, rejects_path: str | None) -> str:
    """The summary line(s) an import prints."""
    verb = "would " if dry_run else ""
    rejected = sum(n for k, n in counts.items() if k.startswith("rejected:"))
    lines = [
        f"{counts['rows']} rows: {verb}insert {counts['insert']}, {verb}update "
        f"{counts['update']}, unchanged {counts['unchanged']}, {verb}add "
        f"{counts['identities_added']} identities, rejected {rejected}"
    ]
    for key, count in sorted(counts.items()):
        if key.startswith("rejected:") and count:
            lines.append(f"  rejected {count:>8}  {key.split(':', 1)[1]}")
    if rejected and rejects_path:
        lines.append(f"  rejected lines and reasons: {rejects_path}")
    return "\n".join(lines)

"""Rows of a profile or suppression file as the database will hold them, or why a row is refused.

A column mapping names, for each profile field, the file's column, and lists identity columns
by kind (`mcid`, `declared`, `email`). An empty cell means "not given": a new profile gets the
default and a known one keeps what it has. Emails are checked as the mailer checks a recipient,
so an address imported here is one the mailer can send to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from zoneinfo import available_timezones

from services.common.addresses import valid_address
from services.common.errors import InvalidInput
from services.common.identity import IdentityKind, usable_mc_id
from services.common.suppression import (
    COMPLAINT,
    HARD_BOUNCE,
    MANUAL,
    UNSUBSCRIBED,
    suppression_key,
)
from services.ops.errors import OperatorError

PROFILE_FIELDS = ("profile_id", "email", "first_name", "locale", "timezone", "consent")
# The defaults a file with the usual column names needs no mapping for.
DEFAULT_COLUMNS = {field: field for field in PROFILE_FIELDS} | {"consent": "email_consent"}
DEFAULT_IDENTITIES = (("mcid", "mcid"), ("declared", "declared_id"))
SUPPRESSION_REASONS = (UNSUBSCRIBED, HARD_BOUNCE, COMPLAINT, MANUAL)
LIMITS = {"profile_id": 64, "email": 320, "first_name": 200, "locale": 35, "timezone": 64}

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}

Identity = tuple[str, str]  # (kind, value) as the `identities` table keys it


@dataclass(frozen=True)
class ColumnMapping:
    """Profile field -> column, and (identity kind, column) pairs, in the file's terms."""

    fields: Mapping[str, str]
    identities: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ProfileRow:
    """One profile as the file gives it; None for a field the file leaves empty."""

    line: int
    profile_id: str
    email: str
    first_name: str | None
    locale: str | None
    timezone: str | None
    consent: bool | None
    identities: tuple[Identity, ...]


@dataclass(frozen=True)
class SuppressionRow:
    line: int
    email: str  # normalised: the suppression list's key
    reason: str


@dataclass(frozen=True)
class Reject:
    """A row left out, with the reason written to the rejects file."""

    line: int
    reason: str  # missing_id, invalid_email, identity_conflict, duplicate_profile, ...
    detail: str


def _pairs(values: Sequence[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, column = value.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise OperatorError(f"{option} {value!r} is not NAME=COLUMN (e.g. {option} email=Mail)")
        pairs.append((name.strip(), column.strip()))
    return pairs


def column_mapping(
    maps: Sequence[str], identities: Sequence[str], header: Sequence[str]
) -> ColumnMapping:
    """The mapping from `--map FIELD=COLUMN` and `--identity KIND=COLUMN` over the defaults.

    Without `--identity`, the `mcid` and `declared_id` columns (when present) and the email are
    the identities, as the demo profiles have them. Every mapped column must be in the header.
    """
    fields = dict(DEFAULT_COLUMNS)
    for name, column in _pairs(maps, "--map"):
        if name not in PROFILE_FIELDS:
            raise OperatorError(f"--map {name}: not a profile field ({', '.join(PROFILE_FIELDS)})")
        fields[name] = column
    known = set(header)
    for required in ("profile_id", "email"):
        if fields[required] not in known:
            raise OperatorError(
                f"column {fields[required]!r} ({required}) is not in the file (it has "
                f"{', '.join(header) or 'no columns'}); map it with --map {required}=COLUMN"
            )
    for name in [f for f in PROFILE_FIELDS if f not in ("profile_id", "email")]:
        if fields[name] not in known:
            if any(m.partition("=")[0].strip() == name for m in maps):
                raise OperatorError(f"--map {name}={fields[name]}: no such column in the file")
            del fields[name]
    kinds = {k.value for k in IdentityKind}
    chosen = _pairs(identities, "--identity")
    if not chosen:
        chosen = [(k, c) for k, c in DEFAULT_IDENTITIES if c in known]
        chosen.append(("email", fields["email"]))
    for kind, column in chosen:
        if kind not in kinds:
            raise OperatorError(f"--identity {kind}: kinds are {', '.join(sorted(kinds))}")
        if column not in known:
            raise OperatorError(f"--identity {kind}={column}: no such column in the file")
    return ColumnMapping(fields, tuple(chosen))


def _text(record: Mapping[str, object], column: str | None) -> str | None:
    if column is None:
        return None
    value = record.get(column)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _consent(value: object) -> bool | None | str:
    if isinstance(value, bool) or value is None:
        return value
    text = str(value).strip().lower()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return text


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def checked_email(value: str | None, line: int) -> str | Reject:
    """The address, or why the mailer would refuse it."""
    if value is None:
        return Reject(line, "invalid_email", "no email address")
    try:
        valid_address(value)
    except InvalidInput as exc:
        return Reject(line, "invalid_email", exc.detail)
    return value


def profile_row(
    line: int, record: Mapping[str, object], mapping: ColumnMapping
) -> ProfileRow | Reject:
    """The row as a profile, or the first reason it cannot be one."""
    fields = mapping.fields
    profile_id = _text(record, fields["profile_id"])
    if profile_id is None:
        return Reject(line, "missing_id", f"column {fields['profile_id']!r} is empty")
    email = checked_email(_text(record, fields["email"]), line)
    if isinstance(email, Reject):
        return email
    values = {
        name: _text(record, fields.get(name)) for name in ("first_name", "locale", "timezone")
    }
    for name, limit in LIMITS.items():
        value = {"profile_id": profile_id, "email": email}.get(name, values.get(name))
        if value is not None and len(value) > limit:
            return Reject(line, "too_long", f"{name} is longer than {limit} characters")
    zone = values["timezone"]
    if zone is not None and zone not in _zones():
        return Reject(line, "invalid_timezone", f"{zone!r} is not an IANA time zone")
    consent = _consent(record.get(fields["consent"])) if "consent" in fields else None
    if isinstance(consent, str):
        return Reject(line, "invalid_consent", f"{consent!r} is not yes/no, true/false or 1/0")
    found: list[Identity] = []
    for kind, column in mapping.identities:
        value = _text(record, column)
        if kind == "mcid":
            value = usable_mc_id(value) if value else None  # the all-zero placeholder is nobody
        elif kind == "email" and value is not None:
            value = value.lower()  # the processor looks emails up lower-cased
        if value is not None and len(value) <= 320 and (kind, value) not in found:
            found.append((kind, value))
    return ProfileRow(
        line,
        profile_id,
        email,
        values["first_name"],
        values["locale"],
        zone,
        consent,
        tuple(found),
    )


class FileIndex:
    """What earlier rows of the same file claimed: a profile id, and each identity's profile.

    A second row for a profile id, or an identity a second profile claims, is refused: which of
    the two is right is not ours to guess. Memory grows with the file (an entry per identity).
    """

    def __init__(self) -> None:
        self._profiles: dict[str, int] = {}
        # keyed "kind value" rather than by tuple: a third less memory for a large file
        self._identities: dict[str, str] = {}

    def claim(self, row: ProfileRow) -> Reject | None:
        first = self._profiles.get(row.profile_id)
        if first is not None:
            return Reject(
                row.line, "duplicate_profile", f"{row.profile_id} is also on line {first}"
            )
        for identity in row.identities:
            owner = self._identities.get(f"{identity[0]} {identity[1]}")
            if owner is not None and owner != row.profile_id:
                return Reject(
                    row.line,
                    "identity_conflict",
                    f"{identity[0]} {identity[1]} is also given to {owner} earlier in the file",
                )
        self._profiles[row.profile_id] = row.line
        for kind, value in row.identities:
            self._identities.setdefault(f"{kind} {value}", row.profile_id)
        return None


def suppression_row(
    line: int,
    record: Mapping[str, object],
    email_column: str,
    reason_column: str | None,
    default_reason: str,
) -> SuppressionRow | Reject:
    """A suppression list entry; the address is normalised as the mailer keys it."""
    email = checked_email(_text(record, email_column), line)
    if isinstance(email, Reject):
        return email
    reason = _text(record, reason_column) or default_reason
    if reason not in SUPPRESSION_REASONS:
        return Reject(line, "unknown_reason", f"{reason!r} is not {', '.join(SUPPRESSION_REASONS)}")
    return SuppressionRow(line, suppression_key(email), reason)

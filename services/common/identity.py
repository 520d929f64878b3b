"""Which visitor ids count as an identity, and in which order they are tried.

Adobe's own sample trigger carries an all-zero `mcId`: a placeholder, not a visitor. Treating it
as an id would key every such trigger to one partition and match every anonymous visitor to one
profile, so an empty or all-zero mcId is no identity anywhere in Triggerline.
"""

from __future__ import annotations

import enum


class IdentityKind(enum.StrEnum):
    """The `identities.kind` column."""

    MCID = "mcid"
    DECLARED = "declared"
    EMAIL = "email"


class IdentityPrecedence(enum.StrEnum):
    """The routing file's `identity.precedence`."""

    DECLARED_FIRST = "declared_first"  # the logged-in shopper, then the browser's mcId
    MCID_FIRST = "mcid_first"  # the browser's mcId, then the declared ids


def usable_mc_id(value: object) -> str | None:
    """The mcId as an identity, or `None` when it is absent, empty or all zeros."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not text or text.strip("0") == "":
        return None
    return text

"""Which page and HTTP status answer an unsubscribe request, and what makes a one-click POST."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from services.common.unsubscribe_token import Rejection

ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"


class PageKind(enum.StrEnum):
    """The pages the endpoint can show; each has its strings in the catalogue."""

    CONFIRM = "confirm"  # GET with a good token: the button
    DONE = "done"  # POST recorded (first time or again: the answer is the same)
    ALREADY = "already"  # GET for an address already suppressed: no button
    INVALID = "invalid"  # forged, altered, unknown key or unknown ref
    EXPIRED = "expired"
    BAD_REQUEST = "bad_request"  # a POST without the one-click body
    UNAVAILABLE = "unavailable"  # the database is down: try again


# Why a token or its ref cannot be used -> the page and status that say so. Refusals say
# nothing about which check failed beyond expiry: that is for the logs and metrics.
_REFUSALS: dict[str, tuple[PageKind, int]] = {
    Rejection.MALFORMED.value: (PageKind.INVALID, 400),
    Rejection.UNKNOWN_KEY.value: (PageKind.INVALID, 400),
    Rejection.BAD_SIGNATURE.value: (PageKind.INVALID, 400),
    Rejection.EXPIRED.value: (PageKind.EXPIRED, 410),
    "unknown_ref": (PageKind.INVALID, 404),
    "unknown_profile": (PageKind.INVALID, 404),
    "legacy_disabled": (PageKind.INVALID, 400),
}

STATUS = {
    PageKind.CONFIRM: 200,
    PageKind.DONE: 200,
    PageKind.ALREADY: 200,
    PageKind.BAD_REQUEST: 400,
    PageKind.UNAVAILABLE: 503,
}


def refusal_page(reason: str) -> tuple[PageKind, int]:
    """The page and HTTP status for a refused token; anything unforeseen is `INVALID`."""
    return _REFUSALS.get(reason, (PageKind.INVALID, 400))


def is_one_click(form: Mapping[str, str]) -> bool:
    """RFC 8058: the POST body is `List-Unsubscribe=One-Click` (form-encoded or multipart).

    A bare POST is refused so that nothing but a mail client honouring the header, or the
    confirmation page's own button, can unsubscribe.
    """
    return form.get(ONE_CLICK_FIELD, "").strip() == ONE_CLICK_VALUE


def mask_address(address: str) -> str:
    """`maria@example.com` -> `m••••@example.com`: enough for a person to recognise their
    address, not enough for someone holding a forwarded link to learn it."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local:
        return "•••"
    return f"{local[0]}{'•' * min(max(len(local) - 1, 3), 6)}@{domain}"

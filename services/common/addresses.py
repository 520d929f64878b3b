"""Which email addresses Triggerline mails: one check for the mailer, the imports and the tests."""

from __future__ import annotations

import re
from email.headerregistry import Address

from services.common.errors import InvalidInput

# Deliberately narrower than RFC 5322: the dot-atom forms real mailboxes use, no quoted local
# parts, no IP literals. Anything else is dead-lettered rather than guessed at.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"^(?P<local>{_LOCAL})@(?P<domain>{_LABEL}(?:\.{_LABEL})+)$")
# Control characters (CR and LF above all) and the Unicode line and paragraph separators.
CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def valid_address(address: str) -> Address:
    """The address as a header object, or `InvalidInput` for anything unsafe or malformed."""
    if CONTROL.search(address) or len(address) > 254:
        raise InvalidInput("invalid_address", "address holds control characters or is too long")
    match = _ADDRESS.match(address.strip())
    if match is None or len(match["local"]) > 64:
        raise InvalidInput("invalid_address", f"{address.strip()[:80]!r} is not a mailbox address")
    return Address(username=match["local"], domain=match["domain"])

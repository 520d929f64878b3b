"""The demo population: shoppers the simulator's visitors are, and the profiles seeded for them.

Deterministic from an index, so `triggerline db seed` and the simulator agree without sharing
state: visitor `i` has profile `P0000000i` when `i < profiles`, and no profile otherwise.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

_FIRST_NAMES = (
    "Ada",
    "Bruno",
    "Chloé",
    "Dmitri",
    "Elif",
    "Farah",
    "Gustavo",
    "Hana",
    "Ines",
    "Jonas",
    "Kenji",
    "Léa",
    "Mateo",
    "Nadia",
    "Olu",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tariq",
)
_TIMEZONES = ("Europe/Paris", "Europe/London", "America/New_York", "Asia/Tokyo", "UTC")


@dataclass(frozen=True)
class Shopper:
    """One visitor of the demo shop and what Campaign would know about them."""

    index: int
    profile_id: str
    mcid: str
    declared_id: str
    email: str
    first_name: str
    timezone: str
    locale: str


def _digits(seed: str, count: int) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return str(int(digest, 16))[:count].rjust(count, "0")


def shopper(index: int) -> Shopper:
    """The shopper behind visitor `index`."""
    return Shopper(
        index=index,
        profile_id=f"P{index:09d}",
        mcid=_digits(f"mcid:{index}", 38),
        declared_id=hashlib.sha1(f"shopper:{index}".encode(), usedforsecurity=False)
        .hexdigest()[:32]
        .upper(),
        email=f"shopper{index}@example.com",
        first_name=_FIRST_NAMES[index % len(_FIRST_NAMES)],
        timezone=_TIMEZONES[index % len(_TIMEZONES)],
        locale="fr-FR" if index % 3 == 0 else "en-GB",
    )

"""Access tokens the simulated IMS has issued, so the pipeline API can check Bearer tokens."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Issued:
    token: str
    client_id: str
    expires_at: float  # epoch seconds


class TokenStore:
    """Issues opaque tokens with a lifetime; revoking makes every issued token unknown."""

    def __init__(self) -> None:
        self._issued: dict[str, Issued] = {}

    def issue(self, client_id: str, lifetime: timedelta, now: float) -> Issued:
        self._forget_expired(now)
        issued = Issued(
            "sim." + secrets.token_urlsafe(24), client_id, now + lifetime.total_seconds()
        )
        self._issued[issued.token] = issued
        return issued

    def valid(self, token: str, now: float) -> bool:
        issued = self._issued.get(token)
        return issued is not None and issued.expires_at > now

    def revoke_all(self) -> int:
        count = len(self._issued)
        self._issued.clear()
        return count

    def _forget_expired(self, now: float) -> None:
        for token in [t for t, i in self._issued.items() if i.expires_at <= now]:
            del self._issued[token]

"""The client every service uses to get IMS tokens from the auth service, cached and thread-safe.

Services never hold the IMS secret or private key: they hold one credential of their own for
the auth service, and ask it for tokens over HTTP.

    tokens = TokenClient("http://127.0.0.1:7791", "fetcher", secret)
    headers = {"Authorization": f"Bearer {tokens.token()}"}
    ...  # on a 401 upstream:
    tokens.invalidate(rejected_token)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import requests
from pydantic import SecretStr

from services.common.errors import PermanentFailure, TransientFailure

CLIENT_HEADER = "X-Triggerline-Client"


@dataclass(frozen=True)
class _Cached:
    value: str = field(repr=False)
    received_at: float  # epoch seconds
    expires_at: float  # epoch seconds

    def fresh(self, now: float, share: float) -> bool:
        """Still worth using: before `share` of the remaining lifetime seen at receipt."""
        return now < self.received_at + (self.expires_at - self.received_at) * share


class TokenClient:
    """Gets the shared IMS token from the auth service and caches it until shortly before expiry.

    Safe to call from many threads: at most one request to the auth service is in flight.
    Raises `TransientFailure` when auth is unreachable or has no token now (back off and
    retry), `PermanentFailure` when auth refuses this client's credential (a configuration
    error: no retry will help).
    """

    def __init__(
        self,
        base_url: str,
        client_name: str,
        client_secret: str | SecretStr,
        timeout: float = 5.0,
        refresh_share: float = 0.8,
        session: requests.Session | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        secret = (
            client_secret.get_secret_value()
            if isinstance(client_secret, SecretStr)
            else client_secret
        )
        self._headers = {"Authorization": f"Bearer {secret}", CLIENT_HEADER: client_name}
        self._timeout = timeout
        self._share = refresh_share
        self._session = session or requests.Session()
        self._lock = threading.Lock()
        self._cached: _Cached | None = None

    def __repr__(self) -> str:
        return f"TokenClient({self._base!r}, {self._headers[CLIENT_HEADER]!r})"

    def token(self) -> str:
        """A valid IMS access token."""
        with self._lock:
            cached = self._cached
            if cached is not None and cached.fresh(time.time(), self._share):
                return cached.value
            self._cached = self._call("GET", "/v1/token", None)
            return self._cached.value

    def invalidate(self, token: str) -> None:
        """Report that `token` got a 401 upstream: auth refreshes once, and the next `token()`
        returns the new one."""
        with self._lock:
            if self._cached is not None and self._cached.value != token:
                return  # already replaced since that request was sent
            self._cached = None
            self._cached = self._call("POST", "/v1/token/invalidate", {"access_token": token})

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> _Cached:
        url = f"{self._base}{path}"
        try:
            reply = self._session.request(
                method, url, headers=self._headers, json=body, timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise TransientFailure(f"auth unreachable at {url} ({type(exc).__name__})") from None
        with reply:
            if reply.status_code == 401:
                raise PermanentFailure(
                    f"auth at {url} refused this service's credential: check its client name "
                    "and secret against TRIGGERLINE_AUTH_CLIENTS",
                    401,
                )
            if reply.status_code != 200:
                raise TransientFailure(
                    f"auth at {url} answered {reply.status_code}", _retry_after(reply)
                )
            try:
                document = reply.json()
                value, expires_at = str(document["access_token"]), float(document["expires_at"])
            except (ValueError, KeyError, TypeError):
                raise TransientFailure(f"auth at {url} answered without a token") from None
        return _Cached(value, time.time(), expires_at)


def _retry_after(reply: requests.Response) -> timedelta | None:
    try:
        return timedelta(seconds=float(reply.headers.get("Retry-After", "")))
    except ValueError:
        return None

"""The token cache: one token served to every client, refreshed early, one IMS call at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from services.auth import metrics
from services.auth.ims import TokenSource
from services.auth.rules.refresh import Token, refresh_due_at, should_refresh
from services.common.backoff import backoff_delay
from services.common.errors import PermanentFailure, TransientFailure, TriggerlineError
from services.common.health import Probes

log = logging.getLogger(__name__)
_MAX_SLEEP = 1.0  # the loop re-checks at least this often, so readiness follows expiry


def utcnow() -> datetime:
    return datetime.now(UTC)


class TokenKeeper:
    """Holds the current token; every IMS call goes through the one in-flight refresh.

    A request finding a valid token gets it at once, even past the refresh point: the
    background loop refreshes, and while IMS is down it keeps serving the old token until it
    expires. A request finding no valid token waits for the shared refresh.
    """

    def __init__(
        self,
        source: TokenSource,
        share: float,
        retry_initial: timedelta,
        retry_max: timedelta,
        probes: Probes,
        clock: Callable[[], datetime] = utcnow,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._source = source
        self._share = share
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._probes = probes
        self._clock = clock
        self._jitter = jitter
        self._current: Token | None = None
        self._inflight: asyncio.Future[Token] | None = None
        self._attempt = 0
        self._next_try = clock()
        self._last_problem = "no token obtained yet"
        metrics.TOKEN_AGE.set_function(self._age)
        metrics.TOKEN_REMAINING.set_function(self._remaining)
        probes.not_ready("token", self._last_problem)

    async def token(self) -> Token:
        """A valid token; `TransientFailure`/`PermanentFailure` when none can be had now."""
        current = self._current
        if current is not None and current.valid_at(self._clock()):
            return current
        return await self._refresh()

    async def invalidate(self, value: str) -> Token:
        """A client got 401 with `value`: drop it and refresh, once however many report it."""
        current = self._current
        if current is not None and value == current.value:
            log.info("a client reported the current token rejected upstream; refreshing now")
            self._current = None
            self._next_try = self._clock()  # a known-bad token justifies an immediate call
            return await self._refresh()
        return await self.token()  # an older token: the current one (or the refresh) answers

    async def run(self) -> None:
        """Refresh at the configured share of lifetime; back off with jitter on failure."""
        while True:
            self._probes.beat()
            now = self._clock()
            due = should_refresh(self._current, now, self._share)
            if due and now >= self._next_try:
                with contextlib.suppress(TriggerlineError):
                    await self._refresh()
                continue
            wake_at = (
                self._next_try
                if due or self._current is None
                else refresh_due_at(self._current, self._share)
            )
            await self._sleep((wake_at - now).total_seconds())

    def ready(self) -> bool:
        return self._current is not None and self._current.valid_at(self._clock())

    async def _refresh(self) -> Token:
        """Join the refresh in flight, or start one unless IMS is being backed off from."""
        if self._inflight is None:
            wait = self._next_try - self._clock()
            if wait > timedelta(0):
                raise TransientFailure(
                    f"no valid token; next IMS attempt in {wait.total_seconds():.1f}s "
                    f"(last problem: {self._last_problem})",
                    wait,
                )
            self._inflight = asyncio.ensure_future(self._fetch())
        return await asyncio.shield(self._inflight)

    async def _fetch(self) -> Token:
        try:
            token = await asyncio.get_running_loop().run_in_executor(None, self._source)
        except TransientFailure as exc:
            self._failed("unavailable", str(exc), exc.retry_after)
            raise
        except PermanentFailure as exc:
            self._failed("rejected", str(exc), None)
            raise
        finally:
            self._inflight = None
        self._current = token
        self._attempt = 0
        self._next_try = self._clock()
        metrics.REFRESHES.inc()
        self._probes.ready("token")
        log.info("obtained a token valid for %ds", int(token.lifetime.total_seconds()))
        return token

    def _failed(self, kind: str, problem: str, retry_after: timedelta | None) -> None:
        metrics.FAILURES.labels(kind).inc()
        self._last_problem = problem
        self._attempt += 1
        pause = backoff_delay(
            self._attempt, self._retry_initial, self._retry_max, self._jitter(), retry_after
        )
        self._next_try = self._clock() + pause
        current = self._current
        if current is not None and current.valid_at(self._clock()):
            left = int((current.expires_at - self._clock()).total_seconds())
            log.warning(
                "token refresh failed (%s); serving the current token, %ds left", problem, left
            )
        else:
            log.error("token refresh failed (%s); no valid token to serve", problem)
            self._probes.not_ready("token", f"no valid token: {problem}")

    async def _sleep(self, seconds: float) -> None:
        """Sleep a while, then keep readiness true to the token's expiry."""
        await asyncio.sleep(max(0.01, min(seconds, _MAX_SLEEP)))
        if not self.ready():
            self._probes.not_ready("token", f"no valid token: {self._last_problem}")

    def _age(self) -> float:
        current = self._current
        return (self._clock() - current.issued_at).total_seconds() if current else 0.0

    def _remaining(self) -> float:
        current = self._current
        return max(0.0, (current.expires_at - self._clock()).total_seconds()) if current else 0.0

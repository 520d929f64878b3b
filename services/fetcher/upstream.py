"""The pipeline consume API over HTTP: one streamed GET, its lines, and its failures as kinds."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

import requests

from services.common.errors import PermanentFailure, TransientFailure
from services.fetcher.framing import Frame, LineFramer, Oversized

log = logging.getLogger(__name__)

_CHUNK = 256 * 1024


class Unauthorized(TransientFailure):
    """Upstream refused the token: ask auth for a fresh one, then retry."""


@dataclass(frozen=True)
class StreamRequest:
    topic: str
    group: str
    assign: Mapping[int, int]  # partition -> next offset to read
    reset: str
    sync_interval_ms: int

    def params(self) -> dict[str, str]:
        params = {"group": self.group, "reset": self.reset}
        if self.assign:
            params["assign"] = ",".join(f"{p}:{o}" for p, o in sorted(self.assign.items()))
        if self.sync_interval_ms:
            params["syncInterval"] = str(self.sync_interval_ms)
        return params


def _retry_after(response: requests.Response) -> timedelta | None:
    value = response.headers.get("Retry-After", "")
    try:
        return timedelta(seconds=float(value))
    except ValueError:
        return None


class UpstreamStream:
    """Opens consume streams; yields envelope lines, bounded in length, until the server closes."""

    def __init__(
        self,
        endpoint: str,
        read_timeout: float,
        max_line_bytes: int = 1_000_000,
        connect_timeout: float = 5.0,
    ) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._timeouts = (connect_timeout, read_timeout)
        self._max_line_bytes = max_line_bytes
        self._session = requests.Session()

    def batches(self, request: StreamRequest, token: str) -> Iterator[list[Frame]]:
        """Complete envelope lines (or `Oversized` stand-ins), in the batches the network
        delivers them.

        Lines are handed on a batch at a time: per-line handling in Python would cost more than
        the envelopes' own processing.
        """
        url = f"{self._endpoint}/pipeline/topics/{request.topic}/messages"
        try:
            response = self._session.get(
                url,
                params=request.params(),
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                stream=True,
                timeout=self._timeouts,
            )
        except requests.RequestException as exc:
            raise TransientFailure(f"pipeline unreachable: {type(exc).__name__}") from None
        with response:
            self._raise_for_status(response)
            framer = LineFramer(self._max_line_bytes)
            try:
                for chunk in response.iter_content(chunk_size=_CHUNK):
                    frames = framer.feed(chunk)
                    if frames:
                        yield frames
            except requests.RequestException as exc:
                raise TransientFailure(f"pipeline stream broke: {type(exc).__name__}") from None
            rest = framer.remainder()
            if isinstance(rest, Oversized):
                yield [rest]  # over the bound whole or not, it can never be a message
            elif rest is not None:
                # The server closed in the middle of an envelope: that partial line is not a
                # message (it is re-read from the pointer on reconnect).
                raise TransientFailure("pipeline stream ended inside an envelope")

    @staticmethod
    def _raise_for_status(response: requests.Response) -> None:
        status = response.status_code
        if status == 200:
            return
        body = response.text[:300]
        if status == 401:
            raise Unauthorized("pipeline answered 401: token refused")
        if status in (400, 404):
            raise PermanentFailure(f"pipeline answered {status}: {body}", code=status)
        raise TransientFailure(
            f"pipeline answered {status}: {body}", retry_after=_retry_after(response)
        )

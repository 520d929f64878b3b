"""Run an aiohttp application on a free loopback port in a background thread, for real HTTP."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class RunningApp:
    """An app served by its own event loop thread; `stop()` tears everything down."""

    def __init__(self, app: web.Application, port: int = 0) -> None:
        self.app = app
        self._port = port  # 0: any free port
        self.loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app, access_log=None)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.port = self.call(self._start())
        self.url = f"http://127.0.0.1:{self.port}"

    def call(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _start(self) -> int:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        return int(self._runner.addresses[0][1])

    def stop(self) -> None:
        self.call(self._runner.cleanup())
        self.call(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def rsa_key_pair() -> tuple[str, bytes]:
    """A fresh RSA key: (private PEM text, public PEM bytes). Never written to the repository."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def read_stream(
    url: str,
    params: dict[str, str],
    token: str,
    count: int,
    deadline: float = 5.0,
    match: Callable[[dict[str, Any]], bool] = lambda envelope: True,
) -> list[dict[str, Any]]:
    """Read a consume stream until `count` matching envelopes arrive or the deadline passes.

    Returns every non-blank line decoded (raw text in `{"_raw": ...}` when not JSON), so a
    failing assertion shows what came.
    """
    seen: list[dict[str, Any]] = []
    matched = 0
    end = time.monotonic() + deadline
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    with requests.get(url, params=params, headers=headers, stream=True, timeout=(2, 1)) as reply:
        assert reply.status_code == 200, reply.text
        lines = reply.iter_lines()
        while matched < count and time.monotonic() < end:
            try:
                line = next(lines)
            except (
                StopIteration,
                requests.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
            ):
                break
            if not line.strip():
                continue
            try:
                envelope = json.loads(line)
            except json.JSONDecodeError:
                envelope = {"_raw": line.decode(errors="replace")}
            seen.append(envelope)
            if match(envelope):
                matched += 1
    return seen

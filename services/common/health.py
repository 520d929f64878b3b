"""`/healthz`, `/readyz` and Prometheus `/metrics`, served the same way by every service.

Liveness says the work loop turned recently (never that a broker answers: one broker outage must
not restart every pod). Readiness says the service can do its job now.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

log = logging.getLogger(__name__)

# Readiness as a metric, so an alert can say which pod has been unready and for how long.
READY = Gauge("triggerline_ready", "1 while /readyz answers 200, 0 while it names a wait.")

Page = Callable[[], tuple[int, str, bytes]]


@dataclass
class Probes:
    """Liveness and readiness of one process."""

    stall_after: float = 60.0
    _last_beat: float = field(default_factory=time.monotonic)
    _ready_reasons: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def beat(self) -> None:
        """The work loop calls this every turn."""
        self._last_beat = time.monotonic()

    def __post_init__(self) -> None:
        READY.set(1)

    def not_ready(self, component: str, reason: str) -> None:
        with self._lock:
            self._ready_reasons[component] = reason
            READY.set(0)

    def ready(self, component: str) -> None:
        with self._lock:
            self._ready_reasons.pop(component, None)
            READY.set(0 if self._ready_reasons else 1)

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        age = time.monotonic() - self._last_beat
        return age < self.stall_after, {"loop_seconds_ago": round(age, 3)}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            reasons = dict(self._ready_reasons)
        return not reasons, {"waiting_for": reasons}


def json_page(ok: bool, body: dict[str, Any]) -> tuple[int, str, bytes]:
    payload = {"status": "ok" if ok else "unavailable", **body}
    return (200 if ok else 503), "application/json", json.dumps(payload).encode()


def metrics_page() -> tuple[int, str, bytes]:
    return 200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY)


def standard_pages(probes: Probes) -> dict[str, Page]:
    return {
        "/healthz": lambda: json_page(*probes.liveness()),
        "/readyz": lambda: json_page(*probes.readiness()),
        "/metrics": metrics_page,
    }


class HealthServer:
    """A small threaded HTTP server for processes whose work loop is not asyncio."""

    def __init__(
        self, host: str, port: int, probes: Probes, extra: dict[str, Page] | None = None
    ) -> None:
        pages = {**standard_pages(probes), **(extra or {})}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page = pages.get(self.path.split("?", 1)[0])
                if page is None:
                    status, ctype, body = 404, "text/plain", b"not found\n"
                else:
                    try:
                        status, ctype, body = page()
                    except Exception:  # a broken page must not kill the server thread
                        log.exception("health page %s failed", self.path)
                        status, ctype, body = 500, "text/plain", b"error\n"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # scrapes every few seconds would drown the service's own log

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

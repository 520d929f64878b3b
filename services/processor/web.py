"""`/healthz`, `/readyz` and `/metrics` as faust pages, on the worker's own web server."""

from __future__ import annotations

from typing import Any

from services.common.health import Probes, json_page, metrics_page

BEAT_SECONDS = 1.0


def register_pages(app: Any, probes: Probes) -> None:
    """Serve the shared probe pages; the timer proves the event loop turns when idle."""

    def respond(view: Any, page: tuple[int, str, bytes]) -> Any:
        status, content_type, body = page
        # As a header: aiohttp refuses a charset inside `content_type` (Prometheus sends one).
        return view.bytes(body, status=status, headers={"Content-Type": content_type})

    @app.page("/healthz")  # type: ignore[misc]  # faust is untyped
    async def healthz(view: Any, request: Any) -> Any:
        return respond(view, json_page(*probes.liveness()))

    @app.page("/readyz")  # type: ignore[misc]
    async def readyz(view: Any, request: Any) -> Any:
        return respond(view, json_page(*probes.readiness()))

    @app.page("/metrics")  # type: ignore[misc]
    async def metrics(view: Any, request: Any) -> Any:
        return respond(view, metrics_page())

    @app.timer(interval=BEAT_SECONDS)  # type: ignore[misc]
    async def beat() -> None:
        probes.beat()
        if app.rebalancing:
            probes.not_ready("worker", "rebalancing")
        else:
            probes.ready("worker")

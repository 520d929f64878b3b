"""The simulator's aiohttp application: routes, health pages and the generator task."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from services.common.health import Page, Probes, standard_pages
from services.simulator import control_api, discovery_api, ims_api, pipeline_api
from services.simulator.feed import run_feed
from services.simulator.pipeline_api import STATE
from services.simulator.settings import SimulatorSettings
from services.simulator.state import SimulatorState


def _page(page: Page) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_request: web.Request) -> web.Response:
        status, content_type, body = page()
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    return handler


def build_app(settings: SimulatorSettings, probes: Probes | None = None) -> web.Application:
    """Wire the endpoints to one shared state; the generator starts with the app."""
    app = web.Application(client_max_size=64 * 1024 * 1024)  # injected test lines reach 10 MB
    app[STATE] = SimulatorState(settings)
    app[ims_api.PUBLIC_KEY] = ims_api.load_public_key(settings.jwt_public_key_file)
    probes = probes or Probes()
    topic_path = "/pipeline/topics/{topic}/messages"
    app.router.add_get(topic_path, pipeline_api.consume)
    app.router.add_post("/pipeline/consumer/sync", pipeline_api.sync)
    app.router.add_get("/v1/endpoints", discovery_api.endpoints)
    app.router.add_post("/ims/token/v3", ims_api.token_v3)
    app.router.add_post("/ims/exchange/jwt", ims_api.exchange_jwt)
    app.router.add_post("/simulator/envelopes", control_api.inject)
    app.router.add_post("/simulator/faults", control_api.set_faults)
    app.router.add_post("/simulator/generate", control_api.generate)
    app.router.add_get("/simulator/stats", control_api.stats)
    for path, page in standard_pages(probes).items():
        app.router.add_get(path, _page(page))
    app.cleanup_ctx.append(_feed)
    app.cleanup_ctx.append(_heartbeat(probes))
    app.on_shutdown.append(_close_streams)
    return app


async def _feed(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(run_feed(app[STATE]), name="simulator-feed")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _heartbeat(probes: Probes) -> Callable[[web.Application], AsyncIterator[None]]:
    """Liveness: the event loop still turns."""

    async def beat_forever() -> None:
        while True:
            probes.beat()
            await asyncio.sleep(1.0)

    async def context(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(beat_forever(), name="simulator-heartbeat")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


async def _close_streams(app: web.Application) -> None:
    """Open streams end at their next turn, so shutdown does not wait for clients."""
    state = app[STATE]
    state.closing = True
    state.wake_all()

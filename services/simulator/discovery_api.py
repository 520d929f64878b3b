"""Endpoint discovery: `GET /v1/endpoints` names the simulator's own pipeline base URL.

Adobe publishes no format for its discovery service; this answers in the one the fetcher's
`services/fetcher/discovery.py` documents as our inference. Like the pipeline API, it wants a
valid Bearer token (unless `require_token` is off) and answers pipeline faults.
"""

from __future__ import annotations

from aiohttp import web

from services.simulator.pipeline_api import STATE, refuse


async def endpoints(request: web.Request) -> web.Response:
    """`GET /v1/endpoints`: `{"endpoints": [{"url": <base URL the client reached us at>}]}`."""
    refused = refuse(request, request.app[STATE])
    if refused is not None:
        return refused
    # The address the client used, so the answer is right behind a port 0 bind or a proxy.
    base = f"{request.scheme}://{request.host}"
    return web.json_response({"endpoints": [{"url": base, "region": "local"}]})

"""The auth service's aiohttp application: token API, health pages and the refresh loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import requests
from aiohttp import web

from services.auth import api
from services.auth.credentials import Credentials
from services.auth.ims import (
    ImsClient,
    TokenSource,
    claims_factory,
    jwt_source,
    none_source,
    oauth_source,
)
from services.auth.keeper import TokenKeeper
from services.auth.settings import AuthSettings
from services.common.health import Page, Probes, standard_pages


def token_source(
    settings: AuthSettings, credentials: Credentials, session: requests.Session
) -> TokenSource:
    """The IMS call of the configured mode."""
    if settings.mode == "none":
        return none_source(settings.none_token_lifetime)
    ims = ImsClient(settings.ims_url, settings.ims_timeout, session)
    secret = credentials.client_secret.get_secret_value()
    if settings.mode == "oauth":
        return oauth_source(ims, settings.client_id, secret, settings.scopes)
    assert credentials.private_key is not None  # load_credentials guarantees it for jwt
    claims = claims_factory(
        settings.ims_org,
        settings.technical_account_id,
        settings.client_id,
        settings.metascopes,
        settings.jwt_expiry,
    )
    return jwt_source(ims, settings.client_id, secret, credentials.private_key, claims)


def _page(page: Page) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_request: web.Request) -> web.Response:
        status, content_type, body = page()
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    return handler


def build_app(
    settings: AuthSettings, credentials: Credentials, probes: Probes | None = None
) -> web.Application:
    """Wire the token API to one keeper; the refresh loop runs while the app does."""
    probes = probes or Probes()
    session = requests.Session()
    keeper = TokenKeeper(
        token_source(settings, credentials, session),
        settings.refresh_share,
        settings.retry_initial,
        settings.retry_max,
        probes,
    )
    app = web.Application()
    app[api.KEEPER] = keeper
    app[api.CLIENTS] = credentials.clients
    app.router.add_get("/v1/token", api.get_token)
    app.router.add_post("/v1/token/invalidate", api.invalidate)
    for path, page in standard_pages(probes).items():
        app.router.add_get(path, _page(page))

    async def refresh_loop(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(keeper.run(), name="auth-refresh")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        session.close()

    app.cleanup_ctx.append(refresh_loop)
    return app

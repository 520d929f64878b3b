"""The public HTTP side: `GET` and `POST /unsubscribe?token=...` (RFC 8058 one-click)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from services.common.errors import TransientFailure
from services.common.health import Probes
from services.feedback.catalogue import DEFAULT_LANGUAGE, LANGUAGES
from services.feedback.handling import Feedback, PageAnswer
from services.feedback.pages import SECURITY_HEADERS, render_page
from services.feedback.rules.language import choose_language
from services.feedback.rules.unsubscribe import STATUS, PageKind, is_one_click

log = logging.getLogger(__name__)

FEEDBACK = web.AppKey("feedback", Feedback)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
PROBES = web.AppKey("probes", Probes)

# Pages that may link to themselves in another language: the token is worth keeping there.
_SELF_LINKING = frozenset({PageKind.CONFIRM, PageKind.ALREADY, PageKind.DONE})
_MAX_BODY = 64 * 1024  # a one-click body is 26 bytes; nothing legitimate comes close


def build_web_app(
    feedback: Feedback, clock: Callable[[], datetime], probes: Probes
) -> web.Application:
    app = web.Application(client_max_size=_MAX_BODY)
    app[FEEDBACK] = feedback
    app[CLOCK] = clock
    app[PROBES] = probes
    app.router.add_get("/unsubscribe", show_page)
    app.router.add_post("/unsubscribe", unsubscribe)
    return app


async def show_page(request: web.Request) -> web.Response:
    """The confirmation page (or why the link does not work). Never changes anything, so a
    link scanner or a prefetching mail client cannot unsubscribe anyone."""
    token = request.query.get("token", "")
    feedback, now = request.app[FEEDBACK], request.app[CLOCK]()
    answer = await _guarded(request, lambda: feedback.preview(token, now))
    return _respond(request, answer, token)


async def unsubscribe(request: web.Request) -> web.Response:
    """RFC 8058 one-click: verify, suppress, answer 200 with no redirect. Idempotent."""
    token = request.query.get("token", "")
    form = await request.post()
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    if not is_one_click(fields):
        return _respond(request, PageAnswer(PageKind.BAD_REQUEST, STATUS[PageKind.BAD_REQUEST]), "")
    via = "page" if fields.get("via") == "page" else "one-click"
    feedback, now = request.app[FEEDBACK], request.app[CLOCK]()
    answer = await _guarded(request, lambda: feedback.unsubscribe(token, via, now))
    return _respond(request, answer, token)


async def _guarded(request: web.Request, work: Callable[[], PageAnswer]) -> PageAnswer:
    """Run the blocking work in a thread; a database outage becomes the "try again" page."""
    probes = request.app[PROBES]
    try:
        answer = await asyncio.to_thread(work)
    except TransientFailure as exc:
        log.warning("unsubscribe request not served, database unavailable: %s", exc)
        probes.not_ready("database", str(exc)[:200])
        return PageAnswer(PageKind.UNAVAILABLE, STATUS[PageKind.UNAVAILABLE])
    probes.ready("database")
    return answer


def _respond(request: web.Request, answer: PageAnswer, token: str) -> web.Response:
    lang = choose_language(
        request.query.get("lang"),
        request.headers.get("Accept-Language"),
        LANGUAGES,
        DEFAULT_LANGUAGE,
    )
    linked = token if answer.kind in _SELF_LINKING and token else None
    headers = {**SECURITY_HEADERS, "Content-Language": lang}
    if answer.kind is PageKind.UNAVAILABLE:
        headers["Retry-After"] = "60"
    return web.Response(
        status=answer.status,
        text=render_page(answer.kind, lang, answer.address, linked),
        content_type="text/html",
        charset="utf-8",
        headers=headers,
    )

"""The pipeline consume API: the long streamed GET of envelopes, and the sync-marker commit."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from aiohttp import web

from services.simulator.rules.consume import (
    BadRequest,
    Reset,
    decode_marker,
    encode_marker,
    parse_assign,
    parse_reset,
    start_offset,
)
from services.simulator.state import SimulatorState, now_ms

log = logging.getLogger(__name__)

STATE: web.AppKey[SimulatorState] = web.AppKey("state", SimulatorState)
_BATCH = 500  # envelopes read from one partition before visiting the next


def error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = json.dumps({"error": code, "message": message})
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


def refuse(request: web.Request, state: SimulatorState) -> web.Response | None:
    """The answer when a fault is pending or the Bearer token is not valid; None to go on."""
    status = state.faults.take_status("pipeline")
    if status == 503:
        retry = str(state.faults.retry_after)
        return error(503, "unavailable", "pipeline unavailable", {"Retry-After": retry})
    if status == 500:
        return error(500, "internal_error", "pipeline failed")
    if not state.settings.require_token:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        state.rejected["missing_token"] += 1
        return error(401, "unauthorized", "Authorization: Bearer <token> is required")
    if not state.tokens.valid(token.strip(), time.time()):
        state.rejected["invalid_token"] += 1
        return error(401, "unauthorized", "token is unknown, revoked or expired")
    return None


def _token(request: web.Request) -> str:
    return request.headers.get("Authorization", "").partition(" ")[2].strip()


async def consume(request: web.Request) -> web.StreamResponse:
    """`GET /pipeline/topics/{topic}/messages`: stream envelopes until the client goes away."""
    state = request.app[STATE]
    refused = refuse(request, state)
    if refused is not None:
        return refused
    if request.match_info["topic"] != state.log.topic:
        return error(404, "not_found", f"topic {request.match_info['topic']!r} is not accessible")
    query = request.query
    group = query.get("group", "").strip()
    try:
        if not group:
            raise BadRequest("query parameter group is required")
        reset = parse_reset(query.get("reset"))
        sync_ms = int(query.get("syncInterval", "0") or 0)
        if sync_ms < 0:
            raise BadRequest("syncInterval must not be negative")
        count = len(state.log.partitions)
        assigned = parse_assign(query["assign"], count) if "assign" in query else None
    except (BadRequest, ValueError) as exc:
        message = str(exc) if isinstance(exc, BadRequest) else "syncInterval must be an integer"
        return error(400, "bad_request", message)
    partitions = sorted(assigned) if assigned is not None else list(range(count))
    stored = state.group_offsets.get(group, {})
    cursors: dict[int, int] = {}
    for p in partitions:
        wanted = assigned[p] if assigned is not None else stored.get(p)
        cursors[p] = _start(state, p, wanted, reset, group)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    state.streams_open += 1
    try:
        await _stream(request, response, state, cursors, reset, group, sync_ms)
    except ConnectionResetError:
        pass  # the client went away: that is how a stream normally ends
    finally:
        state.streams_open -= 1
    return response


def _start(
    state: SimulatorState, partition: int, wanted: int | None, reset: Reset, group: str
) -> int:
    part = state.log.partitions[partition]
    start = start_offset(wanted, part.earliest(now_ms()), part.high, reset)
    if start.reset and wanted is not None:
        state.resets += 1
        log.warning(
            "group %s partition %d: offset %d is out of retention, reset=%s to %d",
            group,
            partition,
            wanted,
            reset,
            start.offset,
        )
    return start.offset


async def _stream(
    request: web.Request,
    response: web.StreamResponse,
    state: SimulatorState,
    cursors: dict[int, int],
    reset: Reset,
    group: str,
    sync_ms: int,
) -> None:
    token = _token(request)
    drop_after = state.faults.take_drop()
    sent = 0
    keepalive = state.settings.keepalive.total_seconds()
    last_write = next_sync = time.monotonic()
    next_sync += sync_ms / 1000
    while not state.closing:
        if state.settings.require_token and not state.tokens.valid(token, time.time()):
            return  # revoked or expired: the client must reconnect with a fresh token
        wrote = False
        for p in cursors:
            part = state.log.partitions[p]
            if cursors[p] < part.earliest(now_ms()):
                cursors[p] = _start(state, p, cursors[p], reset, group)
            entries = part.read(cursors[p], _BATCH, now_ms())
            if not entries:
                continue
            if not state.faults.slow_ms and (
                drop_after is None or sent + len(entries) < drop_after
            ):
                # One chunk per batch: a write per envelope would cap the stream at a few
                # thousand envelopes per second, far below what a real pipeline serves.
                await response.write(b"".join(entry.line + b"\n" for entry in entries))
                cursors[p] = entries[-1].offset + 1
                sent += len(entries)
                wrote = True
                continue
            for entry in entries:
                if state.faults.slow_ms:
                    await asyncio.sleep(state.faults.slow_ms / 1000)
                if drop_after is not None and sent >= drop_after:
                    await response.write(entry.line[: max(1, len(entry.line) // 2)])
                    _cut(request)
                    return
                await response.write(entry.line + b"\n")
                cursors[p] = entry.offset + 1
                sent += 1
                wrote = True
        now = time.monotonic()
        if sync_ms and now >= next_sync:
            # The group's offsets on every partition of the topic, as a marker "encodes the
            # partition offsets to commit": a client assigned fewer partitions can see that.
            stored = state.group_offsets.get(group, {})
            every = {p: stored.get(p, 0) for p in range(len(state.log.partitions))}
            marker = encode_marker(group, {**every, **cursors})
            line = json.dumps({"envelopeType": "SYNC", "syncMarker": marker})
            await response.write(line.encode() + b"\n")
            next_sync = now + sync_ms / 1000
            wrote = True
        if wrote:
            last_write = now
            continue
        if now - last_write >= keepalive:
            await response.write(b"\n")
            last_write = now
        wait = keepalive - (now - last_write)
        if sync_ms:
            wait = min(wait, next_sync - now)
        await state.wait_for_append(max(0.005, min(wait, 1.0)))


def _cut(request: web.Request) -> None:
    """Close the connection without ending the chunked body: a stream dropped mid-message."""
    transport = request.transport
    if transport is not None:
        transport.abort()


async def sync(request: web.Request) -> web.Response:
    """`POST /pipeline/consumer/sync`: store the offsets a SYNC marker carries for its group."""
    state = request.app[STATE]
    refused = refuse(request, state)
    if refused is not None:
        return refused
    marker = (await request.text()).strip()
    try:
        group, offsets = decode_marker(marker)
    except BadRequest as exc:
        return error(400, "bad_request", str(exc))
    state.group_offsets.setdefault(group, {}).update(offsets)
    return web.Response(status=200, text="")

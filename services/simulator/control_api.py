"""Test and operator endpoints under /simulator/: inject envelopes, set faults, read stats."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from services.simulator.faults import FaultError
from services.simulator.pipeline_api import STATE, error
from services.simulator.state import Schedule


async def inject(request: web.Request) -> web.Response:
    """`POST /simulator/envelopes`: append exact envelopes.

    A JSON list: objects are DATA envelopes (partition from their `partition` field, else from
    their visitor; offset always from the log), strings are raw lines appended as given. Any
    other body is taken as lines, each appended raw (`?partition=` picks where, default 0);
    `application/octet-stream` keeps the bytes exactly (CR, invalid UTF-8), split at LF only.
    Answers the position of each, in order.
    """
    state = request.app[STATE]
    count = len(state.log.partitions)
    try:
        default_partition = int(request.query.get("partition", "0")) % count
    except ValueError:
        return error(400, "bad_request", "partition must be an integer")
    items: list[Any]
    if request.content_type == "application/octet-stream":  # bytes exactly, split at LF only
        body = await request.read()
        items = [line for line in body.split(b"\n") if line.strip()]
    elif request.content_type == "application/json":
        text = await request.text()
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            return error(400, "bad_request", f"body is not JSON: {exc}")
        if not isinstance(items, list):
            return error(400, "bad_request", "body must be a JSON list of envelopes or lines")
    else:
        items = [line for line in (await request.text()).splitlines() if line.strip()]
    positions = []
    for item in items:
        if isinstance(item, dict):
            given = item.get("partition")
            partition = given % count if isinstance(given, int) and given >= 0 else None
            entry = state.append_envelope(item, "injected", partition)
            partition = partition if partition is not None else state.partition_of(item)
        else:
            partition = default_partition
            raw = item if isinstance(item, bytes) else str(item).encode()
            entry = state.append_raw(raw, "injected", partition)
        positions.append({"partition": partition, "offset": entry.offset})
    return web.json_response(positions)


async def set_faults(request: web.Request) -> web.Response:
    """`POST /simulator/faults`: `{"pipeline_503": 2, "revoke_tokens": true, ...}`; `{}` reads."""
    state = request.app[STATE]
    try:
        changes = await request.json() if request.can_read_body else {}
    except json.JSONDecodeError:
        return error(400, "bad_request", "body must be a JSON object")
    if not isinstance(changes, dict):
        return error(400, "bad_request", "body must be a JSON object")
    revoked = 0
    if changes.pop("revoke_tokens", False) is True:
        revoked = state.tokens.revoke_all()
        state.wake_all()  # open streams notice at once and end
    if changes.pop("clear", False) is True:
        state.faults.clear()
    try:
        state.faults.update(changes)
    except FaultError as exc:
        return error(400, "bad_request", str(exc))
    return web.json_response({"faults": state.faults.snapshot(), "revoked_tokens": revoked})


async def generate(request: web.Request) -> web.Response:
    """`POST /simulator/generate`: `{"triggers": N, "rate": R, "burst": B}` generates N more
    envelopes (0: without end) at R per second (0: as fast as possible), replacing the
    schedule the generator runs now. Benchmarks use it to pace phases one after another."""
    state = request.app[STATE]
    try:
        body = await request.json()
    except json.JSONDecodeError:
        return error(400, "bad_request", "body must be a JSON object")
    if not isinstance(body, dict) or set(body) - {"triggers", "rate", "burst"}:
        return error(400, "bad_request", "body must be a JSON object of triggers, rate, burst")
    triggers, rate, burst = body.get("triggers", 0), body.get("rate", 0), body.get("burst", 0)
    numbers = (triggers, rate, burst)
    if any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in numbers):
        return error(400, "bad_request", "triggers, rate and burst must be non-negative numbers")
    if int(triggers) != triggers or int(burst) != burst:
        return error(400, "bad_request", "triggers and burst must be whole numbers")
    state.generate(int(triggers), Schedule(float(rate), int(burst)))
    return web.json_response({"target": state.target, "generated": state.generated})


async def stats(request: web.Request) -> web.Response:
    """`GET /simulator/stats`: what was appended, per-partition offsets, IMS calls, resets."""
    return web.json_response(request.app[STATE].stats())

"""The generation schedule over HTTP: phases of a given count and rate, one after another."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from tests.integration.servers import RunningApp
from tests.support.deadlines import wait_until


def _stats(simulator: RunningApp) -> dict[str, object]:
    reply = requests.get(f"{simulator.url}/simulator/stats", timeout=5)
    return dict(reply.json())


def test_each_schedule_generates_its_count_at_its_rate(
    simulator_factory: Callable[..., RunningApp],
) -> None:
    simulator = simulator_factory()
    assert _stats(simulator)["generated"] == 0  # generation off until a schedule arrives
    started = time.monotonic()
    reply = requests.post(
        f"{simulator.url}/simulator/generate", json={"triggers": 100, "rate": 200}, timeout=5
    )
    assert reply.status_code == 200, reply.text
    wait_until(lambda: _stats(simulator)["done"], deadline=10)
    took = time.monotonic() - started
    assert _stats(simulator)["generated"] == 100
    assert took >= 0.45  # 100 at 200/s: spread over half a second, not at once
    requests.post(f"{simulator.url}/simulator/generate", json={"triggers": 50}, timeout=5)
    wait_until(lambda: _stats(simulator)["generated"] == 150, deadline=10)


def test_a_bad_schedule_is_refused(simulator_factory: Callable[..., RunningApp]) -> None:
    simulator = simulator_factory()
    for body in ({"triggers": -1}, {"rate": "fast"}, {"triggers": 1.5}, {"speed": 3}, [1]):
        reply = requests.post(f"{simulator.url}/simulator/generate", json=body, timeout=5)
        assert reply.status_code == 400, body

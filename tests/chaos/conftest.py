"""Chaos tests control the local broker itself, so they need the one `make test` starts."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.fetcher.conftest import FETCHER_SECRET, fetcher_factory, key_pair, stack

__all__ = ["FETCHER_SECRET", "fetcher_factory", "key_pair", "local_broker", "stack"]

KAFKA_SH = Path(__file__).resolve().parents[2] / "deploy" / "local" / "kafka.sh"


@pytest.fixture
def local_broker(kafka_bootstrap: str) -> Iterator[Callable[[str], None]]:
    """`local_broker("down")` / `("up")`: stop and start the broker on 127.0.0.1:19092."""
    if kafka_bootstrap != "127.0.0.1:19092":
        pytest.fail(
            "chaos tests restart the local broker: run them with `make test`, not against "
            f"{kafka_bootstrap}",
            pytrace=False,
        )

    def control(action: str) -> None:
        subprocess.run([str(KAFKA_SH), action], check=True, timeout=180)

    yield control
    control("up")  # whatever happened, leave the broker running for the next test

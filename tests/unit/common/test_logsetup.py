"""Logging set-up: DEBUG is our services' own trail, never the client libraries' payload dumps."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from services.common.logsetup import configure_logging

LIBRARIES = ("faust", "faust.topics", "faust.transport", "aiokafka", "mode")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in LIBRARIES}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def test_debug_reaches_our_services_but_not_faust_record_dumps() -> None:
    configure_logging("processor", "DEBUG")
    assert logging.getLogger("services.processor.transport").isEnabledFor(logging.DEBUG)
    # faust.topics logs each sent record with its value (addresses, names) at DEBUG
    assert not logging.getLogger("faust.topics").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("faust.tables.recovery").isEnabledFor(logging.INFO)
    assert not logging.getLogger("aiokafka").isEnabledFor(logging.INFO)


def test_a_higher_level_still_applies_to_the_libraries() -> None:
    configure_logging("mailer", "ERROR")
    assert not logging.getLogger("faust").isEnabledFor(logging.WARNING)
    assert not logging.getLogger("aiokafka").isEnabledFor(logging.WARNING)

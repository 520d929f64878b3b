"""Fixtures of the feedback tests (the service itself: tests/support/feedback_service.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def address(unique: str) -> Callable[[str], str]:
    """Addresses no other test uses."""
    return lambda name: f"{name}.{unique}@example.org"

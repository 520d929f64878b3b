"""The trigger types the simulator emits, with the trigger UUIDs the local routing file uses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TriggerType:
    name: str
    trigger_id: str
    inactive_timeout_minutes: int


CART_ABANDONMENT = TriggerType("cart_abandonment", "3e8a2ba7-fccc-49bb-bdac-33ee33cf02bf", 10)
BROWSE_ABANDONMENT = TriggerType("browse_abandonment", "697514a8-3337-4efc-ba75-1f0ba896c288", 30)
SEARCH_ABANDONMENT = TriggerType("search_abandonment", "5b1f6f4e-9c1d-4c8e-8a51-2f4c0e7d9a13", 15)
PURCHASE = TriggerType("purchase", "9d0c3f1a-7b2e-4f5d-8c6a-1e2f3a4b5c6d", 0)

TRIGGER_TYPES: tuple[TriggerType, ...] = (
    CART_ABANDONMENT,
    BROWSE_ABANDONMENT,
    SEARCH_ABANDONMENT,
    PURCHASE,
)

# A trigger id no routing entry covers: the simulator sends a share of these on request.
UNKNOWN_TRIGGER_ID = "00000000-dead-4bad-8bad-000000000000"

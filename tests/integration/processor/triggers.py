"""Adobe-shaped trigger envelopes for processor tests, converted as the fetcher converts them."""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

from services.common.serde import envelope_serde
from services.fetcher.envelopes import Data, parse_envelope
from services.simulator.catalog import CART_ABANDONMENT


def random_mcid() -> str:
    return "".join(random.choice("0123456789") for _ in range(38))


@dataclass(frozen=True)
class Built:
    key: bytes
    value: bytes
    message_id: str


def adobe_envelope(
    *,
    mcid: str,
    trigger_id: str = CART_ABANDONMENT.trigger_id,
    message_id: str | None = None,
    declared_id: str | None = None,
    page_urls: tuple[str, ...] = ("https://shop.example/cart", "https://shop.example/product/42"),
    products: tuple[str, ...] = (
        ";Blue Kettle;1;39.90",
        "",
        ";Blue Kettle;1;39.90,;Tea Cups;2;12.00",
    ),
    trigger_ms: int | None = None,
    extra_dimensions: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The composed fixture of adobe-pipeline.md section 4.3, with the stray-space eVar01 key;
    `extra_dimensions` adds string dimensions (`{"eVar7": ["", "tent"]}`)."""
    now_ms = int(time.time() * 1000) if trigger_ms is None else trigger_ms
    dimensions: dict[str, Any] = {
        "timeGMT": {
            "type": "int",
            "name": "timeGMT",
            "source": "session summary",
            "data": [now_ms // 1000 - 60, now_ms // 1000 - 50],
        },
        "pageURL": {
            "type": "string",
            "name": "pageURL",
            "source": "session summary",
            "data": ["", *page_urls],
        },
        "eVar5": {
            "type": "string",
            "name": "eVar5",
            "source": "session summary",
            "data": list(products),
        },
    }
    for name, data in (extra_dimensions or {}).items():
        dimensions[name] = {
            "type": "string",
            "name": name,
            "source": "session summary",
            "data": data,
        }
    if declared_id is not None:
        dimensions[" eVar01"] = {
            "type": "string",
            "name": " eVar01",
            "source": "session summary",
            "data": ["", declared_id, declared_id],
        }
    return {
        "envelopeType": "DATA",
        "topic": "triggers",
        "partition": 4,
        "offset": 1500435,
        "createTime": now_ms,
        "com.adobe.mcloud.pipeline.pipelineMessage": {
            "header": {
                "messageType": "TRIGGER",
                "source": "triggers",
                "sentTime": now_ms,
                "imsOrg": "C5E7154A5A1B2C3D4E5F98A4@AdobeOrg",
                "messageId": message_id or str(uuid.uuid4()),
                "properties": [
                    {"name": "trace", "value": "false"},
                    {"name": "triggerFiredTimestamp", "value": str(now_ms - 10)},
                ],
            },
            "com.adobe.mcloud.protocol.trigger": {
                "triggerId": trigger_id,
                "triggerTimestamp": now_ms,
                "mcId": mcid,
                "enrichments": {"analyticsHitSummary": {"products": {}, "dimensions": dimensions}},
                "triggerPath": [
                    {
                        "timestamp": now_ms - 5000,
                        "stateId": "notify",
                        "transition": "inactive_timeout -> 10",
                    }
                ],
            },
        },
    }


def build(envelope: dict[str, Any]) -> Built:
    """The triggers.raw record the fetcher would write for this envelope."""
    data = parse_envelope(json.dumps(envelope).encode())
    assert isinstance(data, Data)
    return Built(
        key=data.key.encode(),
        value=envelope_serde().encode(data.record),
        message_id=data.message_id,
    )

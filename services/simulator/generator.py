"""Realistic trigger envelopes, deterministic from a seed: the simulator's trigger source.

Pure: the caller passes the time, so the same seed and the same clock give the same envelopes.
The log, not the generator, gives each envelope its partition, offset and `createTime`. How far
envelopes stray from the tidy shape (absent mcIds, missing dimensions, huge arrays...) is
`Mix.variability`, applied by `services/simulator/variability.py`.
"""

from __future__ import annotations

import random
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from services.simulator import products
from services.simulator.catalog import (
    BROWSE_ABANDONMENT,
    CART_ABANDONMENT,
    PURCHASE,
    SEARCH_ABANDONMENT,
    UNKNOWN_TRIGGER_ID,
    TriggerType,
)
from services.simulator.population import Shopper, shopper
from services.simulator.variability import (
    DECLARED_KEY,
    TIDY,
    Shape,
    Variability,
    dimension_objects,
    draw_shape,
    mc_id_for,
    shaped_columns,
)

Kind = Literal["trigger", "repeat", "malformed", "unknown"]
PIPELINE_MESSAGE = "com.adobe.mcloud.pipeline.pipelineMessage"
TRIGGER = "com.adobe.mcloud.protocol.trigger"
_RECENT = 200  # repeats pick from this many recent envelopes, as a reconnecting producer would


@dataclass(frozen=True)
class Mix:
    """What the generated stream is made of; shares are probabilities per envelope.

    `Mix()` is the tidy stream (every share 0) that tests and benchmarks start from; the
    simulator's settings default to a realistic mix (`services/simulator/settings.py`).
    """

    visitors: int = 1000
    profiles: int = 1000
    unprofiled_share: float = 0.0
    weights: tuple[tuple[TriggerType, float], ...] = (
        (CART_ABANDONMENT, 0.85),
        (BROWSE_ABANDONMENT, 0.05),
        (SEARCH_ABANDONMENT, 0.05),
        (PURCHASE, 0.05),
    )
    repeat_share: float = 0.0
    malformed_share: float = 0.0
    unknown_share: float = 0.0
    variability: Variability = field(default_factory=Variability)
    ims_org: str = "C5E7154A5A1B2C3D4E5F98A4@AdobeOrg"
    # Visitors in turn (0, 1, 2...) instead of at random: up to `visitors` triggers, each from
    # a shopper of its own, so a benchmark can tell every email apart by its recipient.
    distinct_visitors: bool = False


@dataclass(frozen=True)
class Generated:
    """One envelope to append: a DATA document, or a raw line when deliberately unparseable."""

    kind: Kind
    mcid: str  # the visitor's mcId, whether or not the envelope carries it
    envelope: dict[str, Any] | None = None
    raw: bytes | None = None


class TriggerGenerator:
    """Draws envelopes from a seeded random source; never reads a clock or does I/O."""

    def __init__(self, mix: Mix, seed: int) -> None:
        self._mix = mix
        self._rng = random.Random(seed)
        self._recent: deque[Generated] = deque(maxlen=_RECENT)
        self._turn = 0  # the next visitor when visitors come in turn

    def next(self, now_ms: int) -> Generated:
        rng, mix = self._rng, self._mix
        roll = rng.random()
        if roll < mix.repeat_share and self._recent:
            earlier = self._recent[rng.randrange(len(self._recent))]
            return Generated("repeat", earlier.mcid, envelope=earlier.envelope)
        roll -= mix.repeat_share
        visitor = shopper(self._visitor_index())
        if 0 <= roll < mix.malformed_share:
            return malformed(rng, visitor, now_ms, mix.ims_org)
        roll -= mix.malformed_share
        trigger_type = self._trigger_type()
        shape = draw_shape(rng, mix.variability)
        if 0 <= roll < mix.unknown_share:
            envelope = trigger_envelope(
                rng, trigger_type, visitor, now_ms, mix.ims_org, UNKNOWN_TRIGGER_ID, shape
            )
            generated = Generated("unknown", visitor.mcid, envelope=envelope)
        else:
            envelope = trigger_envelope(
                rng, trigger_type, visitor, now_ms, mix.ims_org, None, shape
            )
            generated = Generated("trigger", visitor.mcid, envelope=envelope)
        self._recent.append(generated)
        return generated

    def _visitor_index(self) -> int:
        mix, rng = self._mix, self._rng
        if mix.distinct_visitors:
            self._turn += 1
            return (self._turn - 1) % mix.visitors
        known = min(mix.profiles, mix.visitors)
        unknown = mix.visitors - known
        if unknown > 0 and (known == 0 or rng.random() < mix.unprofiled_share):
            return known + rng.randrange(unknown)
        return rng.randrange(max(known, 1))

    def _trigger_type(self) -> TriggerType:
        weights = self._mix.weights
        total = sum(weight for _, weight in weights)
        point = self._rng.random() * total
        for trigger_type, weight in weights:
            point -= weight
            if point < 0:
                return trigger_type
        return weights[-1][0]


def trigger_envelope(
    rng: random.Random,
    trigger_type: TriggerType,
    visitor: Shopper,
    now_ms: int,
    ims_org: str,
    trigger_id: str | None = None,
    shape: Shape = TIDY,
) -> dict[str, Any]:
    """A DATA envelope in Adobe's shape (section 4 of the contract), without its position.

    `shape` says how it strays from the tidy shape; whatever it says, the visitor's declared id
    stays in `eVar01` (its key or name perhaps spelled `" eVar01"`).
    """
    hits = _session(rng, trigger_type)
    fired_ms = now_ms - rng.randint(5, 60)
    sent_ms = fired_ms + rng.randint(1, 15)
    last_hit_s = (
        (fired_ms // 1000) - trigger_type.inactive_timeout_minutes * 60 - rng.randint(2, 50)
    )
    times = [last_hit_s]
    for _ in hits[1:]:
        times.append(times[-1] - rng.randint(8, 150))
    times.reverse()
    anonymous_first = rng.random() < 0.5
    declared = ["" if anonymous_first and i == 0 else visitor.declared_id for i in range(len(hits))]
    columns: dict[str, list[Any]] = {
        DECLARED_KEY: declared,
        "timeGMT": times,
        "pageURL": [url for url, _, _ in hits],
        "eVar5": [name for _, name, _ in hits],
    }
    if trigger_type is SEARCH_ABANDONMENT:
        columns["eVar7"] = [term for _, _, term in hits]
    summary: dict[str, Any] = {"products": {}}
    if not shape.products:
        del summary["products"]
    summary["dimensions"] = dimension_objects(rng, shape, shaped_columns(rng, shape, columns))
    trigger: dict[str, Any] = {
        "triggerId": trigger_id or trigger_type.trigger_id,
        "triggerTimestamp": sent_ms,
        "mcId": mc_id_for(rng, shape.identity, visitor.mcid),
        "enrichments": {"analyticsHitSummary": summary},
        "triggerPath": _path(trigger_type, times, fired_ms),
    }
    if trigger["mcId"] is None:
        del trigger["mcId"]
    return {
        "envelopeType": "DATA",
        PIPELINE_MESSAGE: {
            "header": {
                "messageType": "TRIGGER",
                "source": "triggers",
                "sentTime": sent_ms,
                "imsOrg": ims_org,
                "messageId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "properties": [
                    {"name": "trace", "value": "false"},
                    {"name": "sourceFirstTimestamp", "value": str(times[0])},
                    {"name": "sourceLastTimestamp", "value": str(times[-1])},
                    {"name": "triggerFiredTimestamp", "value": str(fired_ms)},
                ],
            },
            TRIGGER: trigger,
        },
    }


def malformed(rng: random.Random, visitor: Shopper, now_ms: int, ims_org: str) -> Generated:
    """An envelope the fetcher must reject, each variant for a different reason."""
    good = trigger_envelope(rng, CART_ABANDONMENT, visitor, now_ms, ims_org)
    variant = rng.randrange(6)
    if variant == 0:  # cut mid-document, as a broken producer would
        text = repr(good).encode()
        return Generated("malformed", visitor.mcid, raw=b'{"envelopeType":"DATA",' + text[:120])
    if variant == 1:
        return Generated("malformed", visitor.mcid, raw=b'["DATA", "not an object"]')
    message = good[PIPELINE_MESSAGE]
    if variant == 2:
        del message["header"]["messageId"]
    elif variant == 3:  # no identity at all: neither an mcId nor a declared id
        del message[TRIGGER]["mcId"]
        del message[TRIGGER]["enrichments"]["analyticsHitSummary"]["dimensions"][DECLARED_KEY]
    elif variant == 4:
        message[TRIGGER]["triggerTimestamp"] = "yesterday"
    else:
        good["envelopeType"] = "DTA"
    return Generated("malformed", visitor.mcid, envelope=good)


def _session(rng: random.Random, trigger_type: TriggerType) -> list[tuple[str, str, str]]:
    """The hits of one session as (pageURL, eVar5 product name, eVar7 search term)."""
    catalog = products.PRODUCTS
    picked = rng.sample(catalog, rng.randint(1, 3))
    hits: list[tuple[str, str, str]] = [(rng.choice(products.BROWSE_PAGES), "", "")]
    if trigger_type is SEARCH_ABANDONMENT:
        term = rng.choice(products.SEARCH_TERMS)
        hits += [(products.search_url(term), "", term)] * rng.randint(1, 3)
        hits.append((picked[0].url, picked[0].name, ""))
        return hits
    for product in picked:
        hits += [(product.url, product.name, "")] * rng.randint(1, 2)
    if trigger_type is CART_ABANDONMENT:
        hits.append((products.CART_URL, "", ""))
    elif trigger_type is PURCHASE:
        hits += [(products.CART_URL, "", ""), (products.CHECKOUT_URL, "", "")]
        hits.append((products.CONFIRMATION_URL, "", ""))
    return hits


def _path(trigger_type: TriggerType, times: list[int], fired_ms: int) -> list[dict[str, Any]]:
    first_ms, last_ms = times[0] * 1000, times[-1] * 1000
    condition = {
        CART_ABANDONMENT: "select * where evars.evars.pageURL like '%/cart'",
        BROWSE_ABANDONMENT: "select * where evars.evars.pageURL like '%/product/%'",
        SEARCH_ABANDONMENT: "select * where evars.evars.eVar7 is not null",
    }.get(trigger_type, "select * where events.purchase > 0")
    final = (
        f"inactive_timeout -> {trigger_type.inactive_timeout_minutes}"
        if trigger_type.inactive_timeout_minutes
        else "conditional -> purchase event"
    )
    return [
        {"timestamp": first_ms, "stateId": "start_and_and", "transition": "null"},
        {"timestamp": last_ms, "stateId": "vmi_and_1", "transition": f"conditional -> {condition}"},
        {
            "timestamp": last_ms,
            "stateId": "notify_wait",
            "transition": "states visited -> [StateVisitedNode [stateId=vmi_and_1, count=1, "
            "operator=GE]]",
        },
        {"timestamp": fired_ms, "stateId": "notify", "transition": final},
    ]

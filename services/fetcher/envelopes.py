"""Upstream lines -> `TriggerEnvelope` records: envelope kinds, validation, the record's key.

Upstream is lenient about shape (optional everything, strings for numbers, seconds beside
milliseconds, ids that may be absent or all zeros); this is the one place that leniency is
absorbed. What cannot become a valid record comes back as `Rejected` with the `InvalidInput`
reason that ends up in the DLQ headers; nothing here raises on any input. Splitting a line into
JSON documents is `documents`, reading one typed field is `envelope_fields`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from services.common.enrichments import first_hit
from services.common.errors import InvalidInput
from services.common.identity import usable_mc_id
from services.fetcher.documents import deeper_than, split_documents
from services.fetcher.envelope_fields import (
    array_field,
    integer_field,
    millis_field,
    object_field,
    optional_millis_field,
    plain_text,
    text_field,
)
from services.fetcher.positions import document_position

PIPELINE_MESSAGE = "com.adobe.mcloud.pipeline.pipelineMessage"
TRIGGER = "com.adobe.mcloud.protocol.trigger"


@dataclass(frozen=True)
class EnvelopeRules:
    """What makes a DATA envelope usable: the routing file's identities and a depth bound."""

    declared_dimensions: tuple[str, ...] = ("eVar01",)
    email_dimensions: tuple[str, ...] = ()
    max_depth: int = 64


@dataclass(frozen=True)
class Sync:
    """A SYNC envelope: a ping carrying an opaque marker of offsets."""

    marker: str


@dataclass(frozen=True)
class Data:
    """A DATA envelope converted to a `TriggerEnvelope` record."""

    record: dict[str, Any]
    key: str  # the best identity: one visitor's triggers stay in order (see `record_key`)
    message_id: str
    partition: int
    offset: int
    raw: bytes  # the envelope as upstream sent it, for a dead letter


@dataclass(frozen=True)
class Rejected:
    """One object of a line that cannot become a record, and why (its dead letter)."""

    raw: bytes
    error: InvalidInput
    position: tuple[int, int] | None = None  # upstream (partition, offset), when readable


Parsed = Data | Sync | Rejected


def parse_line(line: bytes, rules: EnvelopeRules) -> list[Parsed]:
    """Every envelope on one upstream line, each parsed or rejected; never raises.

    A line normally holds one JSON object, but back-to-back objects (`{...}{...}` or separated
    by spaces) are split and read in order, since the stream's framing is unpublished.
    """
    try:
        documents = split_documents(line)
    except InvalidInput as exc:
        return [Rejected(line, exc)]
    if len(documents) == 1:
        return [parse_document(documents[0][0], line, rules)]
    return [parse_document(document, raw, rules) for document, raw in documents]


def parse_envelope(line: bytes, rules: EnvelopeRules | None = None) -> Data | Sync:
    """One line holding one envelope, or `InvalidInput` saying why it is not usable."""
    parsed = parse_line(line, rules or EnvelopeRules())
    if len(parsed) != 1:
        raise InvalidInput("several_envelopes", f"{len(parsed)} envelopes on one line")
    if isinstance(parsed[0], Rejected):
        raise parsed[0].error
    return parsed[0]


def parse_document(document: Any, raw: bytes, rules: EnvelopeRules) -> Parsed:
    """One decoded JSON value -> its envelope, or `Rejected` with the reason."""
    position = document_position(document)
    try:
        if not isinstance(document, dict):
            raise InvalidInput("not_an_object", type(document).__name__)
        if "event" in document and "envelopeType" not in document:  # Adobe I/O Events wrapping
            document = document["event"]
            position = document_position(document)
            if not isinstance(document, dict):
                raise InvalidInput("not_an_object", "event is not an object")
        kind = document.get("envelopeType")
        if kind == "SYNC":
            return Sync(marker=str(document.get("syncMarker", "")))
        if kind != "DATA":
            raise InvalidInput("unknown_envelope_type", repr(kind)[:100])
        if raw.count(b"{") + raw.count(b"[") > rules.max_depth and deeper_than(
            document, rules.max_depth
        ):
            raise InvalidInput("too_deep", f"JSON nested over {rules.max_depth} levels")
        record = to_record(document)
        trigger = document[PIPELINE_MESSAGE][TRIGGER]
        header = record["pipelineMessage"]["header"]
        return Data(
            record=record,
            key=record_key(trigger, header["messageId"], rules),
            message_id=header["messageId"],
            partition=record["partition"],
            offset=record["offset"],
            raw=raw,
        )
    except InvalidInput as exc:
        return Rejected(raw, exc, position)


def record_key(trigger: dict[str, Any], message_id: str, rules: EnvelopeRules) -> str:
    """The `triggers.raw` key: a usable mcId, else the first declared id, else the messageId.

    A trigger with none of the configured identities (mcId, declared ids, emails) can never
    reach a profile: `InvalidInput("no_identity")`. An email-only trigger is keyed by its
    messageId, which keeps an address out of the key. No placeholder value (Adobe's all-zero
    mcId) becomes a key, so none concentrates traffic on one partition.
    """
    mc_id = usable_mc_id(trigger.get("mcId"))
    if mc_id is not None:
        return mc_id
    enrichments = trigger.get("enrichments")
    declared = first_hit(enrichments, rules.declared_dimensions)
    if declared is not None:
        return declared
    email = first_hit(enrichments, rules.email_dimensions)
    if email is not None and "@" in email:
        return message_id
    raise InvalidInput(
        "no_identity", "no usable mcId and no declared id or email in the configured dimensions"
    )


def to_record(envelope: dict[str, Any]) -> dict[str, Any]:
    """The Avro record of a DATA envelope; raises `InvalidInput` naming the bad field."""
    message = object_field(envelope, PIPELINE_MESSAGE)
    header = object_field(message, "header", PIPELINE_MESSAGE)
    trigger = object_field(message, TRIGGER, PIPELINE_MESSAGE)
    enrichments = trigger.get("enrichments")
    if enrichments is None:
        enrichments = {}
    if not isinstance(enrichments, dict):
        raise InvalidInput("bad_field", "trigger.enrichments must be an object")
    return {
        "topic": text_field(envelope, "topic", required=True),
        "partition": integer_field(envelope, "partition"),
        "offset": integer_field(envelope, "offset"),
        "createTime": millis_field(envelope, "createTime"),
        "pipelineMessage": {
            "header": {
                "messageType": text_field(header, "messageType"),
                "source": text_field(header, "source"),
                "sentTime": optional_millis_field(header, "sentTime"),
                "imsOrg": text_field(header, "imsOrg"),
                "messageId": text_field(header, "messageId", required=True),
                "properties": [
                    {"name": plain_text(p.get("name")), "value": plain_text(p.get("value"))}
                    for p in array_field(header, "properties")
                    if isinstance(p, dict)
                ],
            },
            "trigger": {
                "triggerId": text_field(trigger, "triggerId", required=True),
                "triggerTimestamp": millis_field(trigger, "triggerTimestamp"),
                # Verbatim, "" when absent: the processor reads an all-zero mcId as no identity.
                "mcId": text_field(trigger, "mcId"),
                # Kept verbatim: dimensions vary per trigger and keys carry Adobe's quirks.
                "enrichments": orjson.dumps(enrichments).decode(),
                "triggerPath": [
                    {
                        "timestamp": millis_field(step, "timestamp"),
                        "stateId": plain_text(step.get("stateId")),
                        "transition": plain_text(step.get("transition")),
                    }
                    for step in array_field(trigger, "triggerPath")
                    if isinstance(step, dict)
                ],
            },
        },
    }

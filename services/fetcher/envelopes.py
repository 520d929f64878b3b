"""Upstream lines -> `TriggerEnvelope` records: framing inside a line, validation, units.

Upstream is lenient about shape (optional everything, strings for numbers, seconds beside
milliseconds, ids that may be absent or all zeros); this is the one place that leniency is
absorbed. What cannot become a valid record comes back as `Rejected` with the `InvalidInput`
reason that ends up in the DLQ headers; nothing here raises on any input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from services.common.enrichments import first_hit
from services.common.errors import InvalidInput
from services.common.identity import usable_mc_id

PIPELINE_MESSAGE = "com.adobe.mcloud.pipeline.pipelineMessage"
TRIGGER = "com.adobe.mcloud.protocol.trigger"
_MAX_MILLIS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_MAX_LONG = 2**63 - 1  # an Avro long


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
        documents = _documents(line)
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
    position = _position(document)
    try:
        if not isinstance(document, dict):
            raise InvalidInput("not_an_object", type(document).__name__)
        if "event" in document and "envelopeType" not in document:  # Adobe I/O Events wrapping
            document = document["event"]
            position = _position(document)
            if not isinstance(document, dict):
                raise InvalidInput("not_an_object", "event is not an object")
        kind = document.get("envelopeType")
        if kind == "SYNC":
            return Sync(marker=str(document.get("syncMarker", "")))
        if kind != "DATA":
            raise InvalidInput("unknown_envelope_type", repr(kind)[:100])
        if raw.count(b"{") + raw.count(b"[") > rules.max_depth and _deeper_than(
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
    message = _object(envelope, PIPELINE_MESSAGE)
    header = _object(message, "header", PIPELINE_MESSAGE)
    trigger = _object(message, TRIGGER, PIPELINE_MESSAGE)
    enrichments = trigger.get("enrichments")
    if enrichments is None:
        enrichments = {}
    if not isinstance(enrichments, dict):
        raise InvalidInput("bad_field", "trigger.enrichments must be an object")
    return {
        "topic": _text(envelope, "topic", required=True),
        "partition": _integer(envelope, "partition"),
        "offset": _integer(envelope, "offset"),
        "createTime": _millis(envelope, "createTime"),
        "pipelineMessage": {
            "header": {
                "messageType": _text(header, "messageType"),
                "source": _text(header, "source"),
                "sentTime": None if header.get("sentTime") is None else _millis(header, "sentTime"),
                "imsOrg": _text(header, "imsOrg"),
                "messageId": _text(header, "messageId", required=True),
                "properties": [
                    {"name": _plain(p.get("name")), "value": _plain(p.get("value"))}
                    for p in _array(header, "properties")
                    if isinstance(p, dict)
                ],
            },
            "trigger": {
                "triggerId": _text(trigger, "triggerId", required=True),
                "triggerTimestamp": _millis(trigger, "triggerTimestamp"),
                # Verbatim, "" when absent: the processor reads an all-zero mcId as no identity.
                "mcId": _text(trigger, "mcId"),
                # Kept verbatim: dimensions vary per trigger and keys carry Adobe's quirks.
                "enrichments": orjson.dumps(enrichments).decode(),
                "triggerPath": [
                    {
                        "timestamp": _millis(step, "timestamp"),
                        "stateId": _plain(step.get("stateId")),
                        "transition": _plain(step.get("transition")),
                    }
                    for step in _array(trigger, "triggerPath")
                    if isinstance(step, dict)
                ],
            },
        },
    }


def _documents(line: bytes) -> list[tuple[Any, bytes]]:
    """The JSON values of a line with the bytes of each; `InvalidInput("not_json")` if any
    part is not JSON (the whole line is then one dead letter: nothing of it is trusted)."""
    try:
        return [(orjson.loads(line), line)]
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc):  # orjson's own limit, far past `max_depth`
            raise InvalidInput("too_deep", str(exc)[:300]) from None
        if not str(exc).startswith("unexpected content after document"):
            raise InvalidInput("not_json", str(exc)[:300]) from None
    # Rare: several objects on one line. orjson reports where the first one ends, in characters.
    try:
        text = line.decode()
    except UnicodeDecodeError as exc:
        raise InvalidInput("not_json", f"not UTF-8: {exc}") from None
    documents: list[tuple[Any, bytes]] = []
    while text.strip():
        try:
            documents.append((orjson.loads(text), text.encode()))
            break
        except orjson.JSONDecodeError as exc:
            if not str(exc).startswith("unexpected content after document"):
                raise InvalidInput("not_json", str(exc)[:300]) from None
            first, text = text[: exc.pos], text[exc.pos :].lstrip()
            documents.append((orjson.loads(first), first.encode()))
    return documents


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether containers nest more than `limit` levels; iterative, so any depth is safe."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for child in value.values() if _container(child))
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value if _container(child))
    return False


def _container(value: Any) -> bool:
    return isinstance(value, dict | list)


def _position(document: Any) -> tuple[int, int] | None:
    """Upstream (partition, offset) of a document that may be invalid, when both read as ints."""
    if isinstance(document, dict) and isinstance(document.get("event"), dict):
        document = document["event"]
    if not isinstance(document, dict):
        return None
    try:
        partition, offset = int(document["partition"]), int(document["offset"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    if 0 <= partition <= _MAX_LONG and 0 <= offset <= _MAX_LONG:
        return partition, offset
    return None


_POSITION = re.compile(rb'"(partition|offset)"\s*:\s*"?(\d{1,18})\b')


def position_hint(head: bytes) -> tuple[int, int] | None:
    """Best effort (partition, offset) from the start of a line too long to parse.

    Adobe's envelopes put both fields first, so the first 4 KiB normally name them; a
    dead letter that carries its position lets the pointer move past it.
    """
    found: dict[bytes, int] = {}
    for match in _POSITION.finditer(head[:4096]):
        found.setdefault(match.group(1), int(match.group(2)))
    if b"partition" in found and b"offset" in found:
        return found[b"partition"], found[b"offset"]
    return None


def _plain(value: Any) -> str:
    """A string field Adobe documents as a string; numbers and booleans become their text."""
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def _object(parent: dict[str, Any], name: str, where: str = "envelope") -> dict[str, Any]:
    value = parent.get(name)
    if not isinstance(value, dict):
        raise InvalidInput("missing_field", f"{where}.{name} is missing or not an object")
    return value


def _array(parent: dict[str, Any], name: str) -> list[Any]:
    """An optional list field: absent or null is empty; anything else is not a list."""
    value = parent.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput("bad_field", f"{name} must be an array, got {type(value).__name__}")
    return value


def _text(parent: dict[str, Any], name: str, required: bool = False) -> str:
    value = parent.get(name)
    if value is None or (required and str(value).strip() == ""):
        if required:
            raise InvalidInput("missing_field", f"{name} is required")
        return ""
    if isinstance(value, dict | list):
        raise InvalidInput("bad_field", f"{name} must be a string")
    return str(value)


def _integer(parent: dict[str, Any], name: str) -> int:
    """A non-negative Avro long; a numeric string counts (Adobe's JSON is not typed)."""
    value = parent.get(name)
    if isinstance(value, bool | float):
        raise InvalidInput("bad_field", f"{name} must be an integer, got {value!r}")
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        shown = repr(value)[:100]
        raise InvalidInput("bad_field", f"{name} must be an integer, got {shown}") from None
    if not 0 <= number <= _MAX_LONG:
        raise InvalidInput("bad_field", f"{name}={number} is outside 0..2^63-1")
    return number


def _millis(parent: dict[str, Any], name: str) -> int:
    """An epoch-milliseconds field, as the Avro `timestamp-millis` it becomes.

    A value that is plainly epoch seconds (under 1e10, i.e. before 2286 read as seconds) is
    accepted too: upstream mixes the units between fields, and producers have mixed them within
    one. Kept as an integer: readers get UTC datetimes from the logical type, and the fetcher
    skips building a datetime per field on its hot path.
    """
    number = _integer(parent, name)
    if number < 10_000_000_000:
        number *= 1000
    if number > _MAX_MILLIS:
        raise InvalidInput("bad_field", f"{name}={number} is not a time")
    return number

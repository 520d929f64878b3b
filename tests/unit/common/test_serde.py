"""Avro framing, round trips of Adobe's documented envelopes, and schema compatibility."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest

from services.common.errors import InvalidInput
from services.common.models import EmailRequest, Outcome, OutcomeStatus
from services.common.serde import (
    MAGIC,
    email_request_serde,
    envelope_serde,
    outcome_serde,
    released_schemas,
    schema_fingerprint,
    serde,
)
from services.fetcher.envelopes import parse_envelope, to_record
from services.resources import SCHEMAS_DIR

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _sample(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_fingerprint_matches_the_avro_specification_test_vector() -> None:
    # Avro share/test/data/schema-tests.txt: "null" -> 7195948357588979594 (little-endian bytes)
    assert schema_fingerprint(fastavro.parse_schema("null")).hex() == "8a8f25cce724dd63"


def test_frame_is_single_object_encoding() -> None:
    data = outcome_serde().encode(Outcome(OutcomeStatus.SENT, "m-1", "mailer").to_record())
    assert data[:2] == MAGIC
    assert data[2:10] == outcome_serde().fingerprint


@pytest.mark.parametrize("fixture", ["adobe_io_sample.json", "campaign_composed.json"])
def test_adobe_envelopes_round_trip(fixture: str) -> None:
    document = json.loads(_sample(fixture))
    record = to_record(document.get("event", document))  # the I/O sample has no identity
    serde_ = envelope_serde()
    decoded = serde_.decode(serde_.encode(record))
    # stable: decoding and encoding again gives the same bytes and the same record
    assert serde_.decode(serde_.encode(decoded)) == decoded
    assert serde_.encode(decoded) == serde_.encode(record)


def test_quirks_survive_the_round_trip() -> None:
    parsed = parse_envelope(_sample("campaign_composed.json"))
    record = envelope_serde().decode(envelope_serde().encode(parsed.record))  # type: ignore[union-attr]
    trigger = record["pipelineMessage"]["trigger"]
    enrichments = json.loads(trigger["enrichments"])
    dimensions = enrichments["analyticsHitSummary"]["dimensions"]
    # the stray leading space in the key and the name is kept verbatim
    assert " eVar01" in dimensions and dimensions[" eVar01"]["name"] == " eVar01"
    # per-hit arrays keep their empty strings and repeats; ints stay ints
    assert dimensions[" eVar01"]["data"][0] == ""
    assert dimensions["timeGMT"]["data"] == [1469164186, 1469164195, 1469164199]
    # milliseconds become UTC datetimes; second-valued properties stay strings as upstream sent
    assert trigger["triggerTimestamp"] == datetime(2016, 7, 22, 5, 10, 50, 100000, tzinfo=UTC)
    properties = {p["name"]: p["value"] for p in record["pipelineMessage"]["header"]["properties"]}
    assert properties["sourceFirstTimestamp"] == "1469164186"
    assert record["pipelineMessage"]["trigger"]["triggerPath"][-1]["transition"].endswith("10")


def test_io_events_wrapper_is_unwrapped() -> None:
    # Adobe's I/O sample names no visitor (all-zero mcId, no declared id): give it one
    sample = _sample("adobe_io_sample.json").replace(b'"eVar3"', b'"eVar01"')
    parsed = parse_envelope(sample)
    assert parsed.message_id == "1a69fc40-7600-4928-b7bb-d66588a045f3"  # type: ignore[union-attr]
    assert parsed.partition == 13 and parsed.offset == 438465548  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty_value"),
        (b"{not avro}", "not_avro"),
        (MAGIC + b"\x00" * 8 + b"x", "unknown_schema"),
    ],
)
def test_unreadable_values_are_invalid_input(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        outcome_serde().decode(data)
    assert caught.value.reason == reason


def test_truncated_body_is_invalid_input() -> None:
    request = EmailRequest(
        "k", "c", "t", "m", datetime.now(UTC), "P1", "a@example.com", products=("x",)
    )
    data = email_request_serde().encode(request.to_record())
    with pytest.raises(InvalidInput) as caught:
        email_request_serde().decode(data[:-5])
    assert caught.value.reason == "corrupt_avro"


def test_email_request_round_trip() -> None:
    request = EmailRequest(
        idempotency_key="k1",
        campaign="cart_abandonment",
        trigger_id="t",
        message_id="m",
        trigger_timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        profile_id="P1",
        email="a@example.com",
        first_name="Ada",
        products=("Blue shoes", "Red hat"),
        variables={"cartUrl": "https://shop.example/cart"},
    )
    serde_ = email_request_serde()
    assert EmailRequest.from_record(serde_.decode(serde_.encode(request.to_record()))) == request


@pytest.mark.parametrize("name", ["trigger_envelope", "email_request", "outcome"])
def test_current_schema_reads_every_released_version(name: str) -> None:
    """Backward compatibility: data written with any released schema decodes with the current."""
    released = released_schemas(name)
    assert released, f"schemas/released/{name}/ must hold the released versions"
    current = serde(name)
    for writer in released:
        record = _example(writer)
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, writer, record)
        framed = MAGIC + schema_fingerprint(writer) + buffer.getvalue()
        assert isinstance(current.decode(framed), dict)
        assert (SCHEMAS_DIR / f"{name}.avsc").exists()


def _example(schema: object) -> dict[str, object]:
    """A minimal valid record for `schema`, built from its field types."""

    def value(kind: object) -> object:
        if isinstance(kind, list):
            return value(kind[0])
        if isinstance(kind, dict):
            logical = kind.get("logicalType")
            if logical == "timestamp-millis":
                return datetime(2026, 1, 1, tzinfo=UTC)
            kind_type = kind["type"]
            if kind_type == "record":
                return {f["name"]: value(f["type"]) for f in kind["fields"]}
            if kind_type == "array":
                return []
            if kind_type == "map":
                return {}
            if kind_type == "enum":
                return kind["symbols"][0]
            return value(kind_type)
        return {"string": "x", "int": 1, "long": 1, "boolean": True, "null": None}[str(kind)]

    result = value(schema)
    assert isinstance(result, dict)
    return result

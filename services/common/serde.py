"""Avro serde for every value that crosses a topic.

Values are framed with Avro single-object encoding (0xC3 0x01, then the 8-byte little-endian
CRC-64-AVRO fingerprint of the writer schema's canonical form, then the Avro body), so a reader
knows the writer schema without a registry. Readers resolve any known writer schema against the
current one, which is how schema evolution stays backward compatible.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from services.common.errors import InvalidInput
from services.resources import SCHEMAS_DIR

MAGIC = b"\xc3\x01"
_HEADER_SIZE = len(MAGIC) + 8


def schema_fingerprint(parsed_schema: Any) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint of a schema, as single-object encoding writes it."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed_schema), "CRC-64-AVRO"))


@dataclass(frozen=True)
class AvroSerde:
    """Encode and decode one record type; decoding accepts any registered writer version."""

    name: str
    schema: Any
    writers: Mapping[bytes, Any]
    fingerprint: bytes  # of `schema`; computed once, it costs more than an encode

    def encode(self, record: Mapping[str, Any]) -> bytes:
        buffer = io.BytesIO()
        buffer.write(MAGIC)
        buffer.write(self.fingerprint)
        fastavro.schemaless_writer(buffer, self.schema, record)
        return buffer.getvalue()

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """Decode a framed value; anything unreadable is `InvalidInput` naming the cause."""
        if not data:
            raise InvalidInput("empty_value", f"a {self.name} value was empty (tombstone?)")
        if data[:2] != MAGIC or len(data) < _HEADER_SIZE:
            raise InvalidInput("not_avro", f"expected Avro single-object framing for {self.name}")
        writer = self.writers.get(data[2:_HEADER_SIZE])
        if writer is None:
            raise InvalidInput(
                "unknown_schema",
                f"writer fingerprint {data[2:_HEADER_SIZE].hex()} is not a known {self.name} "
                "schema; deploy the newer schema before reading its data",
            )
        try:
            record = fastavro.schemaless_reader(
                io.BytesIO(data[_HEADER_SIZE:]), writer, self.schema
            )
        except (EOFError, ValueError, TypeError, UnicodeDecodeError, IndexError) as exc:
            raise InvalidInput("corrupt_avro", f"{self.name}: {exc}") from exc
        if not isinstance(record, dict):
            raise InvalidInput("corrupt_avro", f"{self.name} did not decode to a record")
        return record


def load_schema(name: str, schemas_dir: Path = SCHEMAS_DIR) -> Any:
    """Parse `schemas/<name>.avsc`."""
    with (schemas_dir / f"{name}.avsc").open(encoding="utf-8") as handle:
        return fastavro.parse_schema(json.load(handle))


def released_schemas(name: str, schemas_dir: Path = SCHEMAS_DIR) -> list[Any]:
    """Earlier released versions, kept as `schemas/released/<name>/<version>.avsc`."""
    folder = schemas_dir / "released" / name
    if not folder.is_dir():
        return []
    schemas = []
    for path in sorted(folder.glob("*.avsc")):
        with path.open(encoding="utf-8") as handle:
            schemas.append(fastavro.parse_schema(json.load(handle)))
    return schemas


@cache
def serde(name: str) -> AvroSerde:
    """The serde of one schema name, reading every released writer version too."""
    current = load_schema(name)
    writers = {schema_fingerprint(s): s for s in [*released_schemas(name), current]}
    return AvroSerde(
        name=name, schema=current, writers=writers, fingerprint=schema_fingerprint(current)
    )


def envelope_serde() -> AvroSerde:
    return serde("trigger_envelope")


def email_request_serde() -> AvroSerde:
    return serde("email_request")


def outcome_serde() -> AvroSerde:
    return serde("outcome")

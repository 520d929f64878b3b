"""Typed readers for the fields of Adobe's untyped envelope JSON, bounded as Avro needs them.

Each reader takes the parent object and the field's name, returns the value in the type its
Avro field has, and raises `InvalidInput` naming the field when the value cannot be one.
"""

from __future__ import annotations

from typing import Any

from services.common.errors import InvalidInput

_MAX_MILLIS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_LONG = 2**63 - 1  # an Avro long


def plain_text(value: Any) -> str:
    """A string field Adobe documents as a string; numbers and booleans become their text."""
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def object_field(parent: dict[str, Any], name: str, where: str = "envelope") -> dict[str, Any]:
    """A required nested object; `where` names its parent in the error."""
    value = parent.get(name)
    if not isinstance(value, dict):
        raise InvalidInput("missing_field", f"{where}.{name} is missing or not an object")
    return value


def array_field(parent: dict[str, Any], name: str) -> list[Any]:
    """An optional list field: absent or null is empty; anything else is not a list."""
    value = parent.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput("bad_field", f"{name} must be an array, got {type(value).__name__}")
    return value


def text_field(parent: dict[str, Any], name: str, required: bool = False) -> str:
    """A string field; absent is "" unless `required`, where blank counts as absent too."""
    value = parent.get(name)
    if value is None or (required and str(value).strip() == ""):
        if required:
            raise InvalidInput("missing_field", f"{name} is required")
        return ""
    if isinstance(value, dict | list):
        raise InvalidInput("bad_field", f"{name} must be a string")
    return str(value)


def integer_field(parent: dict[str, Any], name: str) -> int:
    """A non-negative Avro long; a numeric string counts (Adobe's JSON is not typed)."""
    value = parent.get(name)
    if isinstance(value, bool | float):
        raise InvalidInput("bad_field", f"{name} must be an integer, got {value!r}")
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        shown = repr(value)[:100]
        raise InvalidInput("bad_field", f"{name} must be an integer, got {shown}") from None
    if not 0 <= number <= MAX_LONG:
        raise InvalidInput("bad_field", f"{name}={number} is outside 0..2^63-1")
    return number


def millis_field(parent: dict[str, Any], name: str) -> int:
    """An epoch-milliseconds field, as the Avro `timestamp-millis` it becomes.

    A value that is plainly epoch seconds (under 1e10, i.e. before 2286 read as seconds) is
    accepted too: upstream mixes the units between fields, and producers have mixed them within
    one. Kept as an integer: readers get UTC datetimes from the logical type, and the fetcher
    skips building a datetime per field on its hot path.
    """
    number = integer_field(parent, name)
    if number < 10_000_000_000:
        number *= 1000
    if number > _MAX_MILLIS:
        raise InvalidInput("bad_field", f"{name}={number} is not a time")
    return number


def optional_millis_field(parent: dict[str, Any], name: str) -> int | None:
    """Like `millis_field`, but absent or null is None (a nullable Avro field)."""
    return None if parent.get(name) is None else millis_field(parent, name)

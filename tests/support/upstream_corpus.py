"""The bad-input corpus of upstream lines (tests/fixtures/upstream_corpus.jsonl), as bytes.

One JSON object per line of the file: `name`, `expect` (`raw`: written to `triggers.raw`;
`dlq`: dead-lettered), `reason` (the dead letter's reason, null for `raw`), `note` (why that is
the outcome), and either `line` (the upstream line as a JSON string, UTF-8 encoded) or `recipe`
for lines too large or not text:

- `{"kind": "oversized" | "padded", "bytes": N}`: valid JSON of exactly N bytes;
- `{"kind": "deep", "depth": N}`: N nested arrays inside a dimension's data;
- `{"kind": "huge_array", "entries": N}`: per-hit arrays (eVar01, timeGMT, pageURL) of N entries;
- `{"kind": "bytes_hex", "hex": "..."}`: the line's bytes, for invalid UTF-8.

Recipes start from the composed sample (`campaign_composed.json`, section 4.3 of the contract)
with a messageId of their own. A case's `line` excludes the stream's LF delimiter; a CR before it
is part of the line.
"""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CORPUS = FIXTURES / "upstream_corpus.jsonl"
PIPELINE_MESSAGE = "com.adobe.mcloud.pipeline.pipelineMessage"
TRIGGER = "com.adobe.mcloud.protocol.trigger"
REASONS = frozenset(
    {
        "no_identity",
        "not_json",
        "not_an_object",
        "unknown_envelope_type",
        "missing_field",
        "bad_field",
        "too_deep",
        "oversized",
    }
)
_NAMESPACE = uuid.UUID("7d1c2b4e-5f60-4a7b-9c8d-0e1f2a3b4c5d")  # messageIds of the cases
_PLACEHOLDER = "@RECIPE@"

Expect = Literal["raw", "dlq"]


@dataclass(frozen=True)
class CorpusCase:
    """One upstream line and the outcome a fetcher must give it."""

    name: str
    line: bytes
    expect: Expect
    reason: str | None  # the dead letter's reason; None when expect is "raw"
    note: str = ""


def load_corpus(path: Path = CORPUS) -> list[CorpusCase]:
    """Every case of the corpus, recipes built, in file order; a malformed entry raises."""
    cases = []
    # Split at LF only: a line of the file may hold U+2028 or U+0085, which splitlines() breaks at.
    for number, text in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not text.strip():
            continue
        entry = json.loads(text)
        try:
            cases.append(_case(entry))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path.name} line {number}: {exc}") from exc
    return cases


def _case(entry: dict[str, Any]) -> CorpusCase:
    name, expect, reason = entry["name"], entry["expect"], entry["reason"]
    if expect not in ("raw", "dlq"):
        raise ValueError(f"{name}: expect must be raw or dlq, not {expect!r}")
    if (expect == "raw") != (reason is None) or (reason is not None and reason not in REASONS):
        raise ValueError(f"{name}: reason {reason!r} does not fit expect {expect!r}")
    if ("line" in entry) == ("recipe" in entry):
        raise ValueError(f"{name}: give exactly one of line and recipe")
    text = entry.get("line")
    line = text.encode("utf-8") if text is not None else build_recipe(name, entry["recipe"])
    return CorpusCase(name, line, expect, reason, entry.get("note", ""))


def build_recipe(name: str, recipe: dict[str, Any]) -> bytes:
    """The bytes a recipe stands for (see the module docstring)."""
    kind = recipe["kind"]
    if kind == "bytes_hex":
        return bytes.fromhex(recipe["hex"])
    if kind in ("oversized", "padded"):
        return _padded(name, int(recipe["bytes"]))
    if kind == "deep":
        depth = int(recipe["depth"])
        return _with_extra_dimension(name, "[" * depth + "]" * depth)
    if kind == "huge_array":
        return _huge_arrays(name, int(recipe["entries"]))
    raise ValueError(f"{name}: unknown recipe kind {kind!r}")


def composed_sample(name: str) -> dict[str, Any]:
    """The composed sample (its stray-space `" eVar01"` included), with the case's messageId."""
    document: dict[str, Any] = json.loads((FIXTURES / "campaign_composed.json").read_text())
    header = document[PIPELINE_MESSAGE]["header"]
    header["messageId"] = str(uuid.uuid5(_NAMESPACE, name))
    return document


def _dimensions(document: dict[str, Any]) -> dict[str, Any]:
    trigger = document[PIPELINE_MESSAGE][TRIGGER]
    dimensions: dict[str, Any] = trigger["enrichments"]["analyticsHitSummary"]["dimensions"]
    return dimensions


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _with_extra_dimension(name: str, data_json: str) -> bytes:
    """The composed sample with dimension `eVar42` whose `data` is the given JSON text."""
    document = composed_sample(name)
    _dimensions(document)["eVar42"] = {"type": "string", "name": "eVar42", "data": _PLACEHOLDER}
    return _dump(document).replace(f'"{_PLACEHOLDER}"', data_json).encode()


def _padded(name: str, size: int) -> bytes:
    """Valid JSON of exactly `size` bytes: the composed sample, padded in one dimension value."""
    empty = _with_extra_dimension(name, '[""]')
    head, tail = empty.split(b'[""]', 1)
    padding = size - len(empty)
    if padding < 0:
        raise ValueError(f"{name}: {size} bytes is smaller than the envelope itself")
    return head + b'["' + b"x" * padding + b'"]' + tail


def _huge_arrays(name: str, entries: int) -> bytes:
    """Per-hit arrays of `entries` hits, with repeats and empty strings as in Adobe's samples."""
    document = composed_sample(name)
    dimensions = _dimensions(document)
    declared = next(v for v in dimensions[" eVar01"]["data"] if v)
    pages = ["https://shop.example/cart", "", "", "", "https://shop.example/product/42", ""]
    columns = {
        " eVar01": itertools.cycle([declared, "", "", ""]),
        "pageURL": itertools.cycle(pages),
        "timeGMT": (1469164186 + i // 10 for i in itertools.count()),
    }
    for key, values in columns.items():
        dimensions[key]["data"] = list(itertools.islice(values, entries))
    return _dump(document).encode()

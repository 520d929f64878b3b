"""Reading CSV and JSON Lines files of profiles or suppressions, line by line.

Structure is checked as the file is read: a CSV row with another number of fields than the
header, a JSON line that is not an object, or bytes that are not UTF-8 raise `OperatorError`
naming the line. Callers read a file once to check it before they change anything.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, TextIO

import orjson

from services.ops.errors import OperatorError

FileFormat = Literal["csv", "jsonl"]
_SUFFIXES: dict[str, FileFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_SAMPLE = 1000  # JSON lines whose keys make up the "header" mappings are checked against

Record = dict[str, object]


def file_format(path: Path, given: str | None = None) -> FileFormat:
    if given in ("csv", "jsonl"):
        return given  # type: ignore[return-value]
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise OperatorError(f"{path}: say --format csv or --format jsonl (unknown suffix)")
    return found


class RecordFile:
    """One input file; `records()` may be called again for a second pass."""

    def __init__(self, path: Path, fmt: FileFormat) -> None:
        if not path.is_file():
            raise OperatorError(f"{path}: no such file")
        self.path = path
        self.format = fmt

    def header(self) -> list[str]:
        """The CSV header, or the keys of the first JSON lines."""
        if self.format == "csv":
            with self._open() as handle:
                try:
                    first = next(csv.reader(handle), None)
                except UnicodeDecodeError:
                    raise OperatorError(
                        f"{self.path} near line 1: not UTF-8 text; nothing was imported"
                    ) from None
                except csv.Error as exc:
                    raise OperatorError(f"{self.path} line 1: {exc}") from None
            if not first or not any(cell.strip() for cell in first):
                raise OperatorError(f"{self.path}: empty, or no header line")
            return [cell.strip() for cell in first]
        keys: dict[str, None] = {}
        for _, record in itertools.islice(self.records(), _SAMPLE):
            keys.update(dict.fromkeys(record))
        if not keys:
            raise OperatorError(f"{self.path}: holds no JSON objects")
        return list(keys)

    def records(self) -> Iterator[tuple[int, Record]]:
        """(line number, record) for every row; blank lines are skipped."""
        if self.format == "csv":
            yield from self._csv()
        else:
            yield from self._jsonl()

    def _open(self) -> TextIO:
        # utf-8-sig: spreadsheet exports start with a byte-order mark
        return self.path.open(newline="", encoding="utf-8-sig")

    def _csv(self) -> Iterator[tuple[int, Record]]:
        with self._open() as handle:
            reader = csv.reader(handle)
            line = 1
            try:
                header = [cell.strip() for cell in next(reader, [])]
                width = len(header)
                line = reader.line_num + 1
                for row in reader:
                    if row and (len(row) != width):
                        if len(row) == 1 and not row[0].strip():
                            line = reader.line_num + 1
                            continue
                        raise OperatorError(
                            f"{self.path} line {line}: {len(row)} fields where the header has "
                            f"{width}; fix the file (nothing was imported)"
                        )
                    if row:
                        yield line, dict(zip(header, row, strict=True))
                    line = reader.line_num + 1
            except UnicodeDecodeError:
                raise OperatorError(
                    f"{self.path} near line {line}: not UTF-8 text; nothing was imported"
                ) from None
            except csv.Error as exc:
                raise OperatorError(
                    f"{self.path} line {line}: {exc}; nothing was imported"
                ) from None

    def _jsonl(self) -> Iterator[tuple[int, Record]]:
        with self.path.open("rb") as handle:
            for line, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    record = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise OperatorError(
                        f"{self.path} line {line}: not JSON ({exc.msg}); nothing was imported"
                    ) from None
                if not isinstance(record, dict):
                    raise OperatorError(
                        f"{self.path} line {line}: a JSON line must be an object; nothing was "
                        "imported"
                    )
                yield line, record

"""The two imports of `triggerline profiles`, as procedures over a record file and a store:
check the whole file first, then write in batches, and say what changed and what was left out.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from tqdm import tqdm

from services.common.suppression import SuppressionChange, suppression_change
from services.ops.errors import OperatorError
from services.ops.profile_files import RecordFile
from services.ops.profile_store import ProfileImportStore, SuppressionImportStore
from services.ops.rules.profile_changes import plan_batch
from services.ops.rules.profile_rows import (
    FileIndex,
    ProfileRow,
    Reject,
    SuppressionRow,
    column_mapping,
    profile_row,
    suppression_row,
)

DEFAULT_BATCH = 5000


def _bar(total: int | None, desc: str) -> tqdm[NoReturn]:
    # disable=None: no bar when stderr is not a terminal (a Job's log, a test)
    return tqdm(total=total, desc=desc, unit="row", unit_scale=True, disable=None)


def write_rejects(path: Path, rejects: Iterable[Reject]) -> int:
    """line,reason,detail per rejected row, in line order; the file exists only if needed."""
    ordered = sorted(rejects, key=lambda r: r.line)
    if ordered:
        with path.open("w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle)
            out.writerow(["line", "reason", "detail"])
            out.writerows([r.line, r.reason, r.detail] for r in ordered)
    elif path.exists():
        path.unlink()
    return len(ordered)


def import_profiles(
    reader: RecordFile,
    store: ProfileImportStore,
    maps: list[str],
    identities: list[str],
    *,
    default_consent: bool = True,
    batch_size: int = DEFAULT_BATCH,
    dry_run: bool = False,
) -> tuple[Counter[str], list[Reject]]:
    """Check the whole file, then decide and write it batch by batch; returns counts and the
    rejected rows. A malformed file raises `OperatorError` before anything is written."""
    mapping = column_mapping(maps, identities, reader.header())
    rejects: dict[int, Reject] = {}
    index = FileIndex()
    total = 0
    with _bar(None, "checking") as bar:
        for line, record in reader.records():
            total += 1
            bar.update()
            row = profile_row(line, record, mapping)
            clash = row if isinstance(row, Reject) else index.claim(row)
            if clash is not None:
                rejects[line] = clash
    del index
    counts: Counter[str] = Counter(rows=total)
    for reject in rejects.values():
        counts[f"rejected:{reject.reason}"] += 1
    later: list[Reject] = []
    batch: list[ProfileRow] = []

    def flush() -> None:
        plan = plan_batch(
            batch,
            store.stored([r.profile_id for r in batch]),
            store.owners(i for r in batch for i in r.identities),
            default_consent,
        )
        if not dry_run:
            store.write(plan, datetime.now(UTC))
        counts.update(plan.counts)
        later.extend(plan.rejects)
        batch.clear()

    with _bar(total, "comparing" if dry_run else "importing") as bar:
        for line, record in reader.records():
            bar.update()
            if line in rejects:
                continue
            row = profile_row(line, record, mapping)
            assert isinstance(row, ProfileRow)
            batch.append(row)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    return counts, [*rejects.values(), *later]


def suppress_addresses(
    reader: RecordFile,
    store: SuppressionImportStore,
    email_column: str,
    reason_column: str,
    default_reason: str,
    *,
    batch_size: int = DEFAULT_BATCH,
    dry_run: bool = False,
) -> tuple[Counter[str], list[Reject]]:
    """Check the file, then add its addresses in batches; counts of added, widened (an
    unsubscribe that now stops all mail, `suppression_change`), already there, repeated in the
    file, and rejected."""
    header = reader.header()
    if email_column not in header:
        raise OperatorError(
            f"column {email_column!r} is not in the file (it has {', '.join(header)}); "
            "name it with --email-column"
        )
    reason_of = reason_column if reason_column in header else None
    rejects: list[Reject] = []
    with _bar(None, "checking") as bar:
        for line, record in reader.records():
            bar.update()
            row = suppression_row(line, record, email_column, reason_of, default_reason)
            if isinstance(row, Reject):
                rejects.append(row)
    skip = {r.line for r in rejects}
    counts: Counter[str] = Counter()
    for reject in rejects:
        counts[f"rejected:{reject.reason}"] += 1
    seen: set[str] = set()
    batch: list[SuppressionRow] = []
    source = f"import:{reader.path.name}"

    def flush() -> None:
        existing = store.reasons([r.email for r in batch])
        changes = {r: suppression_change(existing.get(r.email), r.reason) for r in batch}
        new = [r for r, change in changes.items() if change is SuppressionChange.INSERT]
        wider = [(r, existing[r.email]) for r, c in changes.items() if c is SuppressionChange.WIDEN]
        counts["already"] += len(batch) - len(new) - len(wider)
        counts["added"] += len(new)
        counts["widened"] += len(wider)
        if not dry_run:
            now = datetime.now(UTC)
            store.add(new, source, now)
            store.widen(wider, source, now)
        batch.clear()

    with _bar(None, "comparing" if dry_run else "suppressing") as bar:
        for line, record in reader.records():
            counts["rows"] += 1
            bar.update()
            if line in skip:
                continue
            row = suppression_row(line, record, email_column, reason_of, default_reason)
            assert isinstance(row, SuppressionRow)
            if row.email in seen:
                counts["repeated"] += 1
                continue
            seen.add(row.email)
            batch.append(row)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    return counts, rejects

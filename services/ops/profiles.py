"""`triggerline profiles`: load the business's own profiles and suppression lists.

    triggerline profiles import customers.csv --dry-run          # what would change
    triggerline profiles import customers.csv                    # upsert, in batches
    triggerline profiles import crm.jsonl --map profile_id=CustomerId --map email=Mail \\
        --identity declared=LoyaltyNo --identity mcid=ECID --identity email=Mail
    triggerline profiles suppress unsubscribed.csv --reason unsubscribed

The file is read twice: once to check it (a malformed file is refused in one line and nothing
changes), once to write. Rows that cannot be imported (missing id, an email the mailer would
refuse, an identity that already leads to another profile) are left out and listed with their
line and reason in the rejects file; the rest is imported.
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from tqdm import tqdm

from services.common.db.engine import make_engine, upgrade
from services.common.settings import DatabaseSettings, load
from services.ops.errors import OperatorError
from services.ops.profile_files import RecordFile, file_format
from services.ops.profile_store import ProfileImportStore, SuppressionImportStore
from services.ops.rules.profile_changes import describe_import, plan_batch
from services.ops.rules.profile_rows import (
    PROFILE_FIELDS,
    SUPPRESSION_REASONS,
    FileIndex,
    ProfileRow,
    Reject,
    SuppressionRow,
    column_mapping,
    profile_row,
    suppression_row,
)

DEFAULT_BATCH = 5000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="triggerline profiles",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True)
    imp = sub.add_parser(
        "import",
        help="upsert profiles and their identities from CSV or JSON Lines",
        description="Upsert profiles from FILE. Default columns: "
        + ", ".join(f"{f}" for f in PROFILE_FIELDS[:-1])
        + ", email_consent; identities from the mcid and declared_id columns and the email.",
    )
    imp.add_argument("file", type=Path, help="a .csv (with a header line) or .jsonl file")
    imp.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help=f"read a profile field from another column, repeatable ({', '.join(PROFILE_FIELDS)};"
        " e.g. --map profile_id=CustomerId)",
    )
    imp.add_argument(
        "--identity",
        action="append",
        default=[],
        metavar="KIND=COLUMN",
        help="an identity column by kind (mcid, declared, email), repeatable, replacing the "
        "defaults (e.g. --identity declared=LoyaltyNo --identity email=Mail)",
    )
    imp.add_argument(
        "--consent-default",
        choices=("yes", "no"),
        default="yes",
        help="email consent of a new profile whose consent cell is empty (default yes)",
    )
    _common(imp)
    sup = sub.add_parser(
        "suppress",
        help="add addresses to the suppression list (never mailed again)",
        description="Add the addresses of FILE to the suppression list; an address already "
        "on it keeps its first reason.",
    )
    sup.add_argument("file", type=Path, help="a .csv (with a header line) or .jsonl file")
    sup.add_argument("--email-column", default="email", help="column of the address (email)")
    sup.add_argument(
        "--reason-column", default="reason", help="column of a per-row reason, if any (reason)"
    )
    sup.add_argument(
        "--reason",
        choices=SUPPRESSION_REASONS,
        default="manual",
        help="reason of rows without one (default manual)",
    )
    _common(sup)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("csv", "jsonl"), help="default: from the suffix")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH,
        help=f"rows per transaction (default {DEFAULT_BATCH})",
    )
    parser.add_argument(
        "--rejects",
        type=Path,
        help="where rejected lines and reasons go (default: FILE.rejects.csv beside the file)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="report what would change; write nothing"
    )


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
    """Check the file, then add its addresses in batches; counts of added, already there,
    repeated in the file, and rejected."""
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
        known = store.already([r.email for r in batch])
        new = [r for r in batch if r.email not in known]
        counts["already"] += len(batch) - len(new)
        counts["added"] += len(new)
        if not dry_run:
            store.add(new, source, datetime.now(UTC))
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


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.batch_size < 1:
        raise OperatorError("--batch-size must be at least 1")
    reader = RecordFile(args.file, file_format(args.file, args.format))
    rejects_path: Path = args.rejects or args.file.with_name(args.file.name + ".rejects.csv")
    engine = make_engine(load(DatabaseSettings))
    try:
        upgrade(engine)
        if args.action == "import":
            counts, rejects = import_profiles(
                reader,
                ProfileImportStore(engine),
                args.map,
                args.identity,
                default_consent=args.consent_default == "yes",
                batch_size=args.batch_size,
                dry_run=args.dry_run,
            )
            write_rejects(rejects_path, rejects)
            print(describe_import(counts, args.dry_run, str(rejects_path)))
        else:
            counts, rejects = suppress_addresses(
                reader,
                SuppressionImportStore(engine),
                args.email_column,
                args.reason_column,
                args.reason,
                batch_size=args.batch_size,
                dry_run=args.dry_run,
            )
            write_rejects(rejects_path, rejects)
            verb = "would add" if args.dry_run else "added"
            print(
                f"{counts['rows']} rows: {verb} {counts['added']}, already suppressed "
                f"{counts['already']}, repeated {counts['repeated']}, rejected {len(rejects)}"
            )
            if rejects:
                print(f"  rejected lines and reasons: {rejects_path}")
    finally:
        engine.dispose()
    if args.dry_run:
        print("(dry run: nothing was written)")
    return 0

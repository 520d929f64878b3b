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
from pathlib import Path

from services.common.db.engine import make_engine, upgrade
from services.common.settings import DatabaseSettings, load
from services.ops.errors import OperatorError
from services.ops.profile_files import RecordFile, file_format
from services.ops.profile_import import (
    DEFAULT_BATCH,
    import_profiles,
    suppress_addresses,
    write_rejects,
)
from services.ops.profile_store import ProfileImportStore, SuppressionImportStore
from services.ops.rules.profile_changes import describe_import
from services.ops.rules.profile_rows import (
    PROFILE_FIELDS,
    SUPPRESSION_REASONS,
)


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
                f"{counts['rows']} rows: {verb} {counts['added']}, widened to all mail "
                f"{counts['widened']}, already suppressed "
                f"{counts['already']}, repeated {counts['repeated']}, rejected {len(rejects)}"
            )
            if rejects:
                print(f"  rejected lines and reasons: {rejects_path}")
    finally:
        engine.dispose()
    if args.dry_run:
        print("(dry run: nothing was written)")
    return 0

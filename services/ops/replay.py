"""`triggerline replay`: rewind a stopped consumer group, or re-drive dead letters.

Every action shows its plan first; nothing changes without --execute.

    triggerline replay rewind --group triggerline-processor --to-duration 2h
    triggerline replay rewind --group triggerline-mailer --to-duration 1h --execute
    triggerline replay redrive --from triggers.unmatched --reason no_profile --since 6h
    triggerline replay redrive --from emails.dlq --reason retries_exhausted --execute

A rewind commits new offsets for a group with no live member (Kafka refuses otherwise, and so
do we, naming the members), or copies the plan into a fresh group (--to-new-group). A re-drive
produces each selected dead letter back to its `x-original-topic`, in transactions that carry
its progress, so running the same command again after an interruption resumes it. The
processor's dedup state, the mailer's claims and the validity window keep either from mailing
anyone twice or late.
"""

from __future__ import annotations

import argparse
import sys

from services.common.settings import KafkaSettings, load
from services.ops.groups import redrive_group
from services.ops.redrive import DEFAULT_BATCH
from services.ops.replay_actions import run_redrive, run_rewind

REWIND_EXAMPLES = """examples:
  # the last two hours of the processor, again (plan, then apply with the group stopped)
  triggerline replay rewind --group triggerline-processor --to-duration 2h
  triggerline replay rewind --group triggerline-processor --to-duration 2h --execute
  # every campaign topic of the mailer back to a point in time
  triggerline replay rewind --group triggerline-mailer --to-datetime 2026-11-28T22:00:00Z
  # chosen partitions to chosen offsets
  triggerline replay rewind --group triggerline-processor --topic triggers.raw \\
      --to-offsets 0:123,1:456
  # reprocess the last hour in a fresh group while the live one keeps running
  triggerline replay rewind --group triggerline-processor --to-duration 1h \\
      --to-new-group triggerline-processor-replay --execute
"""

REDRIVE_EXAMPLES = """examples:
  # what waits in triggers.unmatched, per reason (a plan: nothing moves)
  triggerline replay redrive --from triggers.unmatched
  # unmatched triggers of the last 6 hours, once their profiles are imported
  triggerline replay redrive --from triggers.unmatched --reason no_profile --since 6h --execute
  # what the relay refused overnight, for one campaign
  triggerline replay redrive --from emails.dlq --reason retries_exhausted \\
      --campaign cart_abandonment --since 2026-11-28T20:00:00Z --until 2026-11-29T07:00:00Z \\
      --execute
  # deliveries left `unknown` (dropped after the data, or a mailer killed mid-handover) that
  # the relay's log shows never arrived: resend exactly those, by Message-ID
  triggerline replay redrive --from emails.dlq --reason smtp_unknown \
      --message-ids-file missing-at-relay.txt --resend-unknown --execute
  # interrupted? run the very same command again: it resumes after the last committed batch
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="triggerline replay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True)
    rewind = sub.add_parser(
        "rewind",
        help="move a stopped group's offsets, or copy them into a new group",
        description="Show where a consumer group would restart; --execute applies it.",
        epilog=REWIND_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rewind.add_argument(
        "--group",
        required=True,
        help="consumer group to rewind (e.g. triggerline-processor, triggerline-mailer); with "
        "--to-new-group, the group whose position the plan starts from",
    )
    rewind.add_argument(
        "--topic",
        action="append",
        help="topic to rewind, repeatable (e.g. --topic triggers.raw); default: every topic "
        "the group has committed offsets on. TRIGGERLINE_TOPICS_PREFIX is added when missing",
    )
    where = rewind.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--to-duration",
        metavar="DURATION",
        help="restart at the first record of that long ago (e.g. 2h, 30m, 1d)",
    )
    where.add_argument(
        "--to-datetime",
        metavar="TIME",
        help="restart at the first record at or after this ISO time, UTC unless it names an "
        "offset (e.g. 2026-11-28T22:00:00Z)",
    )
    where.add_argument(
        "--to-offset",
        type=int,
        metavar="OFFSET",
        help="restart every partition at this offset (e.g. 1200); refused if outside the log",
    )
    where.add_argument(
        "--to-offsets",
        metavar="P:O,...",
        help="restart the named partitions at these offsets (e.g. 0:123,1:456); others stay",
    )
    where.add_argument(
        "--to-earliest", action="store_true", help="restart at the oldest record still kept"
    )
    where.add_argument(
        "--to-latest", action="store_true", help="skip to the end: read only new records"
    )
    rewind.add_argument(
        "--to-new-group",
        metavar="NAME",
        help="commit the plan into this fresh group instead, leaving --group untouched (e.g. "
        "triggerline-processor-replay; then start a processor with that app id)",
    )
    rewind.add_argument(
        "--execute",
        action="store_true",
        help="apply the plan (refused while the group has live members)",
    )
    again = sub.add_parser(
        "redrive",
        help="send selected dead letters back to their original topic",
        description="Count the dead letters a filter selects, per reason; --execute re-drives "
        "them, with progress, resumably.",
        epilog=REDRIVE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    again.add_argument(
        "--from",
        dest="source",
        required=True,
        help="dead-letter topic: triggers.dlq, triggers.unmatched or emails.dlq",
    )
    again.add_argument(
        "--reason",
        action="append",
        default=[],
        help="only records with this x-error-reason, repeatable (e.g. no_profile, "
        "template_error, retries_exhausted)",
    )
    again.add_argument(
        "--campaign",
        action="append",
        default=[],
        help="only records of this campaign, repeatable (e.g. cart_abandonment)",
    )
    again.add_argument(
        "--trigger-id",
        action="append",
        default=[],
        help="only records of this Adobe trigger id, repeatable",
    )
    again.add_argument(
        "--message-id",
        action="append",
        default=[],
        help="only the email request with this Message-ID (<digest@domain> or the digest), "
        "repeatable",
    )
    again.add_argument(
        "--message-ids-file",
        metavar="FILE",
        help="only the email requests whose Message-IDs this file lists, one per line",
    )
    again.add_argument(
        "--resend-unknown",
        action="store_true",
        help="also reopen `unknown` deliveries (they may have arrived) so the mailer sends them "
        "again; only with --from emails.dlq and Message-IDs the relay's log lacks",
    )
    again.add_argument(
        "--since",
        metavar="WHEN",
        help="only records that failed at or after this: a duration ago (6h) or an ISO time",
    )
    again.add_argument(
        "--until",
        metavar="WHEN",
        help="only records that failed before this: a duration ago (1h) or an ISO time",
    )
    again.add_argument(
        "--limit", type=int, default=None, help="stop after re-driving this many (e.g. 1000)"
    )
    again.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH,
        help=f"records per transaction, the unit of resumption (default {DEFAULT_BATCH})",
    )
    again.add_argument(
        "--group",
        help="consumer group keeping the position (default: one per filter, derived from "
        f"{redrive_group()})",
    )
    again.add_argument(
        "--execute", action="store_true", help="produce and commit, showing progress"
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    settings = load(KafkaSettings)
    if args.action == "redrive":
        return run_redrive(args, settings)
    return run_rewind(args, settings)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

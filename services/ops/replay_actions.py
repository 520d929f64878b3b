"""The two `triggerline replay` actions: plan, then apply, a rewind; count, then re-drive, dead
letters. Each prints its plan and changes nothing without --execute."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from services.common.db.engine import make_engine
from services.common.kafka import make_admin
from services.common.message_ids import digest_of
from services.common.pipeline_config import load_pipeline_config
from services.common.settings import DatabaseSettings, KafkaSettings, PipelineConfigSettings, load
from services.common.topics import topics
from services.ops.errors import OperatorError
from services.ops.groups import redrive_group
from services.ops.redrive import CampaignOf, ClaimReopener, redrive
from services.ops.rewind import apply_rewind, committed_offsets, live_members, rewind_plan
from services.ops.rules.moments import parse_moment
from services.ops.rules.redrive import RedriveFilter, describe_tally, progress_group
from services.ops.rules.replay import (
    RewindRequest,
    describe_plan,
    parse_offsets,
    qualified_topic,
)


def _request(args: argparse.Namespace, now: datetime) -> RewindRequest:
    if args.to_duration is not None:
        return RewindRequest("datetime", when=parse_moment(args.to_duration, now, "--to-duration"))
    if args.to_datetime is not None:
        return RewindRequest("datetime", when=parse_moment(args.to_datetime, now, "--to-datetime"))
    if args.to_offset is not None:
        return RewindRequest("offset", offset=args.to_offset)
    if args.to_offsets is not None:
        return RewindRequest("offsets", offsets=parse_offsets(args.to_offsets))
    return RewindRequest("earliest" if args.to_earliest else "latest")


def run_rewind(args: argparse.Namespace, settings: KafkaSettings) -> int:
    request = _request(args, datetime.now(UTC))
    admin = make_admin(settings)
    if args.topic:
        names = [qualified_topic(t, topics().prefix) for t in args.topic]
    else:
        names = sorted({t for t, _ in committed_offsets(admin, args.group)})
        if not names:
            raise OperatorError(
                f"group {args.group} has no committed offsets; name the topics with --topic"
            )
    moves = rewind_plan(settings, args.group, names, request, admin)
    for topic in names:
        chosen = [m for m in moves if m.topic == topic]
        print(describe_plan(args.group, topic, chosen, request, args.to_new_group))
    if not args.to_new_group:
        _, members = live_members(admin, args.group)
        if members:
            print(f"group {args.group} has live members: {', '.join(members)}")
    if not args.execute:
        print("(plan only: add --execute to apply; the group must be stopped)")
        return 0
    apply_rewind(settings, args.group, moves, args.to_new_group, admin)
    print(f"applied to group {args.to_new_group or args.group}")
    return 0


def _message_digests(named: list[str], listed: str | None) -> list[str]:
    """The digests of the Message-IDs named on the command line and listed in a file."""
    lines = list(named)
    if listed is not None:
        try:
            lines += Path(listed).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise OperatorError(f"--message-ids-file {listed}: {exc.strerror}") from exc
    return sorted({digest_of(line) for line in lines if line.strip()})


def _campaign_router() -> CampaignOf:
    from services.processor.rules.routing import build_routes, route_trigger

    routes = build_routes(load_pipeline_config(load(PipelineConfigSettings).config))
    return lambda trigger_id: route_trigger(trigger_id, routes)


def run_redrive(args: argparse.Namespace, settings: KafkaSettings) -> int:
    now = datetime.now(UTC)
    source = qualified_topic(args.source, topics().prefix)
    dead = {
        s.name for s in (topics().triggers_dlq, topics().triggers_unmatched, topics().emails_dlq)
    }
    if source not in dead:
        raise OperatorError(
            f"--from {args.source}: re-drive reads {', '.join(sorted(dead))}, not {source}"
        )
    if args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        raise OperatorError("--batch-size and --limit must be at least 1")
    since = parse_moment(args.since, now, "--since") if args.since else None
    until = parse_moment(args.until, now, "--until") if args.until else None
    if since is not None and until is not None and since >= until:
        raise OperatorError(f"--since {args.since} is not before --until {args.until}")
    digests = _message_digests(args.message_id, args.message_ids_file)
    emails_dlq = topics().emails_dlq.name
    if args.resend_unknown and (source != emails_dlq or not digests):
        raise OperatorError(
            f"--resend-unknown needs --from {emails_dlq} and the Message-IDs to resend "
            "(--message-id or --message-ids-file): an `unknown` message may have arrived, so "
            "only those the relay's log lacks are sent again"
        )
    spelling = [f"source={source}"]
    for name, values in (("reason", args.reason), ("campaign", args.campaign),
                         ("trigger", args.trigger_id), ("message", digests)):  # fmt: skip
        spelling += [f"{name}={v}" for v in sorted(set(values))]
    spelling += [f"since={args.since}"] if args.since else []
    spelling += [f"until={args.until}"] if args.until else []
    spelling += ["resend-unknown"] if args.resend_unknown else []
    wanted = RedriveFilter(
        reasons=frozenset(args.reason),
        campaigns=frozenset(args.campaign),
        trigger_ids=frozenset(t.strip().lower() for t in args.trigger_id),
        message_digests=frozenset(digests),
        since=since,
        until=until,
        spelling=tuple(spelling) if len(spelling) > 1 else (),
    )
    group = args.group or progress_group(redrive_group(), wanted)
    campaign_of = (
        _campaign_router() if args.campaign and source != topics().emails_dlq.name else None
    )
    claims = None
    if args.execute and source == emails_dlq:
        engine = make_engine(load(DatabaseSettings))
        claims = ClaimReopener(engine, resend_unknown=args.resend_unknown)
    bar = tqdm(total=0, unit="rec", desc="re-driving", disable=None if args.execute else True)

    def started(total: int) -> None:
        bar.total = total
        bar.refresh()

    def advanced(count: int) -> None:
        bar.update(count)

    try:
        run = redrive(
            settings,
            source,
            wanted=wanted,
            execute=args.execute,
            limit=args.limit,
            group=group,
            batch_size=args.batch_size,
            progress=advanced,
            on_start=started,
            claims=claims,
            campaign_of=campaign_of,
        )
    except KeyboardInterrupt:
        bar.close()
        print(
            f"interrupted: the batch in flight was dropped; run the same command again to "
            f"resume from group {group}",
            file=sys.stderr,
        )
        return 130
    bar.close()
    print(describe_tally(source, run.tally, args.execute, run.group))
    if run.claims_reopened:
        settled = "failed or unknown" if args.resend_unknown else "failed"
        print(
            f"  reopened {run.claims_reopened} {settled} delivery claims so the mailer sends them"
        )
    if not args.execute:
        print("(plan only: add --execute to apply; the same command resumes if interrupted)")
    return 0

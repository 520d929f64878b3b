"""`triggerline templates`: check every campaign's templates, or preview one email as `.eml`.

Both run the production code path without Kafka: the processor's personalisation and request
rules, then the mailer's sandboxed templates and message builder. So what `check` passes and
`preview` shows is what a shopper would receive.

    triggerline templates check                        # every campaign x the generated matrix
    triggerline templates preview cart_abandonment --trigger trigger.json --profile P-0000042
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.common.db.engine import make_engine
from services.common.enrichments import Enrichments, parse_enrichments
from services.common.errors import ConfigurationError, InvalidInput
from services.common.models import EmailRequest
from services.common.personalisation import LinkPolicy, MissingData, personalise
from services.common.personalisation_config import TEMPLATE_NAMES
from services.common.pipeline_config import PipelineConfig, load_pipeline_config
from services.common.serde import envelope_serde
from services.common.settings import REPO_ROOT, DatabaseSettings, PipelineConfigSettings, load
from services.common.token_settings import TokenSettings
from services.mailer.campaigns import campaign_defaults
from services.mailer.message import Unsubscribe, build_message, unsubscribe_link
from services.mailer.settings import MailerSettings
from services.mailer.templates import TemplateSet, template_context
from services.ops.rules.template_checks import (
    header_problems,
    leaked,
    subject_problems,
    undeclared_names,
)
from services.ops.rules.template_matrix import profile_variants, trigger_variants
from services.processor.profiles import Profile, ProfileStore
from services.processor.rules.request import build_email_request
from services.processor.rules.trigger import Trigger, trigger_from_record
from services.processor.settings import ProcessorSettings

PREVIEW_DIR = REPO_ROOT / "var" / "preview"
SHOWN_PROBLEMS = 40


@dataclass(frozen=True)
class Composed:
    """One email as the mailer would send it, with what went into it."""

    request: EmailRequest
    subject: str
    html: str
    text: str
    message: bytes
    header_names: tuple[str, ...]


@dataclass(frozen=True)
class Composer:
    """Trigger data and a profile to the finished email, through the services' own rules."""

    config: PipelineConfig
    templates: TemplateSet
    allow_http_links: bool
    unsubscribe_url: str
    message_id_domain: str
    now: datetime

    def compose(
        self, campaign: str, trigger: Trigger, enrichments: Enrichments, profile: Profile
    ) -> Composed | MissingData:
        policy = self.config.campaigns[campaign]
        links = LinkPolicy.of(policy, self.allow_http_links)
        shared = self.config.personalisation
        variables = self.config.campaign_variables(campaign)
        personal = personalise(enrichments, variables, links, shared.max_length)
        if isinstance(personal, MissingData):
            return personal
        request = build_email_request(
            campaign=campaign,
            trigger=trigger,
            enrichments=enrichments,
            profile_id=profile.profile_id,
            email=profile.email,
            first_name=profile.first_name,
            locale=profile.locale,
            personalisation=shared,
            variables=personal.values,
            validity=policy.validity,
        )
        rendered = self.templates.render(campaign, template_context(request))
        unsubscribe = None
        if policy.category == "marketing":
            unsubscribe = Unsubscribe(unsubscribe_link(self.unsubscribe_url, "preview"))
        message = build_message(
            request,
            rendered,
            sender=policy.sender,
            now=self.now,
            message_id_domain=self.message_id_domain,
            unsubscribe=unsubscribe,
        )
        names = tuple(name for name, _ in message.headers)
        return Composed(
            request, rendered.subject, rendered.html, rendered.text, message.as_bytes(), names
        )


def _composer(config_path: Path | None, templates_dir: Path | None) -> Composer:
    """The routing file, templates and settings the services would use (or the given ones)."""
    where = load(PipelineConfigSettings)
    config = load_pipeline_config(config_path or where.config)
    folders = {name: campaign.template for name, campaign in config.campaigns.items()}
    folder = templates_dir or where.templates_dir
    templates = TemplateSet(folder, folders, campaign_defaults(config))
    return Composer(
        config,
        templates,
        load(ProcessorSettings).allow_http_links,
        load(TokenSettings).unsubscribe_url,
        load(MailerSettings).message_id_domain,
        datetime.now(UTC),
    )


def check_campaign(composer: Composer, campaign: str) -> tuple[int, int, list[tuple[str, str]]]:
    """Render one campaign over the whole matrix: (rendered, skipped, [(variant, problem)])."""
    templates, config = composer.templates, composer.config
    if campaign in templates.broken:
        return 0, 0, [("(loading)", templates.broken[campaign])]
    declared = config.campaign_variables(campaign)
    known = TEMPLATE_NAMES | set(declared)
    undeclared = undeclared_names(templates.free_names(campaign), known)
    problems = [("(every variant)", problem) for problem in undeclared]
    policy = config.campaigns[campaign]
    shared = config.personalisation
    has_products = bool(shared.product_dimensions)
    rendered = skipped = 0
    for number, variant in enumerate(trigger_variants(declared, policy.link_hosts, has_products)):
        trigger = Trigger(f"check-{number}", "check", "", composer.now, "")
        for person in profile_variants(shared.locales):
            label = f"trigger: {variant.name}; profile: {person.name}"
            profile = Profile("P-check", "shopper@example.com", person.first_name, person.locale)
            try:
                email = composer.compose(campaign, trigger, variant.enrichments, profile)
            except Exception as exc:  # every failure is a finding, named with its variant
                problems.append((label, f"{type(exc).__name__}: {exc}"))
                continue
            if isinstance(email, MissingData):
                skipped += 1
                continue
            rendered += 1
            forbidden = (*variant.forbidden, *person.forbidden)
            parts = (email.subject, email.html, email.text, email.request.first_name or "")
            found = [
                *subject_problems(email.subject),
                *header_problems(email.message, email.header_names),
                *leaked(forbidden, parts),
            ]
            problems += [(label, problem) for problem in found]
    return rendered, skipped, problems


def check(composer: Composer) -> int:
    """Print every distinct problem with the first variant that showed it; 1 if any."""
    total_rendered = total_skipped = 0
    failures: list[str] = []
    for campaign in sorted(composer.config.campaigns):
        rendered, skipped, problems = check_campaign(composer, campaign)
        total_rendered += rendered
        total_skipped += skipped
        counts = Counter(problem for _, problem in problems)
        first: dict[str, str] = {}
        for variant, problem in problems:
            first.setdefault(problem, variant)
        for problem, variant in first.items():
            more = counts[problem] - 1
            also = f" (and {more} more variants)" if more else ""
            failures.append(f"FAIL {campaign} [{variant}]: {problem}{also}")
    for line in failures[:SHOWN_PROBLEMS]:
        print(line)
    if len(failures) > SHOWN_PROBLEMS:
        print(f"... and {len(failures) - SHOWN_PROBLEMS} more problems")
    campaigns = len(composer.config.campaigns)
    print(
        f"templates check: {campaigns} campaigns, {total_rendered} emails rendered, "
        f"{total_skipped} skipped for missing required data, {len(failures)} problems"
    )
    return 1 if failures else 0


def read_trigger(path: Path) -> tuple[Trigger, Enrichments]:
    """A trigger file as upstream sends it (an envelope, or Adobe I/O's `{"event": ...}`)."""
    from services.fetcher.envelopes import Data, parse_envelope

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the trigger file {path}: {exc}") from None
    parsed = parse_envelope(json.dumps(document).encode())
    if not isinstance(parsed, Data):
        raise ConfigurationError(f"{path} holds no DATA envelope")
    # Through the topic's own serde, so the processor's reading of it is what is previewed.
    serde = envelope_serde()
    trigger = trigger_from_record(serde.decode(serde.encode(parsed.record)))
    return trigger, parse_enrichments(trigger.enrichments)


def find_profile(profile_id: str) -> Profile:
    engine = make_engine(load(DatabaseSettings))
    try:
        found = asyncio.run(ProfileStore(engine, 1, timedelta(seconds=1)).profile(profile_id))
    finally:
        engine.dispose()
    if found is None:
        raise ConfigurationError(f"no profile {profile_id!r} in the database (TRIGGERLINE_DB_URL)")
    return found


def preview(
    composer: Composer, campaign: str, trigger_file: Path, profile_id: str, out: Path | None
) -> int:
    """Write the campaign's email for this trigger and profile as `.eml`, and print it."""
    if campaign not in composer.config.campaigns:
        known = ", ".join(sorted(composer.config.campaigns))
        raise ConfigurationError(f"no campaign {campaign!r} in the routing file; known: {known}")
    try:
        trigger, enrichments = read_trigger(trigger_file)
        email = composer.compose(campaign, trigger, enrichments, find_profile(profile_id))
    except InvalidInput as exc:
        print(f"triggerline templates preview: {exc}", file=sys.stderr)
        return 1
    if isinstance(email, MissingData):
        print(
            f"no email: this trigger ends skipped:missing_data ({email.variable} is {email.why})",
            file=sys.stderr,
        )
        return 1
    target = out or PREVIEW_DIR / f"{campaign}-{profile_id}.eml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(email.message)
    print(email.message.decode("ascii"))
    print(f"written to {target}", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="triggerline templates", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    check_parser = sub.add_parser("check", help="render every campaign over generated triggers")
    show = sub.add_parser("preview", help="write and print one campaign's email as .eml")
    show.add_argument("campaign")
    show.add_argument("--trigger", type=Path, required=True, help="envelope JSON file")
    show.add_argument("--profile", required=True, help="profile id in the database")
    show.add_argument("--out", type=Path, help=f"the .eml to write (default {PREVIEW_DIR}/...)")
    for each in (check_parser, show):
        each.add_argument("--config", type=Path, help="routing file (default: the setting)")
        each.add_argument("--templates", type=Path, help="templates folder (default: the setting)")
    args = parser.parse_args(argv)
    composer = _composer(args.config, args.templates)
    if args.action == "check":
        return check(composer)
    return preview(composer, args.campaign, args.trigger, args.profile, args.out)

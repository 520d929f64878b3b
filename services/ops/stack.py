"""`triggerline stack`: the whole local stack, from simulated upstream to `.eml` files.

Starts the SMTP sink, the simulator (upstream pipeline + IMS), auth, the processor, the mailer
and the fetcher as child processes on loopback, then either runs until Ctrl-C or, with
`--triggers N`, until every trigger has an outcome, and prints the outcome summary. Each run
starts clean: it drops its own topics, consumer groups and local state first, so a second run
is not all duplicates of the first.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import secrets
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import requests
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from services.common.db.engine import make_engine, upgrade
from services.common.kafka import ensure_topics, make_admin
from services.common.pipeline_config import load_pipeline_config
from services.common.settings import (
    REPO_ROOT,
    DatabaseSettings,
    KafkaSettings,
    PipelineConfigSettings,
    load,
)
from services.common.topics import topics_for
from services.mailer.settings import MailerSettings
from services.ops.database import seed_demo_profiles
from services.ops.outcome_tally import OutcomeTally
from services.ops.processes import ServiceProcess, wait_http
from services.ops.topics import declared_topics

log = logging.getLogger(__name__)

PROCESSOR_APP_ID = "triggerline-processor"
DEFAULT_PORTS = {
    "simulator": 7790,
    "auth": 7791,
    "fetcher": 7781,
    "mailer": 7782,
    "processor": 6066,
    "smtp": 2525,
    "feedback": 7785,
    "feedback_health": 7786,
    "feedback_smtp": 2526,
}


@dataclass(frozen=True)
class StackOptions:
    triggers: int
    rate: float
    profiles: int
    seed: int
    var: Path
    timeout: float
    fresh: bool
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    processor_app_id: str = PROCESSOR_APP_ID
    topics_prefix: str = ""
    generate: bool = True
    visitors: int | None = None  # None: as many as profiles (every visitor has a profile)
    # more command-line arguments per child command, e.g. {"smtp-sink": ("--journal", path)}
    extra_args: dict[str, tuple[str, ...]] = field(default_factory=dict)


def local_environment(options: StackOptions, run_id: str) -> dict[str, str]:
    """Settings every child shares; secrets here are throwaway loopback credentials."""
    ims_client_secret = uuid.uuid4().hex
    fetcher_secret = uuid.uuid4().hex
    ports = {**DEFAULT_PORTS, **options.ports}
    unsubscribe_url = f"http://127.0.0.1:{ports['feedback']}/unsubscribe"
    return {
        "TRIGGERLINE_TOPICS_PREFIX": options.topics_prefix,
        "TRIGGERLINE_DB_URL": f"sqlite:///{options.var / 'triggerline.db'}",
        # simulator: upstream pipeline and IMS
        "TRIGGERLINE_SIMULATOR_PORT": str(ports["simulator"]),
        "TRIGGERLINE_SIMULATOR_CLIENT_ID": "triggerline-local",
        "TRIGGERLINE_SIMULATOR_CLIENT_SECRET": ims_client_secret,
        # auth: the only holder of the IMS client secret
        "TRIGGERLINE_AUTH_PORT": str(ports["auth"]),
        "TRIGGERLINE_AUTH_MODE": "oauth",
        "TRIGGERLINE_AUTH_IMS_URL": f"http://127.0.0.1:{ports['simulator']}",
        "TRIGGERLINE_AUTH_CLIENT_ID": "triggerline-local",
        "TRIGGERLINE_AUTH_CLIENT_SECRET": ims_client_secret,
        "TRIGGERLINE_AUTH_CLIENTS": f"fetcher:{fetcher_secret}",
        # fetcher: a new upstream consumer per run, since the simulator's offsets restart at 0
        "TRIGGERLINE_FETCHER_CONSUMER": f"triggerline_local_{run_id}",
        "TRIGGERLINE_FETCHER_RESET": "earliest",
        "TRIGGERLINE_FETCHER_AUTH_URL": f"http://127.0.0.1:{ports['auth']}",
        "TRIGGERLINE_FETCHER_AUTH_SECRET": fetcher_secret,
        "TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT": f"http://127.0.0.1:{ports['simulator']}",
        "TRIGGERLINE_FETCHER_MONITOR_SERVER_PORT": str(ports["fetcher"]),
        "TRIGGERLINE_FETCHER_DUMP_STATE_PATH": str(options.var / "pipelined.json"),
        # processor
        "TRIGGERLINE_PROCESSOR_APP_ID": options.processor_app_id,
        "TRIGGERLINE_PROCESSOR_DATA_DIR": str(options.var / "processor"),
        "TRIGGERLINE_PROCESSOR_WEB_PORT": str(ports["processor"]),
        # mailer and sink
        "TRIGGERLINE_MAILER_SMTP_PORT": str(ports["smtp"]),
        "TRIGGERLINE_MAILER_HEALTH_PORT": str(ports["mailer"]),
        # recipient tokens, shared by the mailer and the feedback service: a throwaway key, and
        # the development allowance for a plain-http link on loopback and a local bounce domain
        "TRIGGERLINE_TOKENS_KEY": secrets.token_urlsafe(48),
        "TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL": unsubscribe_url,
        "TRIGGERLINE_TOKENS_BOUNCE_DOMAIN": "bounces.localhost",
        "TRIGGERLINE_TOKENS_DEVELOPMENT": "true",
        # feedback: the page the links open, and the SMTP listener for bounces
        "TRIGGERLINE_FEEDBACK_PORT": str(ports["feedback"]),
        "TRIGGERLINE_FEEDBACK_HEALTH_PORT": str(ports["feedback_health"]),
        "TRIGGERLINE_FEEDBACK_SMTP_PORT": str(ports["feedback_smtp"]),
    }


def topics_to_reset(
    existing: Iterable[str], declared: Iterable[str], app_id: str, campaign_pattern: str
) -> list[str]:
    """The existing topics a fresh run drops: those it declares, its processor's own (faust's
    changelogs and repartition topic), and every campaign topic its mailer would consume by
    pattern, so a topic left by an earlier configuration or by the tests is not mailed."""
    wanted = set(declared)
    campaign_topics = re.compile(campaign_pattern)
    return sorted(
        name
        for name in existing
        if name in wanted or name.startswith(app_id) or campaign_topics.match(name)
    )


def reset_local_state(kafka: KafkaSettings, options: StackOptions, campaigns: list[str]) -> None:
    """Drop the stack's topics, groups and files so the run starts from nothing."""
    admin = make_admin(kafka)
    doomed = topics_to_reset(
        admin.list_topics(timeout=30).topics,
        [spec.name for spec in declared_topics(campaigns)],
        options.processor_app_id,
        topics_for(options.topics_prefix).emails_pattern(),
    )
    if doomed:
        for future in admin.delete_topics(doomed, operation_timeout=30).values():
            try:
                future.result()
            except KafkaException as exc:
                log.warning("could not delete a topic: %s", exc)
        _wait_deleted(admin, set(doomed))
    groups = [options.processor_app_id, load(MailerSettings).group_id]
    for future in admin.delete_consumer_groups(groups, request_timeout=30).values():
        with contextlib.suppress(KafkaException):  # a group that never existed
            future.result()
    for path in ("processor", "mail", "triggerline.db", "triggerline.db-wal", "triggerline.db-shm"):
        target = options.var / path
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _wait_deleted(admin: AdminClient, names: set[str], deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if not names & set(admin.list_topics(timeout=10).topics):
            return
        time.sleep(0.5)
    raise RuntimeError(f"topics still being deleted after {deadline:.0f}s: {sorted(names)}")


def prepare(options: StackOptions, env: dict[str, str], kafka: KafkaSettings) -> None:
    """Topics (in the run's namespace), schema and demo profiles, before any service starts."""
    pipeline = load_pipeline_config(load(PipelineConfigSettings).config)
    topics = topics_for(options.topics_prefix)
    specs = [*topics.fixed(), *(topics.emails(name) for name in sorted(pipeline.campaigns))]
    ensure_topics(make_admin(kafka), specs)
    engine = make_engine(load(DatabaseSettings, {"url": SecretStr(env["TRIGGERLINE_DB_URL"])}))
    upgrade(engine)
    seed_demo_profiles(engine, options.profiles)
    engine.dispose()


class LocalStack:
    """The running children, started in dependency order and stopped in reverse."""

    def __init__(self, options: StackOptions, env: dict[str, str]) -> None:
        self.options = options
        self.env = env
        self.children: list[ServiceProcess] = []

    def _start(self, command: str, *args: str, ready_url: str | None = None) -> ServiceProcess:
        return self.start_child(command, *args, ready_url=ready_url)

    def start_child(
        self,
        command: str,
        *args: str,
        ready_url: str | None = None,
        env: dict[str, str] | None = None,
        name: str | None = None,
    ) -> ServiceProcess:
        """Start one more child (a second processor, say) with `env` over the stack's own;
        `name` names its log file when several children run the same command."""
        arguments = [*args, *self.options.extra_args.get(command, ())]
        log_path = self.options.var / "logs" / f"{name or command}.log"
        child = ServiceProcess(command, arguments, {**self.env, **(env or {})}, log_path).start()
        self.children.append(child)
        if ready_url:
            wait_http(ready_url, 90, child)
        print(f"  started {name or command:10} (pid {child.process.pid if child.process else '?'})")
        return child

    def start(self) -> None:
        o = self.options
        ports = {**DEFAULT_PORTS, **o.ports}
        self._start("smtp-sink", "--port", str(ports["smtp"]), "--maildir", str(o.var / "mail"))
        generation = (
            ["--triggers", str(o.triggers), "--rate", str(o.rate), "--seed", str(o.seed),
             "--profiles", str(o.profiles), "--visitors", str(o.visitors or max(o.profiles, 1))]
            if o.generate
            else ["--no-generate"]
        )  # fmt: skip
        self._start(
            "simulator", *generation, ready_url=f"http://127.0.0.1:{ports['simulator']}/healthz"
        )
        self._start("auth", ready_url=f"http://127.0.0.1:{ports['auth']}/readyz")
        self._start("feedback", ready_url=f"http://127.0.0.1:{ports['feedback_health']}/readyz")
        self._start("processor", ready_url=f"http://127.0.0.1:{ports['processor']}/readyz")
        self._start("mailer", ready_url=f"http://127.0.0.1:{ports['mailer']}/readyz")
        self._start("fetcher", ready_url=f"http://127.0.0.1:{ports['fetcher']}/healthz")

    def dead(self) -> list[ServiceProcess]:
        return [child for child in self.children if not child.alive]

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


def simulator_stats(port: int) -> dict[str, object]:
    response = requests.get(f"http://127.0.0.1:{port}/simulator/stats", timeout=5)
    response.raise_for_status()
    stats: dict[str, object] = response.json()
    return stats


def run(options: StackOptions) -> int:
    kafka = load(KafkaSettings)
    pipeline = load_pipeline_config(load(PipelineConfigSettings).config)
    campaigns = sorted(pipeline.campaigns)
    options.var.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    env = local_environment(options, run_id)
    print(f"Triggerline local stack (run {run_id}); logs in {options.var / 'logs'}")
    if options.fresh:
        print("  resetting the local topics, groups and state")
        reset_local_state(kafka, options, campaigns)
    prepare(options, env, kafka)
    print(f"  seeded {options.profiles} demo profiles")
    tally = OutcomeTally(kafka)
    stack = LocalStack(options, env)
    stopping = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    code = 0
    try:
        stack.start()
        print(f"  emails arrive as .eml files in {options.var / 'mail'}")
        print(f"  unsubscribe links are served at {env['TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL']}")
        if options.triggers:
            print(f"  processing {options.triggers} triggers...")
        else:
            print("  running until Ctrl-C")
        last_report = 0.0
        while not stopping:
            tally.poll(0.5)
            if dead := stack.dead():
                names = ", ".join(child.command for child in dead)
                print(f"stack: {names} stopped unexpectedly:\n{dead[0].tail()}", file=sys.stderr)
                code = 1
                break
            if time.monotonic() - last_report > 5:
                last_report = time.monotonic()
                print(f"  {tally.total} outcomes so far: {dict(tally.counts)}")
            if options.triggers:
                stats = simulator_stats(options.ports["simulator"])
                if stats.get("done") and tally.total >= int(str(stats.get("emitted", 0))):
                    break
                if time.monotonic() - started > options.timeout:
                    print(f"stack: timed out after {options.timeout:.0f}s", file=sys.stderr)
                    code = 1
                    break
    finally:
        elapsed = time.monotonic() - started
        print("  stopping the stack...")
        stack.stop()
        tally.poll(1.0)
        print(f"\nOutcomes after {elapsed:.1f}s:\n{tally.summary()}")
        mails = list((options.var / "mail").glob("*.eml"))
        print(f"\n{len(mails)} emails in {options.var / 'mail'}")
        tally.close()
    return code


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="triggerline stack", description=__doc__)
    parser.add_argument(
        "--triggers", type=int, default=0, help="emit this many triggers, then stop (0: run)"
    )
    parser.add_argument("--rate", type=float, default=20.0, help="triggers per second")
    parser.add_argument("--profiles", type=int, default=1000, help="demo profiles to seed")
    parser.add_argument("--seed", type=int, default=None, help="generator seed (default: random)")
    parser.add_argument("--var", type=Path, default=REPO_ROOT / "var", help="state and mail folder")
    parser.add_argument("--timeout", type=float, default=600.0, help="finite runs give up after")
    parser.add_argument("--keep-state", action="store_true", help="do not reset before starting")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    options = StackOptions(
        triggers=args.triggers,
        rate=args.rate,
        profiles=args.profiles,
        seed=args.seed if args.seed is not None else int(time.time()),
        var=args.var.resolve(),
        timeout=args.timeout,
        fresh=not args.keep_state,
    )
    return run(options)

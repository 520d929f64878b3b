"""`triggerline stack`: the whole local stack, from simulated upstream to `.eml` files.

Starts the SMTP sink, the simulator (upstream pipeline + IMS), auth, the processor, the mailer
and the fetcher as child processes on loopback, then either runs until Ctrl-C or, with
`--triggers N`, until every trigger has an outcome, and prints the outcome summary. Each run
starts clean: it drops its own topics, consumer groups and local state first, so a second run
is not all duplicates of the first.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
import uuid
from pathlib import Path
from types import FrameType

import requests

from services.common.pipeline_config import load_pipeline_config
from services.common.settings import REPO_ROOT, KafkaSettings, PipelineConfigSettings, load
from services.ops.outcome_tally import OutcomeTally
from services.ops.processes import ServiceProcess, wait_http
from services.ops.stack_environment import DEFAULT_PORTS, StackOptions, local_environment
from services.ops.stack_setup import prepare, reset_local_state


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

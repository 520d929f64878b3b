"""The whole local stack in a namespace of its own, driven from outside: the e2e benchmark's and
the chaos suite's harness.

`triggerline stack`'s own parts start and stop the processes (services/ops/stack.py and
processes.py); this adds what a measurement needs around them: one distinct shopper per trigger
(so every email names its trigger), the SMTP sink's journal and fault controls, the simulator's
generation schedule, more processors, and cleanup of the run's topics.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.common import ROOT, free_port
from services.common.kafka import make_admin
from services.common.settings import KafkaSettings, load
from services.common.topics import Topics, topics_for
from services.ops.processes import ServiceProcess, wait_http
from services.ops.stack import LocalStack
from services.ops.stack_environment import DEFAULT_PORTS, StackOptions, local_environment
from services.ops.stack_setup import prepare

SERVICES_WITH_PORTS = ("simulator", "auth", "fetcher", "mailer", "processor", "smtp")
KAFKA_HOME = Path(os.environ.get("TRIGGERLINE_KAFKA_HOME", ROOT / "deploy" / "local" / ".kafka"))


@dataclass(frozen=True)
class RunConfig:
    """What differs between the benchmark and the chaos runs."""

    shoppers: int  # distinct shoppers, so at most this many triggers, each its own recipient
    var: Path
    bootstrap: str
    database_url: str | None = None  # None: the stack's SQLite file under `var`
    env: dict[str, str] = field(default_factory=dict)  # more settings for every child
    seed: int = 1


def distinct_ports(count: int) -> list[int]:
    """`count` different loopback ports nobody listens on (all held open while choosing, so
    the system cannot hand out one twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def local_broker_pid() -> int | None:
    """The pid of the broker `deploy/local/kafka.sh` started, if it runs."""
    try:
        pid = int((KAFKA_HOME / "kafka.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


class Pipeline:
    """One run's stack, simulator schedule and SMTP sink, under its own topic prefix."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.run_id = uuid.uuid4().hex[:8]
        self.prefix = f"pipeline-{self.run_id}."
        self.topics: Topics = topics_for(self.prefix)
        self.journal = config.var / "sink-journal.tsv"
        names = sorted({*SERVICES_WITH_PORTS, *DEFAULT_PORTS, "sink_control"})
        ports = dict(zip(names, distinct_ports(len(names)), strict=True))
        self.sink_control = ports.pop("sink_control")
        self.kafka = load(KafkaSettings, {"bootstrap_servers": config.bootstrap})
        self.options = StackOptions(
            triggers=0,
            rate=0,
            profiles=config.shoppers,
            seed=config.seed,
            var=config.var,
            timeout=0,
            fresh=False,
            ports=ports,
            processor_app_id=f"pipeline-{self.run_id}-processor",
            topics_prefix=self.prefix,
            generate=False,
            visitors=config.shoppers,
            extra_args={
                "smtp-sink": (
                    *("--maildir", ""),  # no .eml files: the journal records every message
                    *("--journal", str(self.journal)),
                    *("--control-port", str(self.sink_control)),
                )
            },
        )
        env = local_environment(self.options, self.run_id)
        env.update(
            {
                "TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS": config.bootstrap,
                "TRIGGERLINE_PROCESSOR_AUTO_OFFSET_RESET": "earliest",
                # Names of our own, so nothing else on the broker shares a group or fences us.
                "TRIGGERLINE_MAILER_GROUP_ID": f"{self.prefix}mailer",
                "TRIGGERLINE_FETCHER_TRANSACTIONAL_ID_PREFIX": f"{self.prefix}fetcher",
                # Every trigger a cart, browse or search abandonment of a shopper of its own:
                # each must end in exactly one email (purchases only cancel, so none here).
                "TRIGGERLINE_SIMULATOR_DISTINCT_VISITORS": "true",
                "TRIGGERLINE_SIMULATOR_VISITORS": str(config.shoppers),
                "TRIGGERLINE_SIMULATOR_PROFILES": str(config.shoppers),
                "TRIGGERLINE_SIMULATOR_PURCHASE_WEIGHT": "0",
                "TRIGGERLINE_SIMULATOR_RETENTION_MESSAGES": str(max(100_000, config.shoppers)),
            }
        )
        if config.database_url:
            env["TRIGGERLINE_DB_URL"] = config.database_url
        env.update(config.env)
        self.env = env
        self.stack = LocalStack(self.options, env)
        self.processors: list[ServiceProcess] = []
        self.retired: list[ServiceProcess] = []  # stopped on purpose (scale-in)

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Topics, schema, one profile per shopper, then every service (one processor)."""
        self.config.var.mkdir(parents=True, exist_ok=True)
        prepare(self.options, self.env, self.kafka)
        self.stack.start()
        self.processors = [c for c in self.stack.children if c.command == "processor"]

    def stop(self) -> None:
        self.stack.stop()

    def delete_topics(self) -> None:
        """Leave the shared broker as we found it: drop every topic of this run's namespace."""
        admin = make_admin(self.kafka)
        prefixes = (self.prefix, self.options.processor_app_id)
        ours = [n for n in admin.list_topics(timeout=30).topics if n.startswith(prefixes)]
        if ours:
            for future in admin.delete_topics(ours, operation_timeout=60).values():
                future.exception()  # wait; a topic already gone is fine

    def child(self, name: str) -> ServiceProcess:
        """The running child of that command (the first processor for `processor`)."""
        for child in self.stack.children:
            if child.command == name and child not in self.retired:
                return child
        raise KeyError(name)

    def add_processor(self) -> ServiceProcess:
        """One more processor in the same group: its own web port and state directory."""
        number = len(self.processors) + 1
        port = free_port()
        process = self.stack.start_child(
            "processor",
            env={
                "TRIGGERLINE_PROCESSOR_WEB_PORT": str(port),
                "TRIGGERLINE_PROCESSOR_DATA_DIR": str(self.config.var / f"processor-{number}"),
            },
            name=f"processor-{number}",
            ready_url=f"http://127.0.0.1:{port}/readyz",
        )
        self.processors.append(process)
        return process

    def retire_processor(self) -> ServiceProcess:
        """Stop the newest live processor gracefully (scale-in)."""
        live = [p for p in self.processors if p.alive and p not in self.retired]
        victim = live[-1]
        victim.stop()
        self.retired.append(victim)
        return victim

    def restart(self, child: ServiceProcess, ready_url: str | None = None) -> None:
        """Start a killed or crashed child again, as a supervisor would."""
        child.start()
        if ready_url:
            wait_http(ready_url, 120, child)

    def labels(self) -> dict[str, ServiceProcess]:
        """Every child by a unique label (processor, processor-2...): for CPU and RSS."""
        labels: dict[str, ServiceProcess] = {}
        for child in self.stack.children:
            label = child.log_path.stem
            labels[label] = child
        return labels

    # -- the simulator's schedule -------------------------------------------------------------

    def _simulator(self, path: str) -> str:
        return f"http://127.0.0.1:{self.options.ports['simulator']}{path}"

    def generate(self, triggers: int, rate: float) -> None:
        """Ask the simulator for `triggers` more envelopes at `rate` per second (0: at once)."""
        reply = requests.post(
            self._simulator("/simulator/generate"),
            json={"triggers": triggers, "rate": rate},
            timeout=10,
        )
        reply.raise_for_status()

    def simulator_stats(self) -> dict[str, Any]:
        reply = requests.get(self._simulator("/simulator/stats"), timeout=10)
        reply.raise_for_status()
        stats: dict[str, Any] = reply.json()
        return stats

    def wait_generated(self, count: int, deadline: float) -> int:
        """Wait until the simulator has generated `count` envelopes in all; returns how many."""
        end = time.monotonic() + deadline
        while True:
            generated = int(self.simulator_stats()["generated"])
            if generated >= count or time.monotonic() > end:
                return generated
            time.sleep(0.05)

    # -- the SMTP sink ------------------------------------------------------------------------

    def _sink(self, path: str) -> str:
        return f"http://127.0.0.1:{self.sink_control}{path}"

    def sink_counts(self) -> dict[str, int]:
        reply = requests.get(self._sink("/stats"), timeout=10)
        reply.raise_for_status()
        counts: dict[str, int] = reply.json()
        return counts

    def sink_fault(self, stage: str, reply: str | None = None, **limits: float) -> None:
        """Every recipient, at `stage`, until `seconds` or `times` (see sink_control.py)."""
        answer = requests.post(
            self._sink("/faults"),
            json={"recipient": "*", "stage": stage, "reply": reply, **limits},
            timeout=10,
        )
        answer.raise_for_status()

    def wait_delivered(self, count: int, deadline: float, settle: float = 0.0) -> int:
        """Wait until the sink accepted `count` messages in all (or the deadline); then wait
        `settle` more seconds so a duplicate would arrive too. Returns the count."""
        end = time.monotonic() + deadline
        accepted = self.sink_counts()["accepted"]
        while accepted < count and time.monotonic() < end:
            if dead := [c for c in self.stack.dead() if c not in self.retired]:
                raise RuntimeError(f"{dead[0].log_path.stem} died:\n{dead[0].tail()}")
            time.sleep(0.2)
            accepted = self.sink_counts()["accepted"]
        if settle:
            time.sleep(settle)
            accepted = self.sink_counts()["accepted"]
        return accepted

"""The whole pipeline at 1M/h under kill -9 of every service, a broker restart, a database
outage and SMTP refusals, drops and losses: no trigger lost, no email sent twice, no retry left
over (after the operator's resend of the `unknown` deliveries the relay never received).

Marked `pipeline_chaos`: the suite's own pytest run leaves it out (it needs the machine to itself
for minutes), and `make test` runs it afterwards on its own with 10,000 triggers (about 36 s of
flow, every fault once, 15 s outages). `make chaos` runs 50,000 triggers (3 minutes of flow, 60 s
outages, 25 kills) and writes bench/results/chaos-50000.json; `CHAOS_SEED=S` replays a drawn plan
(TRIGGERLINE_CHAOS_TRIGGERS, TRIGGERLINE_CHAOS_SEED and TRIGGERLINE_CHAOS_RESULT underneath).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.pipeline_chaos import ChaosPlan, run_chaos, verdict


@pytest.mark.pipeline_chaos
@pytest.mark.timeout(3600)
def test_whole_pipeline_under_faults_loses_and_repeats_nothing(
    kafka_bootstrap: str,
    chaos_database_url: str,
    local_broker: Callable[[str], None],
    local_database: Callable[[str], None],
    tmp_path: Path,
) -> None:
    triggers = int(os.environ.get("TRIGGERLINE_CHAOS_TRIGGERS", "10000"))
    seed = os.environ.get("TRIGGERLINE_CHAOS_SEED")
    plan = ChaosPlan.drawn(triggers, int(seed) if seed else None)
    report = run_chaos(
        plan,
        tmp_path / "stack",
        kafka_bootstrap,
        chaos_database_url,
        broker=local_broker,
        database=local_database,
        deadline=triggers / 278 + 300,
    )
    result = Path(os.environ.get("TRIGGERLINE_CHAOS_RESULT") or tmp_path / "chaos.json")
    report.write(result)
    document = report.document()
    problems = verdict(document)
    assert not problems, (
        f"{problems}; seed {plan.seed}; report {result}\n"
        f"service logs: {tmp_path / 'stack' / 'logs'} (kept with --basetemp=DIR)\n"
        f"outcomes: {document['reconciliation']['outcomes']}\nrestarts: {document['restarts']}"
    )

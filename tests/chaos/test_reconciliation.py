"""The chaos suite's verdict has teeth: a recorded sink journal with one email sent twice, or
one missing, fails it. (The mailer is not broken on purpose for this: the verdict is shown on
the sink's own record of a run, with a duplicate and a gap put in.)"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.pipeline.accounting import reconcile
from bench.pipeline.records import Journey, read_journal
from services.common.message_ids import message_digest
from services.simulator.population import shopper
from tests.chaos.pipeline_chaos import verdict

TRIGGERS = 50


def _journeys() -> list[Journey]:
    """What `outcomes` and the email requests said: each trigger sent once."""
    return [
        Journey(
            f"m{i}",
            recipient=shopper(i).email,
            profile_id=shopper(i).profile_id,
            idempotency_key=f"key-{i}",
            outcomes=Counter({"sent": 1}),
        )
        for i in range(TRIGGERS)
    ]


def _journal(path: Path, numbers: list[int]) -> Path:
    """A sink journal as `triggerline smtp-sink --journal` writes it."""
    lines = [
        f"{1_800_000_000_000 + n}.000\t<{message_digest(f'key-{i}')}@triggerline.invalid>\t"
        f"{shopper(i).email}\t0\n"
        for n, i in enumerate(numbers)
    ]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _document(path: Path) -> dict[str, Any]:
    counts = reconcile(0, TRIGGERS, read_journal(path), _journeys())
    return {
        "reconciliation": asdict(counts),
        "retry_topics_drained": True,
        "retry_topic_lag": {},
    }


def test_a_clean_journal_passes(tmp_path: Path) -> None:
    assert verdict(_document(_journal(tmp_path / "j.tsv", list(range(TRIGGERS))))) == []


def test_an_email_sent_twice_fails_by_recipient_and_by_message_id(tmp_path: Path) -> None:
    journal = _journal(tmp_path / "j.tsv", [*range(TRIGGERS), 17])
    assert verdict(_document(journal)) == ["duplicate_emails: 1", "duplicate_message_ids: 1"]


def test_a_missing_email_fails_as_lost(tmp_path: Path) -> None:
    journal = _journal(tmp_path / "j.tsv", [i for i in range(TRIGGERS) if i != 23])
    assert verdict(_document(journal)) == ["lost: 1"]


def test_a_trigger_without_outcome_and_a_retry_left_over_fail(tmp_path: Path) -> None:
    document = _document(_journal(tmp_path / "j.tsv", list(range(TRIGGERS))))
    document["reconciliation"]["without_outcome"] = 1
    document["retry_topics_drained"] = False
    document["retry_topic_lag"] = {"emails.retry.30s": 2}
    assert verdict(document) == [
        "without_outcome: 1",
        "retry topics not drained: {'emails.retry.30s': 2}",
    ]


def test_a_trigger_that_ended_before_its_profile_was_resolved_is_found_by_its_raw_key(
    tmp_path: Path,
) -> None:
    journeys = _journeys()
    journeys[31] = Journey(
        "m31", raw=1.0, raw_key=shopper(31).mcid, outcomes=Counter({"failed:producer": 1})
    )
    journal = _journal(tmp_path / "j.tsv", [i for i in range(TRIGGERS) if i != 31])
    counts = reconcile(0, TRIGGERS, read_journal(journal), journeys)
    assert (counts.lost, counts.without_outcome) == (1, 0)
    assert counts.outcomes["failed:producer"] == 1
    assert counts.lost_reached["31"].startswith("raw; messageId m31")


def test_an_email_only_trigger_lost_in_stage_1_is_found_by_the_address_in_its_envelope(
    tmp_path: Path,
) -> None:
    journeys = _journeys()
    journeys[7] = Journey("m7", raw=1.0, raw_key="m7", raw_email=shopper(7).email)
    journal = _journal(tmp_path / "j.tsv", [i for i in range(TRIGGERS) if i != 7])
    counts = reconcile(0, TRIGGERS, read_journal(journal), journeys)
    assert (counts.lost, counts.without_outcome) == (1, 1)
    assert counts.lost_reached["7"].startswith("raw; messageId m7")


def test_an_unknown_resent_by_the_operator_is_one_outcome_any_other_pair_conflicts(
    tmp_path: Path,
) -> None:
    journeys = _journeys()
    journeys[5].outcomes = Counter({"unknown:smtp_unknown": 1, "sent": 1})
    journeys[6].outcomes = Counter({"unknown:holder_lost": 1, "failed:smtp_rejected": 1})
    journal = _journal(tmp_path / "j.tsv", list(range(TRIGGERS)))
    counts = reconcile(0, TRIGGERS, read_journal(journal), journeys)
    assert (counts.resent_after_unknown, counts.conflicting_outcomes) == (1, 1)
    assert verdict({**_document(journal), "reconciliation": asdict(counts)}) == [
        "conflicting_outcomes: 1"
    ]


def test_an_upstream_message_the_fetcher_wrote_twice_fails_even_with_one_email(
    tmp_path: Path,
) -> None:
    """The processor calls the second copy a repeat (`duplicate:repeat_message`), so one email
    goes out; the verdict still names the fetcher's fault, not just a conflicting outcome."""
    journeys = _journeys()
    journeys[3].rewritten = 1
    journeys[3].outcomes = Counter({"sent": 1, "duplicate:repeat_message": 1})
    journal = _journal(tmp_path / "j.tsv", list(range(TRIGGERS)))
    counts = reconcile(0, TRIGGERS, read_journal(journal), journeys)
    assert not counts.exactly_once
    assert verdict({**_document(journal), "reconciliation": asdict(counts)}) == [
        "rewritten_upstream: 1",
        "conflicting_outcomes: 1",
    ]

"""A failing step of a poll: an outage holds its requests, a bug fails them, no one else."""

from __future__ import annotations

from services.common.errors import TransientFailure
from services.mailer.slots import Guarded, Slot
from tests.unit.mailer.helpers import request


def test_an_outage_holds_the_requests_of_the_step_only() -> None:
    first, second = Slot(request(idempotency_key="a")), Slot(request(idempotency_key="b"))
    with Guarded([first]):
        raise TransientFailure("database is down")
    assert first.report is not None and first.report.hold == "database: database is down"
    assert second.report is None


def test_a_bug_fails_and_dead_letters_the_requests_of_the_step() -> None:
    slot = Slot(request())
    with Guarded([slot]):
        raise KeyError("x")
    assert slot.report is not None and slot.report.dead_letter == "internal_error"
    assert slot.report.outcome is not None and slot.report.outcome.label == "failed"


def test_a_step_that_works_leaves_the_report_to_it() -> None:
    slot = Slot(request())
    with Guarded([slot]):
        pass
    assert slot.report is None

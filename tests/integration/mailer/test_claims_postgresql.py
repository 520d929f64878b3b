"""The claim and suppression tests again, on PostgreSQL (`make postgres-up`).

Each test gets a database of its own (the `postgres_engine` fixture), on the local server named
by TRIGGERLINE_TEST_POSTGRES_URL. An unreachable server fails the tests and names the command.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.unit.mailer.test_claims import (  # the same assertions, another database
    test_a_batch_claim_decides_every_key_on_its_own_row,
    test_a_released_claim_can_be_claimed_again_at_once,
    test_a_sent_key_is_never_claimed_again,
    test_a_stale_claim_is_taken_over_after_the_timeout,
    test_first_claim_wins_and_a_live_holder_blocks_others,
    test_racing_batch_claims_claim_each_key_exactly_once,
    test_racing_instances_claim_each_key_exactly_once,
    test_release_by_a_non_holder_does_nothing,
    test_sent_marks_from_many_threads_each_reach_their_row,
    test_settling_a_new_key_records_it_and_a_sent_key_keeps_its_status,
    test_settling_a_pending_key_settles_it,
    test_suppressions_are_read_for_a_whole_batch_at_once,
    test_suppressions_ignore_case_and_keep_the_first_reason,
)

__all__ = [
    "test_a_batch_claim_decides_every_key_on_its_own_row",
    "test_a_released_claim_can_be_claimed_again_at_once",
    "test_a_sent_key_is_never_claimed_again",
    "test_a_stale_claim_is_taken_over_after_the_timeout",
    "test_first_claim_wins_and_a_live_holder_blocks_others",
    "test_racing_batch_claims_claim_each_key_exactly_once",
    "test_racing_instances_claim_each_key_exactly_once",
    "test_release_by_a_non_holder_does_nothing",
    "test_sent_marks_from_many_threads_each_reach_their_row",
    "test_settling_a_new_key_records_it_and_a_sent_key_keeps_its_status",
    "test_settling_a_pending_key_settles_it",
    "test_suppressions_are_read_for_a_whole_batch_at_once",
    "test_suppressions_ignore_case_and_keep_the_first_reason",
]


@pytest.fixture
def engine(postgres_engine: Engine) -> Engine:
    return postgres_engine

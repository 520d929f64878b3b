"""A relay's Message-ID and the key it was derived from name the same message."""

from __future__ import annotations

import pytest

from services.common.message_ids import digest_of, message_digest
from services.mailer.message import message_id


def test_the_digest_is_the_message_ids_left_hand_side_whatever_the_domain() -> None:
    digest = message_digest("cart:P000000042:T-1")
    assert len(digest) == 40 and int(digest, 16) >= 0
    assert message_id("cart:P000000042:T-1", "mail.example.com") == f"<{digest}@mail.example.com>"
    assert message_digest("cart:P000000042:T-2") != digest


@pytest.mark.parametrize(
    "written", ["<AB12@mail.example.com>", "ab12@relay", " <ab12> ", "AB12", "ab12\n"]
)
def test_digest_of_reads_a_message_id_as_a_relay_log_writes_it(written: str) -> None:
    assert digest_of(written) == "ab12"

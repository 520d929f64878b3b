"""The SMTP sink as a process is driven over HTTP: faults for a while, counts, a journal."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

import pytest
import requests

from services.simulator.sink_control import serve_control
from services.simulator.sink_faults import Fault
from services.simulator.smtp_sink import SmtpSink, free_port


def _send(port: int, recipient: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.sendmail("a@example.com", [recipient], f"Message-ID: <{recipient}>\r\n\r\nhi\r\n")


def test_a_timed_fault_refuses_then_ends_and_the_journal_records_each_message(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.tsv"
    with SmtpSink(journal=journal, keep=False) as sink:
        control = serve_control(sink, free_port())
        base = f"http://127.0.0.1:{control.server_address[1]}"
        try:
            fault = {"stage": "rcpt", "reply": "451 4.3.0 Try again later", "seconds": 0.5}
            assert requests.post(f"{base}/faults", json=fault, timeout=5).status_code == 200
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                _send(sink.port, "one@example.com")
            time.sleep(0.6)  # a sleep: the fault is timed (0.5 s) and must run out on its own
            _send(sink.port, "two@example.com")
            counts = requests.get(f"{base}/stats", timeout=5).json()
            assert counts["accepted"] == 1 and counts["dropped"] == 0
            bad = requests.post(f"{base}/faults", json={"stage": "nowhere"}, timeout=5)
            assert bad.status_code == 400
        finally:
            control.shutdown()
            control.server_close()
    lines = journal.read_text().splitlines()
    assert len(lines) == 1
    at, message_id, recipients, dropped = lines[0].split("\t")
    assert message_id == "<two@example.com>" and recipients == "two@example.com"
    assert dropped == "0" and abs(float(at) / 1000 - time.time()) < 30


@pytest.mark.parametrize(("stage", "kept"), [("drop", 1), ("lose", 0)])
def test_a_connection_closed_after_the_data_keeps_or_loses_the_message(
    tmp_path: Path, stage: str, kept: int
) -> None:
    """The client cannot tell the two apart (no reply after its final dot); only the journal
    knows whether the message arrived."""
    journal = tmp_path / "journal.tsv"
    with SmtpSink(journal=journal, keep=False) as sink:
        sink.set_fault("*", Fault(stage, times=1))  # type: ignore[arg-type]
        with pytest.raises(smtplib.SMTPServerDisconnected):
            _send(sink.port, "gone@example.com")
        _send(sink.port, "next@example.com")
        assert sink.counts()["lost"] == 1 - kept
    lines = [line.split("\t") for line in journal.read_text().splitlines()]
    assert [(m, d) for _, m, _, d in lines] == [("<gone@example.com>", "1")] * kept + [
        ("<next@example.com>", "0")
    ]

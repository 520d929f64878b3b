"""Fault controls and counts of a running `triggerline smtp-sink`, over HTTP on loopback.

    GET    /stats    {"accepted": n, "dropped": n, "lost": n, "sessions": n}
    POST   /faults   {"recipient": "*", "stage": "rcpt", "reply": "451 4.3.0 Try again later",
                      "seconds": 60}   (also "delay" in seconds and "times")
    DELETE /faults   clear every fault

Chaos tests and benchmarks drive the sink process with it, as they would a real relay's
maintenance switch.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, get_args

from services.simulator.sink_faults import ANY, Fault, FaultStage
from services.simulator.smtp_sink import SmtpSink

_STAGES: tuple[str, ...] = get_args(FaultStage)


def fault_from(body: Any) -> tuple[str, Fault]:
    """The recipient and fault a request body describes; `ValueError` says what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    unknown = set(body) - {"recipient", "stage", "reply", "delay", "times", "seconds"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    stage = body.get("stage")
    if stage not in _STAGES:
        raise ValueError(f"stage must be one of {', '.join(_STAGES)}")
    reply, times, seconds = body.get("reply"), body.get("times"), body.get("seconds")
    delay = body.get("delay", 0.0)
    if reply is not None and not isinstance(reply, str):
        raise ValueError("reply must be a string such as '451 4.3.0 Try again later'")
    if times is not None and (not isinstance(times, int) or times < 0):
        raise ValueError("times must be a non-negative integer")
    for name, value in (("seconds", seconds), ("delay", delay)):
        if value is not None and (not isinstance(value, int | float) or value < 0):
            raise ValueError(f"{name} must be a non-negative number")
    recipient = str(body.get("recipient", ANY))
    return recipient, Fault(stage, reply=reply, delay=float(delay), times=times, seconds=seconds)


def serve_control(sink: SmtpSink, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve the controls of `sink` from a background thread; `shutdown()` the server to stop."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/stats":
                self._answer(404, {"error": "not_found"})
                return
            self._answer(200, sink.counts())

        def do_POST(self) -> None:
            if self.path != "/faults":
                self._answer(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                recipient, fault = fault_from(json.loads(self.rfile.read(length) or b"null"))
            except ValueError as exc:  # json.JSONDecodeError is a ValueError too
                self._answer(400, {"error": "bad_request", "message": str(exc)})
                return
            sink.set_fault(recipient, fault)
            self._answer(200, {"recipient": recipient, "stage": fault.stage})

        def do_DELETE(self) -> None:
            if self.path != "/faults":
                self._answer(404, {"error": "not_found"})
                return
            sink.clear_faults()
            self._answer(200, {"cleared": True})

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # one line per control request would drown the sink's own log

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="sink-control", daemon=True).start()
    return server

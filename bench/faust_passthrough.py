"""The framework's own ceiling: one faust agent that forwards every record, nothing else.

Run by bench/processor_throughput.py as a baseline beside the processor, with the processor's
broker and producer settings: what one worker could reach if a trigger cost no more than one
faust hop (the processor makes two hops and writes a changelog entry per trigger).

    python -m bench.faust_passthrough APP_ID BOOTSTRAP IN_TOPIC OUT_TOPIC DATA_DIR
"""

from __future__ import annotations

import sys
from typing import Any

import faust
from faust.worker import Worker

from services.common.logsetup import configure_logging
from services.processor.app import PRODUCER_LINGER_S, PRODUCER_MAX_BATCH_BYTES


def main(argv: list[str]) -> int:
    app_id, bootstrap, source, sink, data_dir = argv
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=data_dir,
        autodiscover=False,
        processing_guarantee="at_least_once",
        key_serializer="raw",
        value_serializer="raw",
        producer_linger=PRODUCER_LINGER_S,
        producer_max_batch_size=PRODUCER_MAX_BATCH_BYTES,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )
    inbound = app.topic(source, key_type=bytes, value_type=bytes)
    outbound = app.topic(sink, key_type=bytes, value_type=bytes)

    @app.agent(inbound, name="forward")  # type: ignore[misc]  # faust is untyped
    async def forward(stream: Any) -> None:
        async for event in stream.events():
            await outbound.send(key=event.key, value=event.value)

    # Logging as the processor sets it up: faust's own set-up leaves aiokafka's debug calls
    # building records that no handler prints (a tenth of a paced run's CPU).
    configure_logging("faust-baseline", "WARNING")
    Worker(app, loglevel="WARNING", override_logging=False, quiet=True).execute_from_commandline()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

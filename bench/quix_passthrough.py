"""Quix Streams' counterpart of `faust_passthrough`: one hop, optionally with per-record state.

Run by bench/engine_comparison.py with a Python that has Quix Streams (not a project
dependency). `stateful` decodes each envelope and checks and sets its messageId in RocksDB
state, the core of the processor's dedup, so the comparison includes state.

    python -m bench.quix_passthrough APP_ID BOOTSTRAP IN_TOPIC OUT_TOPIC DATA_DIR plain|stateful
"""

from __future__ import annotations

import sys
from typing import Any

from quixstreams import Application, State

from services.common.serde import envelope_serde


def main(argv: list[str]) -> int:
    app_id, bootstrap, source, sink, data_dir, mode = argv
    app = Application(
        broker_address=bootstrap,
        consumer_group=app_id,
        auto_offset_reset="earliest",
        state_dir=data_dir,
        processing_guarantee="at-least-once",
        loglevel="WARNING",
        producer_extra_config={"linger.ms": 5},  # as the processor's producer lingers
    )
    inbound = app.topic(source, key_deserializer="bytes", value_deserializer="bytes")
    outbound = app.topic(sink, key_serializer="bytes", value_serializer="bytes")
    frame = app.dataframe(inbound)
    if mode == "stateful":
        serde = envelope_serde()

        def remember(value: bytes, state: State) -> bytes:
            record: dict[str, Any] = serde.decode(value)
            message_id = record["pipelineMessage"]["header"]["messageId"]
            if state.get(message_id) is None:
                state.set(message_id, 1)
            return value

        frame = frame.apply(remember, stateful=True)
    frame.to_topic(outbound)
    app.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

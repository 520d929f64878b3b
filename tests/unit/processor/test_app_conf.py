"""The processor's faust App: consumer settings that bound how long a worker can sit idle."""

from __future__ import annotations

from services.common.settings import KafkaSettings
from services.processor.app import make_app
from services.processor.settings import ProcessorSettings


def test_topic_metadata_is_refreshed_within_seconds() -> None:
    """After a broker restart a rebalance can hand out an empty assignment (the broker does not
    list the topics yet); only a metadata refresh brings the partitions back. The chaos test
    saw aiokafka's default (300 s) leave 8,000 triggers waiting: the App must not keep it."""
    wiring = make_app(ProcessorSettings(store="memory"), KafkaSettings(), ["cart_abandonment"])
    assert wiring.app.conf.consumer_metadata_max_age_ms <= 10_000

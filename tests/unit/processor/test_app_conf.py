"""The processor's faust App: consumer settings that bound how long a worker can sit idle."""

from __future__ import annotations

from pydantic import SecretStr

from services.common.settings import KafkaSettings
from services.processor.app import broker_options, make_app
from services.processor.settings import ProcessorSettings


def test_topic_metadata_is_refreshed_within_seconds() -> None:
    """After a broker restart a rebalance can hand out an empty assignment (the broker does not
    list the topics yet); only a metadata refresh brings the partitions back. The chaos test
    saw aiokafka's default (300 s) leave 8,000 triggers waiting: the App must not keep it."""
    wiring = make_app(ProcessorSettings(store="memory"), KafkaSettings(), ["cart_abandonment"])
    assert wiring.app.conf.consumer_metadata_max_age_ms <= 10_000


def test_faust_reaches_the_brokers_the_other_clients_reach_with_the_same_credentials() -> None:
    """faust's broker settings come from the librdkafka mapping of every other client."""
    kafka = KafkaSettings(
        bootstrap_servers="kafka-0:9093, kafka-1:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="processor",
        sasl_password=SecretStr("s3cret"),
    )
    options = broker_options(kafka)
    assert options["broker"] == ["kafka://kafka-0:9093", "kafka://kafka-1:9093"]
    credentials = options["broker_credentials"]
    assert (credentials.username, credentials.password) == ("processor", "s3cret")
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.ssl_context is not None
    assert broker_options(KafkaSettings())["broker_credentials"] is None

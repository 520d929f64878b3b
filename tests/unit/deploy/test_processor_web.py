"""The processor's web server serves health, readiness and metrics, never faust's table pages."""

from __future__ import annotations

from services.common.settings import KafkaSettings
from services.processor.app import make_app
from services.processor.settings import ProcessorSettings


def test_faust_table_and_router_pages_are_off() -> None:
    wiring = make_app(ProcessorSettings(store="memory"), KafkaSettings(), ["cart_abandonment"])
    conf = wiring.app.conf
    assert conf.web_tables_enabled is False and conf.web_router_enabled is False
    assert conf.web_stats_enabled is False and conf.web_graph_enabled is False
    served = [str(bp) for _, bp in wiring.app.web.blueprints._enabled]
    assert not [bp for bp in served if "tables" in bp or "router" in bp], served

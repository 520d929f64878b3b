"""A PodMonitor per service, and alerts that read only metrics the code exports."""

from __future__ import annotations

import importlib
import re

import pytest
from prometheus_client import REGISTRY

from tests.unit.deploy.rendering import OVERLAY_NAMES, named, of_kind, pods, render

# Every module that registers metrics; importing them fills the default registry.
METRIC_MODULES = (
    "services.common.health",
    "services.auth.metrics",
    "services.fetcher.metrics",
    "services.processor.metrics",
    "services.mailer.metrics",
    "services.feedback.metrics",
    "services.ops.status",
)
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "delta", "deriv", "by",
    "without", "on", "ignoring", "and", "or", "unless", "bool", "absent", "time", "topk",
    "group_left", "group_right", "offset", "histogram_quantile", "clamp_min", "clamp_max",
}  # fmt: skip


def exported() -> set[str]:
    """Sample names the code exposes on /metrics (counters gain `_total`, and so on)."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    names: set[str] = set()
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: label matchers, ranges and groupings removed."""
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r'"[^"]*"', " ", expr)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {w for w in words if w not in PROMQL_WORDS}


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_service_is_scraped_on_its_metrics_port(overlay: str) -> None:
    objects = render(overlay)
    monitors = {
        m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: m
        for m in of_kind(objects, "PodMonitor")
    }
    services = {
        p.name: p for p in pods(objects) if p.workload["kind"] in ("Deployment", "StatefulSet")
    }
    assert set(monitors) == set(services)
    for name, monitor in monitors.items():
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert endpoint["path"] == "/metrics"
            assert endpoint["port"] in services[name].ports()


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_alerts_read_metrics_the_code_exports(overlay: str) -> None:
    rules = named(render(overlay), "PrometheusRule", "triggerline")["spec"]["groups"][0]["rules"]
    known = exported()
    alerts = {r["alert"]: metric_names(str(r["expr"])) for r in rules}
    for alert, names in alerts.items():
        assert names and names <= known, f"{alert}: {sorted(names - known)} are not exported"
    wanted = ["ConsumerLag", "DeadLetters", "FetcherNotReady", "TokenRefresh", "Smtp"]
    wanted += ["FeedbackPolicyBounces", "FeedbackComplaints"]
    for word in wanted:
        assert any(word in alert for alert in alerts), f"no alert on {word}"


def test_metric_names_parse_promql() -> None:
    expr = 'sum by (group) (rate(x_total{job="a"}[5m])) > 0 or min(y) < 3'
    assert metric_names(expr) == {"x_total", "y"}

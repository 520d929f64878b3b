"""The feedback service as rendered: its Services lead to the ports the process binds, the MX is
a load balancer of its own, and the Ingress serves one HTTPS path on the host every unsubscribe
link names, set per environment."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from services.feedback.settings import FeedbackSettings
from services.ops.manifests import K8S
from services.ops.rules.production import hosts, is_local
from tests.unit.deploy.rendering import OVERLAY_NAMES, Obj, named, of_kind, pods, render

FEEDBACK = "triggerline-feedback"
PER_ENVIRONMENT = ("TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL", "TRIGGERLINE_TOKENS_BOUNCE_DOMAIN")


def _settings(objects: list[Obj]) -> dict[str, str]:
    return dict(named(objects, "ConfigMap", "triggerline-settings")["data"])


def _bound(settings: dict[str, str], variable: str, field: str) -> str:
    return settings.get(variable, str(FeedbackSettings.model_fields[field].default))


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_services_lead_to_the_ports_the_process_binds_on_every_address(overlay: str) -> None:
    objects = render(overlay)
    settings = _settings(objects)
    pod = next(p for p in pods(objects) if p.name == FEEDBACK)
    ports = pod.ports()
    assert ports["public"] == int(_bound(settings, "TRIGGERLINE_FEEDBACK_PORT", "port"))
    assert ports["smtp"] == int(_bound(settings, "TRIGGERLINE_FEEDBACK_SMTP_PORT", "smtp_port"))
    for variable, field in (
        ("TRIGGERLINE_FEEDBACK_HOST", "host"),
        ("TRIGGERLINE_FEEDBACK_HEALTH_HOST", "health_host"),
        ("TRIGGERLINE_FEEDBACK_SMTP_HOST", "smtp_host"),
    ):
        # loopback by default: a Service, the kubelet and Prometheus would find nothing there
        assert _bound(settings, variable, field) == "0.0.0.0", variable  # noqa: S104
    assert pod.workload["spec"]["replicas"] >= 2, "one replica down must not stop either door"
    web = named(objects, "Service", FEEDBACK)["spec"]
    assert web.get("type", "ClusterIP") == "ClusterIP"
    assert web["ports"] == [{"name": "http", "port": 80, "targetPort": "public"}]
    mx = named(objects, "Service", "triggerline-feedback-mx")["spec"]
    assert mx["type"] == "LoadBalancer"
    assert mx["externalTrafficPolicy"] == "Local", "the MX policy judges the sender's address"
    assert mx["ports"] == [{"name": "smtp", "port": 25, "targetPort": "smtp"}]
    exposed = [
        s["metadata"]["name"]
        for s in of_kind(objects, "Service")
        if s["spec"].get("type") in ("LoadBalancer", "NodePort")
    ]
    assert exposed == ["triggerline-feedback-mx"], "only the MX leaves the cluster directly"


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_the_ingress_serves_the_unsubscribe_path_alone_over_https_on_the_links_host(
    overlay: str,
) -> None:
    objects = render(overlay)
    url = urlsplit(_settings(objects)["TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL"])
    assert url.scheme == "https", "RFC 8058 one-click unsubscribe needs https"
    assert url.path == "/unsubscribe", "the only route the feedback service serves"
    ingresses = of_kind(objects, "Ingress")
    assert [i["metadata"]["name"] for i in ingresses] == [FEEDBACK]
    spec = ingresses[0]["spec"]
    assert "defaultBackend" not in spec
    assert [rule["host"] for rule in spec["rules"]] == [url.hostname]
    assert [tls["hosts"] for tls in spec["tls"]] == [[url.hostname]]
    assert spec["tls"][0]["secretName"] == "triggerline-feedback-tls"
    backend = {"service": {"name": FEEDBACK, "port": {"name": "http"}}}
    assert spec["rules"][0]["http"]["paths"] == [
        {"path": url.path, "pathType": "Exact", "backend": backend}
    ]


def test_each_environment_names_its_own_unsubscribe_host_and_bounce_domain() -> None:
    seen: dict[str, list[str]] = {variable: [] for variable in PER_ENVIRONMENT}
    for overlay in OVERLAY_NAMES:
        own = (K8S / "overlays" / overlay / "settings.env").read_text(encoding="utf-8")
        settings = _settings(render(overlay))
        for variable in PER_ENVIRONMENT:
            assert f"\n{variable}=" in f"\n{own}", f"{overlay}: set {variable} in settings.env"
            value = settings[variable]
            assert not any(is_local(h) for h in hosts(value)), (overlay, variable)
            assert not value.rstrip("/").endswith(".invalid"), (overlay, variable)
            seen[variable].append(value)
        # one link base for everyone: the mailer reads the tokens part, not a setting of its own
        assert not any(name.startswith("TRIGGERLINE_MAILER_UNSUBSCRIBE") for name in settings)
    for variable, values in seen.items():
        assert len(set(values)) == len(values), f"{variable} is shared between environments"

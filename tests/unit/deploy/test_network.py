"""Who reaches what, computed from the rendered overlays' NetworkPolicies.

Each overlay's pods (their labels, namespace and named ports) are placed in a small model of the
cluster around them: Kafka brokers in the namespace TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS names,
KEDA, Prometheus, a Grafana beside it, the ingress controller, kube-dns, a stray pod in our
namespace, an intruder in another, the SMTP relay and database at the overlay's addresses, IMS,
the pipeline and mailbox providers' MTAs on the internet, and an internal HTTPS service. Every
flow is compared with the tables of what the system needs: anything more, or less, fails.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pytest

from tests.unit.deploy.network import Endpoint, reaches
from tests.unit.deploy.rendering import OVERLAY_NAMES, Obj, named, of_kind, pods, render

KAFKA_CLIENTS = {
    "triggerline-fetcher",
    "triggerline-processor",
    "triggerline-mailer",
    "triggerline-feedback",  # outcomes of unsubscribes, bounces and complaints
    "triggerline-status",
    "triggerline-replay",
}
DATABASE_CLIENTS = {
    "triggerline-processor",
    "triggerline-mailer",
    "triggerline-feedback",  # suppressions, events, dead letters
    "triggerline-db-migrate",
    "triggerline-replay",  # a re-drive of emails.dlq reopens delivery claims
}
METRICS = {
    "triggerline-auth": 7791,
    "triggerline-fetcher": 7781,
    "triggerline-processor": 6066,
    "triggerline-mailer": 7782,
    "triggerline-feedback": 7786,
    "triggerline-status": 7795,
}
FEEDBACK_PAGE, FEEDBACK_SMTP = 7785, 2526
# every port one of our pods listens on, probed on every pod whether it has it or not
SERVICE_PORTS = {*METRICS.values(), FEEDBACK_PAGE, FEEDBACK_SMTP}
PROBE_PORTS = [(53, "UDP"), (53, "TCP"), (25, "TCP"), (80, "TCP"), (443, "TCP"), (465, "TCP")]
PROBE_PORTS += [(587, "TCP"), (2525, "TCP"), (5432, "TCP"), (9092, "TCP"), (9093, "TCP")]


@dataclass(frozen=True)
class World:
    policies: list[Obj]
    namespaces: dict[str, dict[str, str]]
    app: dict[str, Endpoint]  # our pods by app.kubernetes.io/name
    others: dict[str, Endpoint]  # everything around them
    smtp_port: int


def _first_address(objects: list[Obj], policy: str) -> str:
    cidr = named(objects, "NetworkPolicy", policy)["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"]
    return str(ipaddress.ip_network(cidr)[0])


def world(overlay: str) -> World:
    objects = render(overlay)
    app_ns = of_kind(objects, "Namespace")[0]["metadata"]["name"]
    settings = named(objects, "ConfigMap", "triggerline-settings")["data"]
    kafka_ns = settings["TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS"].split(".")[1]
    names = [app_ns, kafka_ns, "keda", "monitoring", "ingress-nginx", "kube-system", "default"]
    namespaces = {n: {"kubernetes.io/metadata.name": n} for n in names}
    app = {
        pod.name: Endpoint(pod.name, f"10.244.0.{i + 10}", app_ns, pod.labels, pod.ports())
        for i, pod in enumerate(pods(objects))
    }
    broker_labels = {"strimzi.io/cluster": "triggerline", "strimzi.io/kind": "Kafka"}
    others = {
        "broker": Endpoint("broker", "10.244.9.1", kafka_ns, broker_labels, {"tls": 9093}),
        "keda": Endpoint("keda", "10.244.9.2", "keda", {"app": "keda-operator"}),
        "prometheus": Endpoint(
            "prometheus", "10.244.9.3", "monitoring", {"app.kubernetes.io/name": "prometheus"}
        ),
        "grafana": Endpoint(
            "grafana", "10.244.9.4", "monitoring", {"app.kubernetes.io/name": "grafana"}
        ),
        "ingress": Endpoint(
            "ingress", "10.244.9.8", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}
        ),
        "dns": Endpoint("dns", "10.244.9.5", "kube-system", {"k8s-app": "kube-dns"}),
        "intruder": Endpoint("intruder", "10.244.9.6", "default", {}),
        "stray": Endpoint("stray", "10.244.9.7", app_ns, {"run": "debug"}),
        "smtp": Endpoint("smtp", _first_address(objects, "triggerline-smtp")),
        "database": Endpoint("database", _first_address(objects, "triggerline-database")),
        # IMS, the pipeline, mailbox providers' MTAs: anything public
        "internet": Endpoint("internet", "52.94.0.10"),
        "internal": Endpoint("internal", "10.20.0.10"),  # an internal service on a private range
    }
    return World(
        of_kind(objects, "NetworkPolicy"),
        namespaces,
        app,
        others,
        int(settings["TRIGGERLINE_MAILER_SMTP_PORT"]),
    )


PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


def on_the_internet(endpoint: Endpoint) -> bool:
    address = ipaddress.ip_address(endpoint.ip)
    return not endpoint.is_pod and not any(address in network for network in PRIVATE)


def needed_egress(pod: str, cluster: World) -> set[tuple[str, int, str]]:
    """Where each of our pods must be able to go, and nowhere else (external peers)."""
    smtp_port = cluster.smtp_port
    flows = {("dns", 53, "UDP"), ("dns", 53, "TCP")}
    if pod in KAFKA_CLIENTS:
        flows.add(("broker", 9093, "TCP"))
    if pod in DATABASE_CLIENTS:
        flows.add(("database", 5432, "TCP"))
    if pod in ("triggerline-auth", "triggerline-fetcher"):
        # HTTPS to IMS and the pipeline: any public address (core policies know no names)
        flows |= {(n, 443, "TCP") for n, e in cluster.others.items() if on_the_internet(e)}
    if pod == "triggerline-mailer":
        flows.add(("smtp", smtp_port, "TCP"))
    return flows


def needed_ingress(cluster: World) -> set[tuple[str, str, int]]:
    """Who outside our pods must reach which of them, and nobody else: Prometheus each metrics
    port, the ingress controller the unsubscribe page, any public address (mailbox providers'
    MTAs, through the MX load balancer) the feedback service's SMTP listener."""
    flows = {("prometheus", name, port) for name, port in METRICS.items()}
    flows.add(("ingress", "triggerline-feedback", FEEDBACK_PAGE))
    flows |= {
        (name, "triggerline-feedback", FEEDBACK_SMTP)
        for name, endpoint in cluster.others.items()
        if on_the_internet(endpoint)
    }
    return flows


@pytest.fixture(scope="module", params=OVERLAY_NAMES)
def cluster(request: pytest.FixtureRequest) -> World:
    return world(request.param)


def test_the_default_deny_alone_isolates_every_pod_both_ways(cluster: World) -> None:
    deny = [p for p in cluster.policies if p["metadata"]["name"] == "triggerline-default-deny"]
    assert len(deny) == 1, "one default deny, whatever the other policies allow"
    dns = cluster.others["dns"]
    for pod in cluster.app.values():
        assert not reaches(deny, cluster.namespaces, pod, dns, 53, "UDP"), "egress is denied"
        assert not reaches(deny, cluster.namespaces, cluster.others["stray"], pod, 7791)


def test_the_overlay_has_every_workload_the_table_names(cluster: World) -> None:
    expected = KAFKA_CLIENTS | DATABASE_CLIENTS | set(METRICS)
    assert set(cluster.app) == expected


def test_each_pod_reaches_exactly_the_peers_it_needs(cluster: World) -> None:
    ports = [*PROBE_PORTS, (cluster.smtp_port, "TCP")]
    for name, pod in cluster.app.items():
        allowed = {
            (peer, port, protocol)
            for peer, endpoint in cluster.others.items()
            for port, protocol in ports
            if reaches(cluster.policies, cluster.namespaces, pod, endpoint, port, protocol)
        }
        assert allowed == needed_egress(name, cluster), name


def test_between_our_pods_only_the_fetcher_reaches_auth(cluster: World) -> None:
    allowed = {
        (source, target, port)
        for source, pod in cluster.app.items()
        for target, other in cluster.app.items()
        for port in {*other.ports.values(), *SERVICE_PORTS}
        if source != target and reaches(cluster.policies, cluster.namespaces, pod, other, port)
    }
    assert allowed == {("triggerline-fetcher", "triggerline-auth", 7791)}


def test_from_outside_only_the_needed_doors_open(cluster: World) -> None:
    allowed = {
        (source, target, port)
        for source, outsider in cluster.others.items()
        for target, pod in cluster.app.items()
        for port in {*pod.ports.values(), *SERVICE_PORTS}
        if reaches(cluster.policies, cluster.namespaces, outsider, pod, port)
    }
    needed = needed_ingress(cluster)
    assert allowed == needed, f"closed: {needed - allowed}; open too: {allowed - needed}"


def test_the_feedback_service_has_three_doors_each_for_its_own_callers(cluster: World) -> None:
    feedback = cluster.app["triggerline-feedback"]
    sources = {**cluster.others, **cluster.app}
    callers = {
        port: {
            name
            for name, source in sources.items()
            if reaches(cluster.policies, cluster.namespaces, source, feedback, port)
        }
        for port in (FEEDBACK_PAGE, FEEDBACK_SMTP, METRICS["triggerline-feedback"])
    }
    public = {n for n, e in cluster.others.items() if on_the_internet(e)}
    needed = {
        FEEDBACK_PAGE: {"ingress"},  # the page, only through the Ingress
        FEEDBACK_SMTP: public,  # bounces and complaints, never from inside the cluster
        METRICS["triggerline-feedback"]: {"prometheus"},  # health and metrics
    }
    for port, expected in needed.items():
        assert callers[port] == expected, f"port {port}: reached by {sorted(callers[port])}"
    auth = cluster.app["triggerline-auth"]
    assert not reaches(cluster.policies, cluster.namespaces, feedback, auth, 7791)


def test_the_brokers_accept_our_kafka_clients_and_keda_only(cluster: World) -> None:
    broker = cluster.others["broker"]
    sources = {**cluster.app, **{k: cluster.others[k] for k in ("keda", "intruder", "stray")}}
    allowed = {
        name
        for name, source in sources.items()
        if reaches(cluster.policies, cluster.namespaces, source, broker, 9093)
    }
    assert allowed == KAFKA_CLIENTS | {"keda"}


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_smtp_and_database_blocks_are_narrow(overlay: str) -> None:
    objects = render(overlay)
    for policy in ("triggerline-smtp", "triggerline-database"):
        for rule in named(objects, "NetworkPolicy", policy)["spec"]["egress"]:
            for peer in rule["to"]:
                network = ipaddress.ip_network(peer["ipBlock"]["cidr"])
                assert network.prefixlen >= 24, f"{policy}: {network} is wider than a /24"

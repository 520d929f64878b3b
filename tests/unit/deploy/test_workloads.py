"""Every pod of every rendered overlay: probes on the port the process binds, budgets,
restricted Pod Security, writable paths named, only its own secrets, and config that rolls it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.ops.manifests import K8S
from tests.unit.deploy.rendering import (
    OVERLAY_NAMES,
    Obj,
    Pod,
    environment,
    named,
    of_kind,
    pod_template,
    pods,
    render,
    render_dir,
)

# The port each process binds (its settings' defaults, unless the ConfigMap overrides them).
BINDS = {
    "triggerline-auth": ("TRIGGERLINE_AUTH_PORT", 7791),
    "triggerline-fetcher": ("TRIGGERLINE_FETCHER_MONITOR_SERVER_PORT", 7781),
    "triggerline-processor": ("TRIGGERLINE_PROCESSOR_WEB_PORT", 6066),
    "triggerline-mailer": ("TRIGGERLINE_MAILER_HEALTH_PORT", 7782),
    "triggerline-feedback": ("TRIGGERLINE_FEEDBACK_HEALTH_PORT", 7786),
    "triggerline-status": ("", 7795),  # `status --serve 7795` in its args
}
CA = "triggerline-cluster-ca-cert"
TOKENS = "triggerline-tokens"  # signs (mailer) and verifies (feedback) recipient tokens
SECRETS = {
    "triggerline-auth": {"triggerline-ims", "triggerline-auth-clients"},
    "triggerline-fetcher": {"triggerline-fetcher", "triggerline-kafka-fetcher", CA},
    "triggerline-processor": {"triggerline-db", "triggerline-kafka-processor", CA},
    "triggerline-mailer": {
        "triggerline-db",
        "triggerline-mailer",
        TOKENS,
        "triggerline-kafka-mailer",
        CA,
    },
    "triggerline-feedback": {
        "triggerline-db",
        TOKENS,
        "triggerline-kafka-feedback",
        CA,
        "triggerline-feedback-smtp-tls",  # the MX host's certificate, for STARTTLS
    },
    "triggerline-status": {"triggerline-kafka-ops", CA},
    "triggerline-replay": {"triggerline-kafka-ops", "triggerline-db", CA},
    "triggerline-db-migrate": {"triggerline-db"},
}
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
SCALED = {("StatefulSet", "triggerline-processor"), ("Deployment", "triggerline-mailer")}


def all_pods() -> list[tuple[str, Pod]]:
    """Every overlay's pods; one that does not render is reported by test_manifests instead
    of stopping the collection of every test here."""
    found = []
    for overlay in OVERLAY_NAMES:
        try:
            found += [(overlay, pod) for pod in pods(render(overlay))]
        except pytest.fail.Exception:
            continue
    return found


POD_CASES = all_pods()
POD_IDS = [f"{o}-{pod.name}" for o, pod in POD_CASES]
SERVICES = [(o, p) for o, p in POD_CASES if p.name in BINDS]


def _port(pod: Pod, port: int | str) -> int:
    ports = pod.ports()
    assert isinstance(port, int) or port in ports, f"{pod.name}: no container port {port!r}"
    return port if isinstance(port, int) else ports[port]


@pytest.mark.parametrize(("overlay", "pod"), SERVICES, ids=[f"{o}-{p.name}" for o, p in SERVICES])
def test_probes_ask_the_right_page_on_the_port_the_process_binds(overlay: str, pod: Pod) -> None:
    objects = render(overlay)
    container = pod.spec["containers"][0]
    variable, default = BINDS[pod.name]
    bound = int(environment(objects, container, "").get(variable, default))
    expected = {
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
        "startupProbe": "/healthz",
    }
    assert "livenessProbe" in container and "readinessProbe" in container
    for kind, path in expected.items():
        if kind not in container:
            continue
        probe = container[kind]
        assert "httpGet" in probe, f"{kind} must be an HTTP check of {path}"
        assert probe["httpGet"]["path"] == path
        assert _port(pod, probe["httpGet"]["port"]) == bound, f"{kind} port"
    assert pod.ports().get("http") == bound


@pytest.mark.parametrize(("overlay", "pod"), POD_CASES, ids=POD_IDS)
def test_pods_meet_the_restricted_pod_security_level(overlay: str, pod: Pod) -> None:
    spec = pod.spec
    assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    assert spec.get("automountServiceAccountToken") is False
    context = spec.get("securityContext", {})
    assert context.get("runAsNonRoot") is True and context.get("runAsUser", 0) != 0
    assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault"
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        assert kinds <= RESTRICTED_VOLUMES, f"volume {volume['name']}: {kinds}"
    for container in pod.containers():
        security = container.get("securityContext", {})
        assert security.get("allowPrivilegeEscalation") is False, container["name"]
        assert security.get("privileged") is not True
        assert security.get("capabilities", {}).get("drop") == ["ALL"], container["name"]
        assert not security.get("capabilities", {}).get("add")
        assert security.get("readOnlyRootFilesystem") is True
        assert not any(p.get("hostPort") for p in container.get("ports", []))
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{container['name']}: a read-only root needs a writable /tmp"
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


@pytest.mark.parametrize(("overlay", "pod"), POD_CASES, ids=POD_IDS)
def test_pods_reference_only_their_own_secrets(overlay: str, pod: Pod) -> None:
    used: set[str] = set()
    for container in pod.containers():
        for item in container.get("env", []):
            if "secretKeyRef" in item.get("valueFrom", {}):
                used.add(item["valueFrom"]["secretKeyRef"]["name"])
        used |= {s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s}
    for volume in pod.spec.get("volumes", []):
        if "secret" in volume:
            used.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                used.add(source["secret"]["name"])
    assert used <= SECRETS[pod.name], f"{pod.name} must not see {used - SECRETS[pod.name]}"


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_workloads_have_budgets_and_autoscaled_ones_no_replicas(overlay: str) -> None:
    objects = render(overlay)
    budgets = [
        b["spec"]["selector"]["matchLabels"] for b in of_kind(objects, "PodDisruptionBudget")
    ]
    for workload in objects:
        if workload["kind"] not in ("Deployment", "StatefulSet"):
            continue
        assert workload["spec"]["selector"]["matchLabels"] in budgets
        key = (workload["kind"], workload["metadata"]["name"])
        assert (key in SCALED) == ("replicas" not in workload["spec"]), (
            f"{key}: KEDA owns the replicas of autoscaled workloads, and only of those"
        )
    fetcher = named(objects, "StatefulSet", "triggerline-fetcher")
    env = environment(objects, fetcher["spec"]["template"]["spec"]["containers"][0], "")
    assert int(env["TRIGGERLINE_FETCHER_REPLICA_COUNT"]) == fetcher["spec"]["replicas"]


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_the_schema_is_migrated_once_by_a_job(overlay: str) -> None:
    objects = render(overlay)
    job = named(objects, "Job", "triggerline-db-migrate")
    assert pod_template(job)["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    for p in pods(objects):
        for container in p.spec["containers"]:
            env = environment(objects, container, "")
            if container["args"][0] == "mailer":
                assert env.get("TRIGGERLINE_MAILER_MIGRATE_ON_START") == "false"
            if container["args"][0] == "feedback":
                assert env.get("TRIGGERLINE_FEEDBACK_MIGRATE_ON_START") == "false"


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_the_replay_template_prints_its_plan_and_executes_only_when_asked(overlay: str) -> None:
    objects = render(overlay)
    cron = named(objects, "CronJob", "triggerline-replay")
    assert cron["spec"]["suspend"] is True
    script = pod_template(cron)["spec"]["containers"][0]["args"][0]
    assert '[ "$REPLAY_EXECUTE" = "yes" ]' in script
    assert "triggerline replay $REPLAY_ARGS --execute" in script
    assert script.count("--execute") == 1
    assert named(objects, "ConfigMap", "triggerline-replay")["data"]["REPLAY_EXECUTE"] == "no"


def _processor_template(tree: Path, overlay: str) -> Obj:
    objects = render_dir(tree / "overlays" / overlay)
    return pod_template(named(objects, "StatefulSet", "triggerline-processor"))


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_a_config_change_rolls_the_processor(overlay: str, tmp_path: Path) -> None:
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree, symlinks=True)
    before = _processor_template(tree, overlay)
    routing = next(iter((tree / "overlays" / overlay).rglob("pipeline.yaml")), None)
    routing = routing or tree / "pipeline" / "files" / "pipeline.yaml"
    routing.write_text(routing.read_text() + "\n# changed\n")
    after_routing = _processor_template(tree, overlay)
    assert after_routing != before, "a routing file change must change the pod template"
    settings = tree / "overlays" / overlay / "settings.env"
    settings.write_text(settings.read_text() + "TRIGGERLINE_LOG_LEVEL=DEBUG\n")
    assert _processor_template(tree, overlay) != after_routing, "so must a settings change"

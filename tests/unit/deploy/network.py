"""Kubernetes NetworkPolicy semantics, enough to say whether one endpoint reaches another.

Follows the API's rules: a pod is isolated for a direction once any policy of its namespace
selects it with that policy type; policies add up; `policyTypes` left empty defaults to Ingress,
plus Egress when the policy has egress rules; a rule without `to`/`from` matches every peer and
one without `ports` every port; named ports resolve on the destination pod; ipBlock matches
addresses (pod addresses included, the conservative reading).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace set) or an address outside the cluster (namespace empty)."""

    name: str
    ip: str
    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)  # named container ports

    @property
    def is_pod(self) -> bool:
        return bool(self.namespace)


def selector_matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector; `{}` matches everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def policy_types(policy: Obj) -> list[str]:
    spec = policy["spec"]
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def _peer_matches(
    peer: Obj, target: Endpoint, policy_namespace: str, namespaces: Mapping[str, Mapping[str, str]]
) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ipaddress.ip_address(target.ip)
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(e) for e in block.get("except") or [])
    if not target.is_pod:
        return False
    if "namespaceSelector" in peer:
        ns_labels = namespaces.get(target.namespace, {})
        if not selector_matches(peer["namespaceSelector"], ns_labels):
            return False
    elif target.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selector_matches(peer["podSelector"], target.labels)


def _port_matches(rule: Obj, destination: Endpoint, port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    for item in ports:
        if item.get("protocol", "TCP") != protocol:
            continue
        if "port" not in item:
            return True
        wanted = item["port"]
        if isinstance(wanted, str):
            if destination.ports.get(wanted) == port:
                return True
            continue
        if wanted <= port <= item.get("endPort", wanted):
            return True
    return False


def _selecting(policies: Iterable[Obj], pod: Endpoint, direction: str) -> list[Obj]:
    return [
        p
        for p in policies
        if p["metadata"].get("namespace") == pod.namespace
        and direction in policy_types(p)
        and selector_matches(p["spec"].get("podSelector"), pod.labels)
    ]


def _allowed_one_side(
    policies: Iterable[Obj],
    namespaces: Mapping[str, Mapping[str, str]],
    subject: Endpoint,
    peer: Endpoint,
    destination: Endpoint,
    port: int,
    protocol: str,
    direction: str,
) -> bool:
    if not subject.is_pod:
        return True  # outside the cluster: no policy applies there
    selecting = _selecting(policies, subject, direction)
    if not selecting:
        return True
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if peers and not any(
                _peer_matches(p, peer, subject.namespace, namespaces) for p in peers
            ):
                continue
            if _port_matches(rule, destination, port, protocol):
                return True
    return False


def reaches(
    policies: list[Obj],
    namespaces: Mapping[str, Mapping[str, str]],
    source: Endpoint,
    destination: Endpoint,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Whether `source` may open `port` on `destination`: its egress and the other's ingress."""
    egress = _allowed_one_side(
        policies, namespaces, source, destination, destination, port, protocol, "Egress"
    )
    ingress = _allowed_one_side(
        policies, namespaces, destination, source, destination, port, protocol, "Ingress"
    )
    return egress and ingress

"""Kubernetes NetworkPolicy semantics: may this endpoint open this connection to that one?

Each rule follows the API documentation in kubernetes/api networking/v1/types.go (v0.35.0, the
clusters' Kubernetes 1.35); the comments quote what they implement.

Endpoints are pods (from the built workloads) or addresses outside the pod network (the load
balancer, RDS, ElastiCache). Every endpoint has the network its address lies in, not one address:
with the AWS VPC CNI pods take their addresses from the VPC, and the managed services' addresses are
chosen by AWS. So an ipBlock decides a peer only when it covers all of that network (``Match.SURE``)
or can be said to touch it (``Match.MAYBE``); a required path must be open for sure, a forbidden one
must be closed even at maybe.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from misp_eks.validate.resources import Resource, selector_matches

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
INGRESS = "Ingress"
EGRESS = "Egress"
# kubernetes/api core/v1/well_known_labels.go LabelMetadataName: the API server puts it on every namespace.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


class Match(Enum):
    SURE = "sure"
    """ipBlocks match a pod never (their use for pod addresses is implementation-defined) and an
    external address only when the block, less its excepts, holds all of the address's network."""
    MAYBE = "maybe"
    """ipBlocks match any endpoint whose network they overlap beyond their excepts, pods included."""


@dataclass(frozen=True)
class Port:
    number: int
    protocol: str = "TCP"
    name: str = ""


@dataclass(frozen=True)
class Endpoint:
    """One side of a connection: a pod (``namespace`` set) or an address outside the pod network."""

    name: str
    network: Network
    namespace: str = ""
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    origin: str = ""

    @property
    def is_pod(self) -> bool:
        return bool(self.namespace)


@dataclass(frozen=True)
class Allowance:
    """Why a direction is open: not isolated, or the rules (policy, field) that admit the traffic."""

    isolated_by: tuple[str, ...]
    rules: tuple[tuple[Resource, str], ...]

    @property
    def allowed(self) -> bool:
        return not self.isolated_by or bool(self.rules)


def label_selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector: "An empty label selector matches all objects. A null label selector matches
    no objects." (k8s.io/apimachinery pkg/apis/meta/v1 types.go)."""
    if selector is None:
        return False
    if not isinstance(selector, dict):
        return False
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return True
    return selector_matches(selector, dict(labels))


def policy_types(policy: Resource) -> set[str]:
    """policyTypes: "If this field is not specified, it will default based on the existence of ingress or
    egress rules; policies that contain an egress section are assumed to affect egress, and all policies
    (whether or not they contain an ingress section) are assumed to affect ingress.\""""
    declared = policy.spec.get("policyTypes")
    if declared:
        return set(declared)
    return {INGRESS, EGRESS} if policy.spec.get("egress") else {INGRESS}


def selects(policy: Resource, pod: Endpoint) -> bool:
    """podSelector: "An empty selector matches all pods in the policy's namespace". The field is a struct,
    not a pointer (``PodSelector metav1.LabelSelector``): absent or null, it decodes to the empty selector."""
    selector = policy.spec.get("podSelector")
    return (
        pod.is_pod
        and policy.namespace == pod.namespace
        and label_selector_matches({} if selector is None else selector, pod.labels)
    )


def _block_matches(block: dict[str, Any], endpoint: Endpoint, match: Match) -> bool:
    """IPBlock: "The except entry describes CIDRs that should not be included within this rule.\""""
    try:
        cidr = ipaddress.ip_network(str(block.get("cidr")), strict=False)
        excepts = [ipaddress.ip_network(str(e), strict=False) for e in block.get("except") or []]
    except ValueError:
        return False  # the schema check reports a malformed CIDR
    net = endpoint.network
    excepts = [e for e in excepts if e.version == net.version]
    if cidr.version != net.version:
        return False
    if match is Match.SURE:
        inside = net.subnet_of(cidr)  # type: ignore[arg-type]  # same version, checked above
        return not endpoint.is_pod and inside and not any(net.overlaps(e) for e in excepts)
    return net.overlaps(cidr) and not any(net.subnet_of(e) for e in excepts)  # type: ignore[arg-type]


def peer_matches(peer: dict[str, Any], policy: Resource, endpoint: Endpoint, match: Match) -> bool:
    """NetworkPolicyPeer: podSelector alone selects pods "in the policy's own namespace"; with
    namespaceSelector "the pods matching podSelector in the Namespaces selected by NamespaceSelector";
    namespaceSelector alone "all pods in the namespaces"; ipBlock excludes the other two fields.
    All three are pointers with omitempty (``*metav1.LabelSelector``, ``*IPBlock``): null is absent."""
    block, namespaces, pods = peer.get("ipBlock"), peer.get("namespaceSelector"), peer.get("podSelector")
    if block is not None:
        return _block_matches(block, endpoint, match)
    if not endpoint.is_pod:
        return False
    if namespaces is not None:
        if not label_selector_matches(namespaces, endpoint.namespace_labels):
            return False
    elif endpoint.namespace != policy.namespace:
        return False
    if pods is not None:
        return label_selector_matches(pods, endpoint.labels)
    return namespaces is not None


def resolve_port(value: Any, target: Endpoint, protocol: str) -> int | None:
    """A named port is "a numerical or named port on a pod": the target pod's containerPort of that name."""
    if isinstance(value, int):
        return value
    for port in target.ports:
        if port.name == value and port.protocol == protocol:
            return port.number
    return None


def port_matches(item: dict[str, Any], target: Endpoint, number: int, protocol: str) -> bool:
    """NetworkPolicyPort: protocol "defaults to TCP"; no port "matches all port names and numbers";
    endPort: "the range of ports from port to endPort if set, inclusive"."""
    if str(item.get("protocol") or "TCP") != protocol:
        return False
    if item.get("port") is None:
        return True
    start = resolve_port(item["port"], target, protocol)
    if start is None:
        return False
    end = item.get("endPort")
    return start <= number <= (end if isinstance(end, int) and isinstance(item["port"], int) else start)


def _rule_allows(
    rule: dict[str, Any], peers_key: str, policy: Resource, peer: Endpoint, target: Endpoint, port: Port, match: Match
) -> bool:
    """A rule's ports and peers: "If this field is empty or missing, this rule matches all" of them."""
    ports = rule.get("ports") or []
    if ports and not any(port_matches(p, target, port.number, port.protocol) for p in ports):
        return False
    peers = rule.get(peers_key) or []
    return not peers or any(peer_matches(p, policy, peer, match) for p in peers)


def allowance(
    policies: Iterable[Resource], pod: Endpoint, other: Endpoint, port: Port, direction: str, match: Match
) -> Allowance:
    """Whether ``pod`` may receive from (Ingress) or send to (Egress) ``other`` on ``port``.

    "Traffic is allowed to a pod if there are no NetworkPolicies selecting the pod ... OR if the traffic
    matches at least one ingress rule across all of the NetworkPolicy objects whose podSelector matches
    the pod"; an empty rule list "does not allow any traffic". Likewise for egress.
    """
    key, peers_key = ("ingress", "from") if direction == INGRESS else ("egress", "to")
    target = pod if direction == INGRESS else other
    isolating = [p for p in policies if selects(p, pod) and direction in policy_types(p)]
    rules = tuple(
        (policy, f"spec.{key}[{index}]")
        for policy in isolating
        for index, rule in enumerate(policy.spec.get(key) or [])
        if _rule_allows(rule, peers_key, policy, other, target, port, match)
    )
    return Allowance(tuple(p.ref for p in isolating), rules)


@dataclass(frozen=True)
class Verdict:
    egress: Allowance | None
    ingress: Allowance | None

    @property
    def open(self) -> bool:
        """Open iff the source's egress AND the destination's ingress allow it (outside pods: no policy)."""
        return all(a is None or a.allowed for a in (self.egress, self.ingress))

    def explain(self) -> str:
        parts = []
        for label, side in (("egress", self.egress), ("ingress", self.ingress)):
            if side is None:
                continue
            if not side.isolated_by:
                parts.append(f"{label}: no policy selects the pod")
            elif side.rules:
                parts.append(f"{label}: allowed by " + ", ".join(f"{p.ref} {f}" for p, f in side.rules))
            else:
                parts.append(f"{label}: denied (selected by {', '.join(side.isolated_by)})")
        return "; ".join(parts)


def connection(policies: list[Resource], source: Endpoint, destination: Endpoint, port: Port, match: Match) -> Verdict:
    egress = allowance(policies, source, destination, port, EGRESS, match) if source.is_pod else None
    ingress = allowance(policies, destination, source, port, INGRESS, match) if destination.is_pod else None
    return Verdict(egress, ingress)


def unresolved_named_ports(policies: list[Resource], pods: list[Endpoint]) -> Iterator[tuple[Resource, str, str]]:
    """(policy, field, name) for every named port no pod that the rule can reach declares."""
    for policy in policies:
        selected = [p for p in pods if selects(policy, p)]
        for key, peers_key in (("ingress", "from"), ("egress", "to")):
            for index, rule in enumerate(policy.spec.get(key) or []):
                if key == "ingress":
                    targets = selected
                else:
                    peers = rule.get(peers_key) or []
                    targets = [
                        p for p in pods if not peers or any(peer_matches(x, policy, p, Match.MAYBE) for x in peers)
                    ]
                for number, item in enumerate(rule.get("ports") or []):
                    name = item.get("port")
                    protocol = str(item.get("protocol") or "TCP")
                    if isinstance(name, str) and not any(resolve_port(name, t, protocol) is not None for t in targets):
                        yield policy, f"spec.{key}[{index}].ports[{number}].port", name

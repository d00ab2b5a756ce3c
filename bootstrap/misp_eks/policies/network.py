"""Who may talk to whom: the NetworkPolicies of each environment, evaluated on its built pods.

Required paths must be open for sure; the data ports must be closed to everyone else, even where an
ipBlock only may cover a pod (misp_eks.validate.netpol explains both modes).

Addresses: the load balancer (target-type ip, so it connects from its own addresses in the VPC), RDS
and ElastiCache live in the VPC; each is represented by the VPC's whole CIDR, the value the trees'
``${vpc_cidr}`` became (cluster-vars: the bootstrap reads it from the VPC eksctl creates from
cluster.yaml). S3 and an internet-facing load balancer have public addresses AWS picks and changes
(its published ip-ranges), so they stand for every public IPv4 block. Only the in-cluster side of a
path to or from them is a NetworkPolicy's to decide; their security groups are the other side.

What these policies guard is the application namespaces. RDS's and ElastiCache's security groups
admit the EKS cluster security group (misp_eks.provision.security_groups), which every node carries
and, with the VPC CNI and no security groups for pods, every pod: pods of other namespaces
(kube-system, flux-system, external-secrets) reach 3306 and 6379 as far as the network goes, and only
the credentials and TLS hold them back. So pods of other namespaces are checked against the data
ports inside the cluster only; the application namespaces' pods against all of them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from misp_eks.naming import CACHE_PORT, DASHBOARD_NAMESPACE, DATABASE_PORT, MISP_NAMESPACE
from misp_eks.policies.common import EXAMPLE, everything
from misp_eks.policies.workloads import APP_NAMESPACES
from misp_eks.problems import Problem
from misp_eks.validate.netpol import (
    NAMESPACE_NAME_LABEL,
    Endpoint,
    Match,
    Network,
    Port,
    connection,
    resolve_port,
    unresolved_named_ports,
)
from misp_eks.validate.resources import Resource, Tree, containers, pod_labels, pod_template, selector_matches
from misp_eks.validate.runner import Report

# misp-docker core/files/entrypoint_fpm.sh (commit 6d915d5): php-fpm listens on 0.0.0.0:9002 in misp-core.
PHP_FPM = Port(9002)
DNS = (Port(53, "UDP"), Port(53, "TCP"))
HTTPS = Port(443)
# Amazon EKS user guide, "Set up the Amazon EKS Pod Identity Agent": the agent listens for the pods'
# credential requests on 169.254.170.23 (IPv4); the SDKs call http://169.254.170.23/v1/credentials (port 80).
POD_IDENTITY_AGENT = ipaddress.ip_network("169.254.170.23/32")
POD_IDENTITY_PORT = Port(80)
# Not public: IANA's IPv4 special-purpose registry (RFC 6890) blocks a pod could be sent to, multicast
# and the reserved 240/4 included.
SPECIAL_PURPOSE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/3",
    )
)
KUBE_SYSTEM = "kube-system"
WEB, WORKERS, MODULES = "misp-web", "misp-workers", "misp-modules"
DATABASE_INIT = "misp-database-init"
DASHBOARD_WEB, DASHBOARD_ZMQ = "misp-dashboard-web", "misp-dashboard-zmq"
MODULES_SERVICE, ZMQ_SERVICE, SUPERVISOR_SERVICE = "misp-modules", "misp-zmq", "misp-supervisor"
WORKLOADS = {
    WEB: ("Deployment", MISP_NAMESPACE),
    WORKERS: ("Deployment", MISP_NAMESPACE),
    MODULES: ("Deployment", MISP_NAMESPACE),
    DATABASE_INIT: ("Job", MISP_NAMESPACE),
    DASHBOARD_WEB: ("Deployment", DASHBOARD_NAMESPACE),
    DASHBOARD_ZMQ: ("Deployment", DASHBOARD_NAMESPACE),
}


@dataclass(frozen=True)
class Cluster:
    """One environment as the network sees it: its pods, its policies and the outside endpoints."""

    env: str
    tree: Tree
    policies: list[Resource]
    pods: list[Endpoint]
    vpc: Endpoint
    database: Endpoint
    cache: Endpoint
    load_balancer: Endpoint
    dns: Endpoint
    pod_identity: Endpoint
    internet: tuple[Endpoint, ...]
    """Every public IPv4 block, one endpoint each: where S3 and internet-facing load balancers are."""
    misp_entry: tuple[Endpoint, ...]
    """Where the dashboard finds MISP's login: its load balancer, public or in the VPC (settings.yaml)."""
    strangers: tuple[Endpoint, ...]
    """An unlabelled pod in every namespace a policy or the tree names, kube-system and one more."""

    def pod(self, name: str) -> Endpoint | None:
        kind, namespace = WORKLOADS[name]
        return next((p for p in self.pods if p.name == f"{kind} {namespace}/{name}"), None)


def _ports(resource: Resource) -> tuple[Port, ...]:
    return tuple(
        Port(int(p["containerPort"]), str(p.get("protocol") or "TCP"), str(p.get("name") or ""))
        for item in containers(resource)
        for p in item.get("ports") or []
        if isinstance(p.get("containerPort"), int)
    )


def public_networks(vpc: Network) -> list[Network]:
    """The IPv4 space less the special-purpose blocks and the VPC, as few networks as possible."""
    blocks: list[Network] = [ipaddress.ip_network("0.0.0.0/0")]
    for excluded in (*SPECIAL_PURPOSE, vpc):
        if excluded.version != 4:
            continue
        kept: list[Network] = []
        for block in blocks:
            if excluded.subnet_of(block):  # type: ignore[arg-type]  # both IPv4
                kept.extend(block.address_exclude(excluded))  # type: ignore[arg-type]
            elif not block.subnet_of(excluded):  # type: ignore[arg-type]
                kept.append(block)
        blocks = kept
    return sorted(blocks, key=lambda n: (int(n.network_address), n.prefixlen))


def selected_namespaces(policies: Iterable[Resource]) -> dict[str, dict[str, str]]:
    """Labels of a namespace each peer namespaceSelector selects, by that namespace's name.

    matchLabels are kept, an ``In`` or ``Exists`` expression gets a value it accepts; the name is the
    ``kubernetes.io/metadata.name`` the selector asks for, else one made of the labels.
    """
    found: dict[str, dict[str, str]] = {}
    for policy in policies:
        for key, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in policy.spec.get(key) or []:
                for peer in rule.get(peers_key) or []:
                    selector = peer.get("namespaceSelector")
                    if not isinstance(selector, dict):
                        continue
                    labels = {str(k): str(v) for k, v in (selector.get("matchLabels") or {}).items()}
                    for expression in selector.get("matchExpressions") or []:
                        values = expression.get("values") or ["any"]
                        if expression.get("operator") in ("In", "Exists"):
                            labels.setdefault(str(expression.get("key")), str(values[0]))
                    if not labels:
                        continue  # every namespace: the strangers all match it
                    name = labels.get(NAMESPACE_NAME_LABEL) or "labelled-" + "-".join(
                        f"{k}={v}" for k, v in sorted(labels.items())
                    )
                    found[name] = {**labels, NAMESPACE_NAME_LABEL: name}
    return found


def cluster(report: Report, env: str) -> Cluster:
    tree = everything(report, env)
    vpc = ipaddress.ip_network(EXAMPLE.vpc_cidr)
    policies = tree.of_kind("NetworkPolicy")
    labels = {ns.name: {**ns.labels, NAMESPACE_NAME_LABEL: ns.name} for ns in tree.of_kind("Namespace")}

    def namespace_labels(name: str) -> dict[str, str]:
        return labels.get(name, {NAMESPACE_NAME_LABEL: name})

    pods = [
        Endpoint(r.ref, vpc, r.namespace, namespace_labels(r.namespace), pod_labels(r), _ports(r), r.origin)
        for r in tree
        if pod_template(r) is not None and r.namespace
    ]
    named = {**selected_namespaces(policies), **{name: namespace_labels(name) for name in labels}}
    named.setdefault(KUBE_SYSTEM, namespace_labels(KUBE_SYSTEM))
    named.setdefault("elsewhere", namespace_labels("elsewhere"))
    internet = tuple(Endpoint(f"the public addresses {n}", n) for n in public_networks(vpc))
    internal = report.environments[env].settings.ingress.scheme == "internal"
    return Cluster(
        env=env,
        tree=tree,
        policies=policies,
        pods=pods,
        vpc=Endpoint("the VPC", vpc),
        database=Endpoint("RDS (in the VPC)", vpc),
        cache=Endpoint("ElastiCache (in the VPC)", vpc),
        load_balancer=Endpoint("the load balancer (in the VPC)", vpc),
        # The EKS CoreDNS add-on keeps the kube-dns labels and port names of kubernetes/kubernetes
        # cluster/addons/dns/coredns/coredns.yaml.base.
        dns=Endpoint(
            "kube-dns",
            vpc,
            KUBE_SYSTEM,
            namespace_labels(KUBE_SYSTEM),
            {"k8s-app": "kube-dns"},
            (Port(53, "UDP", "dns"), Port(53, "TCP", "dns-tcp")),
        ),
        pod_identity=Endpoint("the EKS Pod Identity agent", POD_IDENTITY_AGENT),
        internet=internet,
        misp_entry=(Endpoint("MISP's load balancer (in the VPC)", vpc),) if internal else internet,
        strangers=tuple(
            Endpoint(f"a pod of namespace {name}", vpc, name, namespace_labels)
            for name, namespace_labels in sorted(named.items())
        ),
    )


def service_targets(
    world: Cluster, namespace: str, name: str, port: str | int | None = None
) -> list[tuple[Endpoint, Port]]:
    """The pods and container ports a Service sends to (one of its ports, by name or number, or all)."""
    service = world.tree.get("Service", name, namespace)
    if service is None:
        return []
    found = []
    for item in service.spec.get("ports") or []:
        if port is not None and port not in (item.get("name"), item.get("port")):
            continue
        protocol = str(item.get("protocol") or "TCP")
        # kubernetes/api core/v1/types.go ServicePort.targetPort: a name "will be looked up as a named port
        # in the target Pod's container ports"; unset, "the value of the 'port' field is used".
        target = item.get("targetPort", item.get("port"))
        for pod in world.pods:
            if pod.namespace == namespace and selector_matches(service.spec.get("selector"), dict(pod.labels)):
                number = resolve_port(target, pod, protocol)
                if number is not None:
                    found.append((pod, Port(number, protocol)))
    return found


def _ingress_backends(world: Cluster) -> Iterator[tuple[Resource, Endpoint, Port]]:
    for ingress in world.tree.of_kind("Ingress"):
        if ingress.namespace not in APP_NAMESPACES:
            continue
        backends = [ingress.spec.get("defaultBackend")] + [
            path.get("backend")
            for rule in ingress.spec.get("rules") or []
            for path in (rule.get("http") or {}).get("paths") or []
        ]
        for backend in backends:
            service = (backend or {}).get("service") or {}
            port = service.get("port") or {}
            if service:
                for pod, target in service_targets(
                    world, ingress.namespace, service.get("name"), port.get("name") or port.get("number")
                ):
                    yield ingress, pod, target


def _closed(world: Cluster, source: Endpoint, destination: Endpoint, port: Port, why: str) -> Iterator[Problem]:
    yield from _closed_anywhere(world, source, (destination,), port, why)


def _closed_anywhere(
    world: Cluster, source: Endpoint, destinations: Iterable[Endpoint], port: Port, why: str
) -> Iterator[Problem]:
    """One problem for all of ``destinations`` that ``source`` cannot reach on ``port`` (each must be open)."""
    closed = [(d, v) for d in destinations if not (v := connection(world.policies, source, d, port, Match.SURE)).open]
    if not closed:
        return
    destination, verdict = closed[0]
    more = f" (and {len(closed) - 1} more blocks)" if len(closed) > 1 else ""
    where = source if source.is_pod else destination
    yield Problem(
        where.origin,
        f"{world.env}: {source.name} cannot reach {destination.name}{more} on {port.protocol} {port.number}, "
        f"which {why} needs ({verdict.explain()})",
        obj=where.name,
    )


def required(world: Cluster) -> Iterator[Problem]:
    pods = {name: world.pod(name) for name in WORKLOADS}
    for name, pod in pods.items():
        if pod is None:
            kind, namespace = WORKLOADS[name]
            yield Problem(world.env, f"no {kind} {namespace}/{name}: the network checks need it")
    for ingress, pod, port in _ingress_backends(world):
        yield from _closed(world, world.load_balancer, pod, port, f"{ingress.ref}")
    misp = [p for p in (pods[WEB], pods[WORKERS]) if p is not None]
    for source in misp:
        yield from _closed(world, source, world.database, Port(DATABASE_PORT), "MISP")
        yield from _closed(world, source, world.cache, Port(CACHE_PORT), "MISP")
        for pod, port in service_targets(world, MISP_NAMESPACE, MODULES_SERVICE):
            yield from _closed(world, source, pod, port, "MISP's enrichment")
        yield from _closed(world, source, world.pod_identity, POD_IDENTITY_PORT, "MISP's S3 credentials")
        yield from _closed_anywhere(world, source, world.internet, HTTPS, "MISP's attachments in S3")
    if pods[WEB] is not None:
        for pod, port in service_targets(world, MISP_NAMESPACE, SUPERVISOR_SERVICE):
            yield from _closed(world, pods[WEB], pod, port, "MISP's worker status page")
    if pods[DATABASE_INIT] is not None:
        yield from _closed(world, pods[DATABASE_INIT], world.database, Port(DATABASE_PORT), "the schema setup")
    if pods[DASHBOARD_ZMQ] is not None:
        for pod, port in service_targets(world, MISP_NAMESPACE, ZMQ_SERVICE):
            yield from _closed(world, pods[DASHBOARD_ZMQ], pod, port, "the dashboard's live feed")
    if pods[DASHBOARD_WEB] is not None:
        yield from _closed_anywhere(world, pods[DASHBOARD_WEB], world.misp_entry, HTTPS, "the dashboard's MISP login")
    for source in (pods[DASHBOARD_WEB], pods[DASHBOARD_ZMQ]):
        if source is not None:
            yield from _closed(world, source, world.cache, Port(CACHE_PORT), "the dashboard")
    for source in world.pods:
        if source.namespace in APP_NAMESPACES:
            for port in DNS:
                yield from _closed(world, source, world.dns, port, "name resolution")


def _data_ports(world: Cluster) -> Iterator[tuple[Endpoint, Port, set[str], bool]]:
    """(destination, port, workloads allowed to reach it, inside the cluster)."""
    misp, dashboard = {WEB, WORKERS}, {DASHBOARD_WEB, DASHBOARD_ZMQ}
    yield world.database, Port(DATABASE_PORT), {*misp, DATABASE_INIT}, False
    yield world.vpc, Port(CACHE_PORT), misp | dashboard, False
    for pod, port in service_targets(world, MISP_NAMESPACE, ZMQ_SERVICE):
        yield pod, port, {DASHBOARD_ZMQ}, True
    for pod, port in service_targets(world, MISP_NAMESPACE, SUPERVISOR_SERVICE):
        yield pod, port, {WEB}, True
    for pod, port in service_targets(world, MISP_NAMESPACE, MODULES_SERVICE):
        yield pod, port, misp, True
    for name in misp:
        pod = world.pod(name)
        if pod is not None:
            yield pod, PHP_FPM, set(), True


def forbidden(world: Cluster) -> Iterator[Problem]:
    """Every other pod: those of the application namespaces for every data port; those of any other
    namespace (the tree's, the kube-dns pod, a stranger per namespace) for the ports inside the cluster."""
    governed = [p for p in (*world.pods, *world.strangers) if p.namespace in APP_NAMESPACES]
    others = [p for p in (*world.pods, world.dns, *world.strangers) if p.namespace not in APP_NAMESPACES]
    for destination, port, allowed, inside in _data_ports(world):
        names = {f"{WORKLOADS[n][0]} {WORKLOADS[n][1]}/{n}" for n in allowed}
        sources = [p for p in governed if p.name not in names]
        if inside:
            sources += [*others, world.load_balancer]
        for source in sources:
            if source == destination:
                continue
            verdict = connection(world.policies, source, destination, port, Match.MAYBE)
            if verdict.open:
                where = next((e for e in (source, destination) if e.origin), destination)
                only = ", ".join(sorted(names)) or "nothing"
                yield Problem(
                    where.origin or world.env,
                    f"{world.env}: {source.name} can reach {destination.name} on {port.protocol} {port.number}, "
                    f"which only {only} may ({verdict.explain()})",
                    obj=where.name,
                )


def named_ports(world: Cluster) -> Iterator[Problem]:
    for policy, field, name in unresolved_named_ports(world.policies, [*world.pods, world.dns]):
        yield Problem(
            policy.origin,
            f"{world.env}: port {name!r} is no containerPort of any pod this rule can reach",
            obj=policy.ref,
            field=field,
        )


def reachability(report: Report) -> Iterator[Problem]:
    """The paths MISP and the dashboard need are open; the data ports are closed to everyone else."""
    for env in sorted(report.environments):
        world = cluster(report, env)
        yield from named_ports(world)
        yield from required(world)
        yield from forbidden(world)


POLICIES = (reachability,)

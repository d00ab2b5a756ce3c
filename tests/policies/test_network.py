"""Reachability: each required path, each closed data port and each NetworkPolicy semantic can fail."""

from __future__ import annotations

import dataclasses

import pytest

from misp_eks.policies import network
from misp_eks.policies.common import EXAMPLE
from tests.policies.conftest import assert_finds, obj

VPC = EXAMPLE.vpc_cidr  # what the trees' ${vpc_cidr} became


def policy(report, tree, name):
    return obj(report, "prod", tree, "NetworkPolicy", name)["spec"]


def problems(report):
    return list(network.reachability(report))


def test_the_checks_see_the_real_paths(base_report):
    """Not vacuous: the environment has the pods, the Services and the ingress backends the checks use."""
    world = network.cluster(base_report, "prod")
    assert str(world.vpc.network) == VPC
    assert {p.number for _, p in network.service_targets(world, "misp", "misp-supervisor")} == {9001}
    assert all(world.pod(name) is not None for name in network.WORKLOADS)
    assert {p.number for _, p in network.service_targets(world, "misp", "misp-modules")} == {6666}
    assert {p.number for _, p in network.service_targets(world, "misp", "misp-zmq")} == {50000}
    backends = {(pod.name, port.number) for _, pod, port in network._ingress_backends(world)}
    assert backends == {("Deployment misp/misp-web", 8080), ("Deployment misp-dashboard/misp-dashboard-web", 8001)}


def test_web_pods_cut_out_of_the_egress_policy(report):
    selector = policy(report, "misp-backend", "misp-core")["podSelector"]
    selector["matchExpressions"][0]["values"] = ["workers"]
    found = problems(report)
    assert_finds(found, "Deployment misp/misp-web cannot reach RDS", "TCP 3306", "denied")
    assert_finds(found, "Deployment misp/misp-web cannot reach ElastiCache", "TCP 6379")
    assert_finds(found, "Deployment misp/misp-web cannot reach Deployment misp/misp-modules", "TCP 6666")


def test_database_opened_to_the_dashboard(report):
    policy(report, "misp-dashboard", "misp-dashboard-web")["egress"][0]["ports"].append({"port": 3306})
    assert_finds(
        problems(report),
        "Deployment misp-dashboard/misp-dashboard-web can reach RDS",
        "TCP 3306",
        "NetworkPolicy misp-dashboard/misp-dashboard-web spec.egress[0]",
    )


def test_modules_must_not_reach_the_database(report):
    policy(report, "misp-backend", "misp-modules")["egress"].append(
        {"to": [{"ipBlock": {"cidr": VPC}}], "ports": [{"protocol": "TCP", "port": 3306}]}
    )
    assert_finds(problems(report), "Deployment misp/misp-modules can reach RDS", "TCP 3306")


def test_named_port_that_resolves(report):
    """misp-modules' container declares port 6666 as "modules": naming it keeps every path as it was."""
    policy(report, "misp-backend", "misp-modules")["ingress"][0]["ports"][0]["port"] = "modules"
    assert problems(report) == []


def test_named_port_that_does_not_resolve(report):
    policy(report, "misp-backend", "misp-modules")["ingress"][0]["ports"][0]["port"] = "module"
    found = problems(report)
    assert_finds(found, "NetworkPolicy misp/misp-modules", "spec.ingress[0].ports[0].port", "'module'")
    assert_finds(found, "cannot reach Deployment misp/misp-modules", "TCP 6666")


def test_load_balancer_to_the_web_pods(report):
    policy(report, "misp-web", "misp-web")["ingress"][0]["ports"][0]["port"] = 8081
    assert_finds(problems(report), "the load balancer (in the VPC) cannot reach Deployment misp/misp-web", "TCP 8080")


def test_load_balancer_needs_the_whole_vpc(report):
    """The load balancer's address is somewhere in the VPC: half of it is not enough for sure."""
    policy(report, "misp-dashboard", "misp-dashboard-web")["ingress"][0]["from"][0]["ipBlock"]["cidr"] = "10.20.0.0/17"
    assert_finds(problems(report), "cannot reach Deployment misp-dashboard/misp-dashboard-web", "TCP 8001")


def test_subscriber_needs_the_namespace_selector(report):
    """Without namespaceSelector a podSelector peer means pods of the policy's own namespace only."""
    peer = policy(report, "misp-backend", "misp-workers")["ingress"][0]["from"][0]
    peer.pop("namespaceSelector")
    assert_finds(
        problems(report),
        "Deployment misp-dashboard/misp-dashboard-zmq cannot reach Deployment misp/misp-workers",
        "TCP 50000",
        "ingress: denied",
    )


def test_split_peers_open_the_publisher_to_every_pod(report):
    """namespaceSelector and podSelector as two peers are an OR: every pod of misp-dashboard gets in."""
    rule = policy(report, "misp-backend", "misp-workers")["ingress"][0]
    peer = rule["from"][0]
    rule["from"] = [{"namespaceSelector": peer["namespaceSelector"]}, {"podSelector": peer["podSelector"]}]
    policy(report, "misp-dashboard", "misp-dashboard-web")["egress"][0]["to"].append({"namespaceSelector": {}})
    policy(report, "misp-dashboard", "misp-dashboard-web")["egress"][0]["ports"].append({"port": 50000})
    assert_finds(
        problems(report),
        "Deployment misp-dashboard/misp-dashboard-web can reach Deployment misp/misp-workers",
        "TCP 50000",
    )


def test_publisher_open_to_any_namespace(report):
    policy(report, "misp-backend", "misp-workers")["ingress"][0]["from"] = [{"namespaceSelector": {}}]
    assert_finds(problems(report), "a pod of namespace elsewhere can reach Deployment misp/misp-workers", "TCP 50000")


def _namespace(name):
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def test_publisher_open_to_kube_system(report):
    """kube-system has no Namespace in the tree and no NetworkPolicy: its pods are strangers all the same."""
    policy(report, "misp-backend", "misp-workers")["ingress"][0]["from"].append(_namespace("kube-system"))
    assert_finds(problems(report), "a pod of namespace kube-system can reach Deployment misp/misp-workers", "TCP 50000")


def test_modules_open_to_a_namespace_a_selector_names(report):
    """flux-system is in no tree here: the namespaceSelector naming it makes a stranger there."""
    policy(report, "misp-backend", "misp-modules")["ingress"][0]["from"].append(_namespace("flux-system"))
    assert_finds(problems(report), "a pod of namespace flux-system can reach Deployment misp/misp-modules", "TCP 6666")


def test_modules_open_to_a_namespace_of_the_tree(report):
    """external-secrets is a Namespace of the tree; selected by its own labels, not by name."""
    labels = report.applied("prod", "infra-controllers").one("Namespace", "external-secrets").obj["metadata"]
    labels.setdefault("labels", {})["team"] = "platform"
    policy(report, "misp-backend", "misp-modules")["ingress"][0]["from"].append(
        {"namespaceSelector": {"matchLabels": {"team": "platform"}}}
    )
    assert_finds(
        problems(report), "a pod of namespace external-secrets can reach Deployment misp/misp-modules", "TCP 6666"
    )


def test_namespace_selected_by_a_label_only(report):
    """A selector on a label no Namespace of the tree carries still gets a stranger that has it."""
    policy(report, "misp-backend", "misp-workers")["ingress"][0]["from"].append(
        {"namespaceSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["batch"]}]}}
    )
    assert_finds(problems(report), "labelled-tier=batch can reach Deployment misp/misp-workers", "TCP 50000")


def test_the_dns_pod_is_a_stranger_too(report):
    peer = {**_namespace("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    policy(report, "misp-backend", "misp-workers")["ingress"][1]["from"].append(peer)
    assert_finds(problems(report), "kube-dns can reach Deployment misp/misp-workers", "TCP 9001")


def test_supervisord_only_for_the_web_pods(report):
    policy(report, "misp-backend", "misp-workers")["ingress"][1]["from"][0]["podSelector"] = {}
    policy(report, "misp-backend", "misp-modules")["egress"].append(
        {"to": [{"podSelector": {}}], "ports": [{"port": 9001}]}
    )
    assert_finds(problems(report), "Deployment misp/misp-modules can reach Deployment misp/misp-workers", "TCP 9001")


def test_web_needs_the_workers_supervisord(report):
    policy(report, "misp-web", "misp-web")["egress"][0]["ports"][0]["port"] = 9002
    assert_finds(
        problems(report),
        "Deployment misp/misp-web cannot reach Deployment misp/misp-workers on TCP 9001",
        "worker status page",
    )


def test_supervisord_closed_at_the_workers(report):
    policy(report, "misp-backend", "misp-workers")["ingress"].pop(1)
    assert_finds(problems(report), "misp-web cannot reach Deployment misp/misp-workers on TCP 9001", "ingress: denied")


@pytest.mark.parametrize("workload", ["misp-web", "misp-workers"])
def test_misp_needs_the_pod_identity_agent(report, workload):
    rules = policy(report, "misp-backend", "misp-core")["egress"]
    agent = next(r for r in rules if r["to"][0].get("ipBlock", {}).get("cidr") == "169.254.170.23/32")
    agent["ports"][0]["port"] = 8080
    assert_finds(
        problems(report), f"Deployment misp/{workload} cannot reach the EKS Pod Identity agent on TCP 80", "S3"
    )


@pytest.mark.parametrize("workload", ["misp-web", "misp-workers"])
def test_misp_needs_https_to_public_addresses(report, workload):
    rules = policy(report, "misp-backend", "misp-core")["egress"]
    anywhere = next(r for r in rules if r["to"][0].get("ipBlock", {}).get("cidr") == "0.0.0.0/0")
    anywhere["to"][0]["ipBlock"]["cidr"] = "0.0.0.0/1"  # half of the internet is not enough
    assert_finds(
        problems(report), f"Deployment misp/{workload} cannot reach the public addresses 128.0.0.0/", "TCP 443", "S3"
    )


def test_excepting_a_public_block_closes_s3(report):
    rules = policy(report, "misp-backend", "misp-core")["egress"]
    anywhere = next(r for r in rules if r["to"][0].get("ipBlock", {}).get("cidr") == "0.0.0.0/0")
    anywhere["to"][0]["ipBlock"]["except"].append("52.0.0.0/8")
    assert_finds(problems(report), "Deployment misp/misp-web cannot reach the public addresses", "TCP 443")


def test_public_networks_leave_out_private_and_link_local():
    import ipaddress

    blocks = network.public_networks(ipaddress.ip_network(VPC))
    for address in ("8.8.8.8", "52.95.110.1", "3.5.0.1", "223.255.255.254"):
        assert any(ipaddress.ip_address(address) in b for b in blocks), address
    for address in ("10.20.1.1", "169.254.170.23", "172.16.0.1", "192.168.1.1", "127.0.0.1", "100.64.0.1"):
        assert not any(ipaddress.ip_address(address) in b for b in blocks), address


def test_dashboard_needs_misp_login_over_https(report):
    policy(report, "misp-dashboard", "misp-dashboard-web")["egress"][1]["ports"][0]["port"] = 8443
    assert_finds(
        problems(report),
        "Deployment misp-dashboard/misp-dashboard-web cannot reach the public addresses",
        "TCP 443",
        "the dashboard's MISP login",
    )


def test_internal_misp_is_reached_in_the_vpc(report):
    """With an internal load balancer MISP's login is in the VPC: 443 to the public blocks alone fails."""
    env = report.environments["prod"]
    ingress = env.settings.ingress.model_copy(update={"scheme": "internal"})
    report.environments["prod"] = dataclasses.replace(
        env, settings=env.settings.model_copy(update={"ingress": ingress})
    )
    rule = policy(report, "misp-dashboard", "misp-dashboard-web")["egress"][1]
    assert not [p for p in problems(report) if "MISP login" in str(p)]
    rule["to"][0]["ipBlock"]["except"].append(VPC)
    assert_finds(problems(report), "misp-dashboard-web cannot reach MISP's load balancer (in the VPC)", "TCP 443")


def test_ip_block_except(report):
    """443 to 0.0.0.0/0 except the link-local range: also 3306 there reaches the VPC, unless the VPC is excepted."""
    rule = policy(report, "misp-dashboard", "misp-dashboard-web")["egress"][1]
    rule["ports"].append({"port": 3306})
    assert_finds(problems(report), "misp-dashboard-web can reach RDS", "spec.egress[1]")
    rule["to"][0]["ipBlock"]["except"].append(VPC)
    assert not [p for p in problems(report) if "can reach RDS" in str(p)]


def test_port_range(report):
    policy(report, "misp-dashboard", "misp-dashboard-zmq")["egress"][1]["ports"] = [{"port": 3000, "endPort": 6400}]
    found = problems(report)
    assert_finds(found, "misp-dashboard-zmq can reach RDS", "TCP 3306")
    assert not [p for p in found if "cannot reach ElastiCache" in str(p)]


def test_protocol_defaults_to_tcp(report):
    """allow-dns with no protocol allows TCP 53 only: UDP lookups fail for every pod of the namespace."""
    dns = report.applied("prod", "infra-configs").one("NetworkPolicy", "allow-dns", "misp")
    for port in dns.spec["egress"][0]["ports"]:
        port.pop("protocol")
    found = problems(report)
    assert_finds(found, "Deployment misp/misp-modules cannot reach kube-dns on UDP 53")
    assert_finds(found, "Job misp/misp-database-init cannot reach kube-dns on UDP 53")
    assert not [p for p in found if "TCP 53" in str(p)]


def test_rule_without_ports_opens_php_fpm(report):
    policy(report, "misp-web", "misp-web")["ingress"][0].pop("ports")
    assert_finds(problems(report), "the load balancer (in the VPC) can reach Deployment misp/misp-web", "TCP 9002")


def test_empty_egress_list_isolates(report):
    """An Egress policy with no rules allows nothing; selecting the workers pod it cuts it off DNS."""
    spec = policy(report, "misp-backend", "misp-workers")
    spec["policyTypes"] = ["Ingress", "Egress"]
    spec["egress"] = []
    found = problems(report)
    assert not [p for p in found if "misp-workers cannot reach" in str(p)], "allow-dns and misp-core still apply"
    report.applied("prod", "infra-configs").one("NetworkPolicy", "allow-dns", "misp").spec["podSelector"] = {
        "matchLabels": {"app.kubernetes.io/name": "misp-dashboard"}
    }
    assert_finds(problems(report), "Deployment misp/misp-workers cannot reach kube-dns", "UDP 53")


def test_egress_is_open_where_no_policy_selects_the_pod(report):
    """Isolation is per direction and per selecting policy: allow-dns alone still isolates egress."""
    spec = policy(report, "misp-dashboard", "misp-dashboard-zmq")
    spec["policyTypes"] = ["Ingress"]
    assert_finds(problems(report), "misp-dashboard-zmq cannot reach Deployment misp/misp-workers", "allow-dns")
    configs = report.applied("prod", "infra-configs").resources
    configs[:] = [r for r in configs if not (r.kind == "NetworkPolicy" and r.namespace == "misp-dashboard")]
    assert_finds(problems(report), "misp-dashboard-zmq can reach RDS", "egress: no policy selects the pod")


@pytest.mark.parametrize("workload", ["misp-web", "misp-workers"])
def test_misp_needs_the_cache(report, workload):
    spec = policy(report, "misp-backend", "misp-core")
    spec["egress"][0]["ports"] = [{"protocol": "TCP", "port": 3306}]
    assert_finds(problems(report), f"Deployment misp/{workload} cannot reach ElastiCache", "TCP 6379")


def test_dns_named_ports_resolve_against_coredns(report):
    """allow-dns may name CoreDNS's ports (dns, dns-tcp): they are kube-dns's, not the app pods'."""
    dns = report.applied("prod", "infra-configs").one("NetworkPolicy", "allow-dns", "misp")
    names = {"UDP": "dns", "TCP": "dns-tcp"}
    for port in dns.spec["egress"][0]["ports"]:
        port["port"] = names[port.get("protocol", "TCP")]
    assert problems(report) == []
    dns.spec["egress"][0]["ports"][0]["port"] = "domain"
    assert_finds(problems(report), "NetworkPolicy misp/allow-dns", "spec.egress[0].ports[0].port", "'domain'")

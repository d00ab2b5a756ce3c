"""NetworkPolicy semantics (k8s.io/api networking/v1 types.go) on small hand-made policies."""

from __future__ import annotations

import ipaddress

from misp_eks.validate.netpol import EGRESS, INGRESS, Endpoint, Match, Port, allowance, connection, policy_types
from misp_eks.validate.resources import Resource

NET = ipaddress.ip_network("10.0.0.0/16")
WEB = Endpoint("web", NET, "demo", {"kubernetes.io/metadata.name": "demo"}, {"app": "web"}, (Port(8080, name="http"),))
DB = Endpoint("db", NET, "demo", {"kubernetes.io/metadata.name": "demo"}, {"app": "db"}, (Port(5432, name="sql"),))
OUTSIDE = Endpoint("outside", ipaddress.ip_network("192.0.2.0/24"))


def netpol(spec):
    return Resource({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": "p", "namespace": "demo"}, "spec": spec}, "demo.yaml")  # fmt: skip


def test_policy_types_default():
    """Ingress always; Egress only when the policy has an egress section."""
    assert policy_types(netpol({"podSelector": {}})) == {INGRESS}
    assert policy_types(netpol({"podSelector": {}, "egress": [{}]})) == {INGRESS, EGRESS}
    assert policy_types(netpol({"podSelector": {}, "policyTypes": ["Egress"]})) == {EGRESS}


def test_a_policy_without_egress_section_leaves_egress_open():
    policies = [netpol({"podSelector": {}})]
    assert connection(policies, WEB, OUTSIDE, Port(443), Match.SURE).open
    assert not connection(policies, OUTSIDE, WEB, Port(8080), Match.SURE).open


def test_rule_without_peers_matches_every_peer_and_without_ports_every_port():
    policies = [netpol({"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"ports": [{"port": "sql"}]}]})]
    assert connection(policies, OUTSIDE, DB, Port(5432), Match.SURE).open
    assert not connection(policies, OUTSIDE, DB, Port(5433), Match.SURE).open
    policies = [netpol({"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"from": [{"podSelector": {}}]}]})]
    assert connection(policies, WEB, DB, Port(1), Match.SURE).open
    assert not connection(policies, OUTSIDE, DB, Port(1), Match.SURE).open


def test_empty_pod_selector_selects_every_pod_of_the_namespace_only():
    policies = [netpol({"podSelector": {}, "policyTypes": ["Egress"]})]
    assert not allowance(policies, WEB, OUTSIDE, Port(443), EGRESS, Match.SURE).allowed
    elsewhere = Endpoint("other", NET, "other", {}, {"app": "web"})
    assert allowance(policies, elsewhere, OUTSIDE, Port(443), EGRESS, Match.SURE).allowed


def test_ip_blocks_match_pods_only_at_maybe():
    rule = {"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}
    policies = [netpol({"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [rule]})]
    assert not connection(policies, WEB, DB, Port(5432), Match.SURE).open
    assert connection(policies, WEB, DB, Port(5432), Match.MAYBE).open


def test_end_port_only_with_a_numbered_port():
    rule = {"ports": [{"port": 5000, "endPort": 6000}]}
    policies = [netpol({"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [rule]})]
    assert connection(policies, WEB, DB, Port(5432), Match.SURE).open
    assert not connection(policies, WEB, DB, Port(6001), Match.SURE).open


def test_end_port_is_ignored_with_a_named_port():
    """endPort "must not be specified if port is a named port": the named port alone counts."""
    rule = {"ports": [{"port": "sql", "endPort": 6000}]}
    policies = [netpol({"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [rule]})]
    assert connection(policies, WEB, DB, Port(5432), Match.SURE).open
    assert not connection(policies, WEB, DB, Port(5433), Match.SURE).open
    assert not connection(policies, WEB, DB, Port(6000), Match.SURE).open


OTHER = Endpoint("other", NET, "other", {"kubernetes.io/metadata.name": "other"}, {"app": "web"})


def test_a_null_spec_pod_selector_selects_every_pod():
    """spec.podSelector is a struct, not a pointer: null decodes to {} and selects the whole namespace."""
    policies = [netpol({"podSelector": None, "policyTypes": ["Egress"]})]
    assert not allowance(policies, WEB, OUTSIDE, Port(443), EGRESS, Match.SURE).allowed
    assert not allowance(policies, DB, OUTSIDE, Port(443), EGRESS, Match.SURE).allowed
    assert allowance(policies, OTHER, OUTSIDE, Port(443), EGRESS, Match.SURE).allowed


def test_null_peer_selectors_are_absent():
    """A peer's podSelector, namespaceSelector and ipBlock are pointers with omitempty: null means unset."""
    db = {"matchLabels": {"app": "db"}}
    everywhere = {"namespaceSelector": {}, "podSelector": None}  # all pods of all namespaces
    policies = [netpol({"podSelector": db, "ingress": [{"from": [everywhere]}]})]
    assert connection(policies, OTHER, DB, Port(5432), Match.SURE).open
    here = {"namespaceSelector": None, "podSelector": {}}  # all pods of the policy's namespace only
    policies = [netpol({"podSelector": db, "ingress": [{"from": [here]}]})]
    assert connection(policies, WEB, DB, Port(5432), Match.SURE).open
    assert not connection(policies, OTHER, DB, Port(5432), Match.SURE).open
    no_block = {"ipBlock": None, "podSelector": {"matchLabels": {"app": "web"}}}
    policies = [netpol({"podSelector": db, "ingress": [{"from": [no_block]}]})]
    assert connection(policies, WEB, DB, Port(5432), Match.SURE).open
    assert not connection(policies, OUTSIDE, DB, Port(5432), Match.MAYBE).open

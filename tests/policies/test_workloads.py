"""Each rule for all application workloads catches its violation."""

from __future__ import annotations

import pytest

from misp_eks.policies import misp, workloads
from tests.policies.conftest import assert_finds, container, obj


def modules(report):
    return obj(report, "prod", "misp-backend", "Deployment", "misp-modules")


def test_unpinned_image(report):
    container(modules(report), "misp-modules")["image"] = "ghcr.io/misp/misp-docker/misp-modules:latest"
    assert_finds(workloads.pinned_images(report), "Deployment misp/misp-modules", "not pinned")


def test_one_build_of_misp_docker(report):
    container(modules(report), "misp-modules")["image"] = "ghcr.io/misp/misp-docker/misp-modules:v3.0.8"
    assert_finds(workloads.pinned_images(report), "different builds")


@pytest.mark.parametrize("part", ["requests", "limits"])
def test_resources(report, part):
    container(modules(report), "misp-modules")["resources"].pop(part)
    assert_finds(workloads.resources_set(report), "misp-modules", "requests and limits")


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda c: c["securityContext"].update(allowPrivilegeEscalation=True), "allowPrivilegeEscalation"),
        (lambda c: c["securityContext"]["capabilities"].update(drop=["NET_RAW"]), "drop ALL"),
        (lambda c: c["securityContext"]["capabilities"].update(add=["NET_ADMIN"]), "not allowed"),
        (lambda c: c["securityContext"].update(readOnlyRootFilesystem=False), "read-only"),
    ],
)
def test_security_context(report, edit, fragment):
    edit(container(modules(report), "misp-modules"))
    assert_finds(workloads.security_contexts(report), "Deployment misp/misp-modules", fragment)


def test_only_misp_core_may_run_as_root(report):
    deployment = obj(report, "prod", "misp-dashboard", "Deployment", "misp-dashboard-web")
    deployment["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot")
    assert_finds(workloads.security_contexts(report), "misp-dashboard-web", "non-root")


def test_misp_core_capabilities_are_bounded(report):
    web = obj(report, "prod", "misp-web", "Deployment", "misp-web")
    container(web, "misp-core")["securityContext"]["capabilities"]["add"].append("SYS_ADMIN")
    assert_finds(workloads.security_contexts(report), "Deployment misp/misp-web", "not allowed")


def test_seccomp_and_token(report):
    spec = modules(report)["spec"]["template"]["spec"]
    spec["securityContext"].pop("seccompProfile")
    spec["automountServiceAccountToken"] = True
    problems = list(workloads.security_contexts(report))
    assert_finds(problems, "seccompProfile")
    assert_finds(problems, "automountServiceAccountToken")


def test_network_rules_name_ports(report):
    policy = obj(report, "prod", "misp-dashboard", "NetworkPolicy", "misp-dashboard-web")
    policy["spec"]["egress"][0].pop("ports")
    assert_finds(workloads.network_rules(report), "NetworkPolicy misp-dashboard/misp-dashboard-web", "spec.egress[0]")


def test_network_ingress_rules_name_peers_and_ports(report):
    policy = obj(report, "prod", "misp-backend", "NetworkPolicy", "misp-modules")
    policy["spec"]["ingress"][0].pop("ports")
    assert_finds(workloads.network_rules(report), "NetworkPolicy misp/misp-modules", "spec.ingress[0]", "ports")


def test_ingress_through_the_load_balancer_controller(report):
    obj(report, "prod", "misp-web", "Ingress", "misp")["spec"]["ingressClassName"] = "nginx"
    assert_finds(misp.ingress(report), "Ingress misp/misp", "spec.ingressClassName", "must be alb")

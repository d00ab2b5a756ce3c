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


def _budget(report, tree, name):
    return obj(report, "prod", tree, "PodDisruptionBudget", name)["spec"]


@pytest.mark.parametrize(
    "spec",
    [
        {"maxUnavailable": 0},
        {"maxUnavailable": "0%"},
        {"minAvailable": 2},  # misp-modules runs two replicas
        {"minAvailable": 3},
        {"minAvailable": "100%"},
        {"minAvailable": "51%"},  # 1.02 of 2 pods rounds up to 2
    ],
    ids=str,
)
def test_budget_that_allows_no_eviction(report, spec):
    budget = _budget(report, "misp-backend", "misp-modules")
    budget.clear()
    budget.update(spec, selector={"matchLabels": {"app.kubernetes.io/name": "misp-modules"}})
    assert_finds(workloads.disruption_budgets(report), "PodDisruptionBudget misp/misp-modules", "allows no eviction")


@pytest.mark.parametrize(
    "spec",
    [{"maxUnavailable": "10%"}, {"minAvailable": "50%"}, {"minAvailable": 1}, {"maxUnavailable": 1}],
    ids=str,
)
def test_budget_that_allows_an_eviction(report, spec):
    """Percentages round up (10% of 2 pods may go: one), so these leave one pod to evict."""
    budget = _budget(report, "misp-backend", "misp-modules")
    budget.clear()
    budget.update(spec, selector={"matchLabels": {"app.kubernetes.io/name": "misp-modules"}})
    assert not [p for p in workloads.disruption_budgets(report) if "misp-modules" in str(p)]


def test_budget_counts_the_autoscalers_minimum(report):
    """misp-web has no replicas of its own: its HPA's minReplicas is what a budget can count on."""
    budget = _budget(report, "misp-web", "misp-web")
    budget.pop("maxUnavailable")
    budget["minAvailable"] = 2
    autoscaler = obj(report, "prod", "misp-web", "HorizontalPodAutoscaler", "misp-web")
    assert autoscaler["spec"]["minReplicas"] == 2
    assert_finds(workloads.disruption_budgets(report), "PodDisruptionBudget misp/misp-web", "2 pod(s)")
    autoscaler["spec"]["minReplicas"] = 3
    assert not [p for p in workloads.disruption_budgets(report) if "misp-web" in str(p)]


def test_budget_counts_replicas_without_an_autoscaler(report):
    _budget(report, "misp-backend", "misp-modules").update(maxUnavailable=None, minAvailable=2)
    assert_finds(workloads.disruption_budgets(report), "misp-modules", "spec.minAvailable", "2 pod(s)")
    obj(report, "prod", "misp-backend", "Deployment", "misp-modules")["spec"]["replicas"] = 3
    assert not [p for p in workloads.disruption_budgets(report) if "misp-modules" in str(p)]


def test_budget_with_neither_field_allows_no_eviction(report):
    """Neither minAvailable nor maxUnavailable: the controller's expectedCount stays 0, so disruptionsAllowed 0."""
    budget = _budget(report, "misp-backend", "misp-modules")
    budget.clear()
    budget["selector"] = {"matchLabels": {"app.kubernetes.io/name": "misp-modules"}}
    assert_finds(
        workloads.disruption_budgets(report), "PodDisruptionBudget misp/misp-modules", "spec:", "allows no eviction"
    )


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("minAvailable", "1.5%", "integer or percentage"),
        ("maxUnavailable", "one", "integer or percentage"),
        ("maxUnavailable", "1", "integer or percentage"),  # a string must be a percentage
        ("minAvailable", "150%", "greater than 100%"),
        ("maxUnavailable", -1, "greater than or equal to 0"),
    ],
)
def test_budget_value_the_api_server_refuses(report, field, value, why):
    budget = _budget(report, "misp-backend", "misp-modules")
    budget.clear()
    budget.update({field: value}, selector={"matchLabels": {"app.kubernetes.io/name": "misp-modules"}})
    assert_finds(workloads.disruption_budgets(report), "PodDisruptionBudget misp/misp-modules", f"spec.{field}", why)


def test_budget_with_both_fields(report):
    _budget(report, "misp-backend", "misp-modules").update(minAvailable=1, maxUnavailable=1)
    assert_finds(workloads.disruption_budgets(report), "PodDisruptionBudget misp/misp-modules", "not both")


def test_budget_with_an_empty_selector_covers_the_whole_namespace(report):
    """policy/v1: an empty selector selects every pod of the namespace, so this budget counts misp-web's
    and misp-workers' pods along with misp-modules' (a Service's empty selector would select nothing)."""
    budget = _budget(report, "misp-backend", "misp-modules")
    budget.clear()
    budget.update(selector={}, maxUnavailable=0)
    found = assert_finds(workloads.disruption_budgets(report), "PodDisruptionBudget misp/misp-modules", "allows no")
    assert "Deployment misp/misp-web" in str(found[0]) and "Deployment misp/misp-modules" in str(found[0])
    budget.update(selector=None)  # null selects nothing: no workload, no count
    assert not [p for p in workloads.disruption_budgets(report) if "PodDisruptionBudget misp/misp-modules" in str(p)]

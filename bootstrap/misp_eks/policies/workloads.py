"""Rules for every application workload: pinned images, resources, security contexts, ingress TLS."""

from __future__ import annotations

from collections.abc import Iterator

from misp_eks.naming import DASHBOARD_NAMESPACE, MISP_NAMESPACE
from misp_eks.policies.common import (
    EXAMPLE,
    all_containers,
    applied_trees,
    budget_selects,
    budget_value_error,
    everything,
    evictions_allowed,
    problem,
)
from misp_eks.problems import Problem
from misp_eks.validate.resources import (
    Resource,
    Tree,
    pod_spec,
    pod_spec_path,
    pod_template,
)
from misp_eks.validate.runner import Report

APP_NAMESPACES = (MISP_NAMESPACE, DASHBOARD_NAMESPACE)
# ALB TLS policy: TLS 1.3 and 1.2 with the restricted ciphers, plus hybrid post-quantum key exchange
# for the clients that offer it; the one AWS recommends (Elastic Load Balancing, "Security policies for
# your Application Load Balancer").
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"
# Capabilities misp-core's entrypoint needs as root (apps/misp/README.md); all in Pod Security baseline.
ROOT_CAPABILITIES = {
    "misp-core": {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL", "AUDIT_WRITE"},
    "prepare": {"CHOWN", "DAC_OVERRIDE", "FOWNER"},
}


def app_workloads(report: Report) -> Iterator[Resource]:
    for tree_report in applied_trees(report):
        for resource in tree_report.tree:
            if resource.namespace in APP_NAMESPACES and pod_template(resource) is not None:
                yield resource


def pinned_images(report: Report) -> Iterator[Problem]:
    """Every image has an exact tag (never latest); each misp-docker image runs one build per environment."""
    for env in sorted(report.environments):
        tags: dict[str, set[str]] = {}
        for resource in everything(report, env):
            if resource.namespace not in APP_NAMESPACES or pod_template(resource) is None:
                continue
            for field, item in all_containers(resource):
                image = str(item.get("image", ""))
                name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
                if not tag or tag == "latest":
                    yield problem(resource, f"{field}.image", f"{image} is not pinned to a version")
                elif name.startswith("ghcr.io/misp/misp-docker/"):
                    tags.setdefault(tag, set()).add(name)
        if len(tags) > 1:
            yield Problem(env, f"misp-docker images of different builds: {sorted(tags)}; use one tag for all")


def resources_set(report: Report) -> Iterator[Problem]:
    for resource in app_workloads(report):
        for field, item in all_containers(resource):
            limits = (item.get("resources") or {}).get("limits") or {}
            requests = (item.get("resources") or {}).get("requests") or {}
            if not {"cpu", "memory"} <= set(requests) or not {"cpu", "memory"} <= set(limits):
                yield problem(resource, f"{field}.resources", "set cpu and memory requests and limits")


def security_contexts(report: Report) -> Iterator[Problem]:
    """The most restrictive context each image allows; only misp-core's entrypoint runs as root."""
    for resource in app_workloads(report):
        spec = pod_spec(resource)
        prefix = pod_spec_path(resource)
        if (spec.get("securityContext") or {}).get("seccompProfile", {}).get("type") != "RuntimeDefault":
            yield problem(resource, f"{prefix}.securityContext.seccompProfile", "use RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            yield problem(resource, f"{prefix}.automountServiceAccountToken", "no pod here calls the Kubernetes API")
        for field, item in all_containers(resource):
            context = item.get("securityContext") or {}
            pod_context = spec.get("securityContext") or {}
            name = item.get("name", "")
            if context.get("allowPrivilegeEscalation") is not False:
                yield problem(resource, f"{field}.securityContext.allowPrivilegeEscalation", "must be false")
            capabilities = context.get("capabilities") or {}
            if capabilities.get("drop") != ["ALL"]:
                yield problem(resource, f"{field}.securityContext.capabilities.drop", "drop ALL")
            added = set(capabilities.get("add") or [])
            root = name in ROOT_CAPABILITIES and resource.namespace == MISP_NAMESPACE
            if added - (ROOT_CAPABILITIES[name] if root else set()):
                yield problem(resource, f"{field}.securityContext.capabilities.add", f"not allowed: {sorted(added)}")
            non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
            if not root and non_root is not True:
                yield problem(resource, f"{field}.securityContext.runAsNonRoot", "must run as non-root")
            if name != "misp-core" and context.get("readOnlyRootFilesystem") is not True:
                yield problem(resource, f"{field}.securityContext.readOnlyRootFilesystem", "must be read-only")


def ingress_problems(ingress: Resource, host: str, certificate: str, health_path: str) -> Iterator[Problem]:
    """The HTTPS entry every application shares: ALB, IP targets, HTTP->HTTPS, TLS 1.2+, health check."""
    expected = {
        "alb.ingress.kubernetes.io/scheme": EXAMPLE.ingress_scheme,
        "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/listen-ports": '[{"HTTP": 80}, {"HTTPS": 443}]',
        "alb.ingress.kubernetes.io/ssl-redirect": "443",
        "alb.ingress.kubernetes.io/certificate-arn": certificate,
        "alb.ingress.kubernetes.io/ssl-policy": SSL_POLICY,
        "alb.ingress.kubernetes.io/inbound-cidrs": EXAMPLE.ingress_allowed_cidrs,
        "alb.ingress.kubernetes.io/wafv2-acl-arn": EXAMPLE.waf_acl_arn,
        "alb.ingress.kubernetes.io/healthcheck-path": health_path,
    }
    for key, value in expected.items():
        if ingress.annotations.get(key) != value:
            yield problem(ingress, f"metadata.annotations.{key}", f"must be {value!r}")
    if ingress.spec.get("ingressClassName") != "alb":
        yield problem(ingress, "spec.ingressClassName", "must be alb (the AWS Load Balancer Controller)")
    hosts = [rule.get("host") for rule in ingress.spec.get("rules") or []]
    if hosts != [host]:
        yield problem(ingress, "spec.rules", f"one rule, for {host} (external-dns publishes it)")


def _network_rule_problems(resource: Resource) -> Iterator[Problem]:
    for index, rule in enumerate(resource.spec.get("ingress") or []):
        for peer in rule.get("from") or []:
            cidr = (peer.get("ipBlock") or {}).get("cidr")
            if cidr in ("0.0.0.0/0", "::/0"):
                yield problem(resource, f"spec.ingress[{index}].from", "no ingress from anywhere")
        if not rule.get("from") or not rule.get("ports"):
            yield problem(resource, f"spec.ingress[{index}]", "name both the peers and the ports")
    for index, rule in enumerate(resource.spec.get("egress") or []):
        if not rule.get("to") or not rule.get("ports"):
            yield problem(resource, f"spec.egress[{index}]", "name both the destinations and the ports")


def network_rules(report: Report) -> Iterator[Problem]:
    """Every allow in the application namespaces names its peers and its ports."""
    for tree_report in applied_trees(report):
        for resource in tree_report.tree.of_kind("NetworkPolicy"):
            if resource.namespace in APP_NAMESPACES:
                yield from _network_rule_problems(resource)


# What the disruption controller scales a budget against: controllers with a scale subresource
# (pkg/controller/disruption/disruption.go getExpectedScale: ReplicationController, Deployment's
# ReplicaSet, StatefulSet, or any scale subresource).
SCALED_KINDS = ("Deployment", "StatefulSet", "ReplicaSet")


def expected_pods(tree: Tree, workload: Resource) -> int:
    """The pods a budget can count on: the HPA's minReplicas when one scales the workload, else replicas."""
    for autoscaler in tree.of_kind("HorizontalPodAutoscaler"):
        target = autoscaler.spec.get("scaleTargetRef") or {}
        if (
            autoscaler.namespace == workload.namespace
            and target.get("kind") == workload.kind
            and target.get("name") == workload.name
        ):
            return int(autoscaler.spec.get("minReplicas", 1))  # autoscaling/v2 default: 1
    return int(workload.spec.get("replicas", 1))  # apps/v1 default: 1


def _budget_problems(tree: Tree, budget: Resource) -> Iterator[Problem]:
    fields = [f for f in ("minAvailable", "maxUnavailable") if budget.spec.get(f) is not None]
    if len(fields) > 1:
        # pkg/apis/policy/validation/validation.go: "minAvailable and maxUnavailable cannot be both set".
        yield problem(budget, "spec", "set minAvailable or maxUnavailable, not both")
        return
    for field in fields:
        error = budget_value_error(budget.spec[field])
        if error is not None:
            yield problem(budget, f"spec.{field}", f"{budget.spec[field]!r} {error}: the API server refuses it")
            return
    workloads = [w for w in tree.of_kind(*SCALED_KINDS) if budget_selects(budget, w)]
    if not workloads:
        return
    names = ", ".join(w.ref for w in workloads)
    expected = sum(expected_pods(tree, w) for w in workloads)
    if evictions_allowed(budget.spec, expected) < 1:
        yield problem(
            budget,
            f"spec.{fields[0]}" if fields else "spec",
            f"allows no eviction of the {expected} pod(s) of {names} (at their fewest)"
            + ("" if fields else ": with neither minAvailable nor maxUnavailable it protects every pod")
            + ": node drains and cluster upgrades would block on it",
        )


def disruption_budgets(report: Report) -> Iterator[Problem]:
    """Every PodDisruptionBudget lets at least one pod go when its workloads run at their fewest."""
    for env in sorted(report.environments):
        tree = everything(report, env)
        for budget in tree.of_kind("PodDisruptionBudget"):
            yield from _budget_problems(tree, budget)


POLICIES = (pinned_images, resources_set, security_contexts, network_rules, disruption_budgets)

"""Small helpers the policies share: finding objects in a report and reading pod specs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from misp_eks.cluster_vars import ClusterVars
from misp_eks.environment import Environment
from misp_eks.problems import Problem
from misp_eks.validate.netpol import label_selector_matches
from misp_eks.validate.resources import (
    Resource,
    Tree,
    pod_labels,
    pod_spec,
    pod_spec_path,
)
from misp_eks.validate.runner import Report, TreeReport

EXAMPLE = ClusterVars.example()
"""What ${...} became in the built trees: checks compare against these values."""


def environments(report: Report) -> list[Environment]:
    return [report.environments[name] for name in sorted(report.environments)]


def applied(report: Report, env: str, name: str) -> Tree | None:
    try:
        return report.applied(env, name)
    except KeyError:
        return None


def applied_trees(report: Report) -> Iterator[TreeReport]:
    for env in sorted(report.environments):
        yield from report.applied_trees(env)


def everything(report: Report, env: str) -> Tree:
    """Every object every Flux Kustomization of ``env`` applies."""
    return Tree(path=env, resources=[r for t in report.applied_trees(env) for r in t.tree])


def problem(resource: Resource, field: str, message: str) -> Problem:
    return Problem(resource.origin, message, obj=resource.ref, field=field)


def dig(data: Any, *keys: str | int) -> Any:
    """``data[k1][k2]...`` or None."""
    for key in keys:
        if isinstance(data, dict) and isinstance(key, str):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        else:
            return None
    return data


def container(resource: Resource, name: str) -> tuple[int, dict[str, Any]] | None:
    for index, item in enumerate(pod_spec(resource).get("containers") or []):
        if item.get("name") == name:
            return index, item
    return None


def env_entries(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry.get("name"): entry for entry in item.get("env") or []}


def all_containers(resource: Resource) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field path, container) for every init and regular container of a workload."""
    spec_path = pod_spec_path(resource)
    for group in ("initContainers", "containers"):
        for index, item in enumerate(pod_spec(resource).get(group) or []):
            yield f"{spec_path}.{group}[{index}]", item


def helm_values(release: Resource) -> dict[str, Any]:
    value = release.spec.get("values")
    return value if isinstance(value, dict) else {}


def minimum_replicas(env: Environment) -> int:
    """Replicas a serving tier needs: two in production, so that a node or zone can go."""
    return 2 if env.settings.tier == "production" else 1


def zone_spread_problems(workload: Resource) -> Iterator[Problem]:
    spreads = pod_spec(workload).get("topologySpreadConstraints") or []
    if not any(
        s.get("topologyKey") == "topology.kubernetes.io/zone" and s.get("whenUnsatisfiable") == "DoNotSchedule"
        for s in spreads
    ):
        yield problem(
            workload, f"{pod_spec_path(workload)}.topologySpreadConstraints", "spread over zones (DoNotSchedule)"
        )


def budget_selects(budget: Resource, workload: Resource) -> bool:
    """policy/v1 PodDisruptionBudgetSpec.selector: "A null selector will match no pods, while an empty ({})
    selector will select all pods within the namespace" (kubernetes/api policy/v1/types.go), unlike a
    Service's selector."""
    return budget.namespace == workload.namespace and label_selector_matches(
        budget.spec.get("selector"), pod_labels(workload)
    )


def disruption_budget_problems(tree: Tree, workload: Resource) -> Iterator[Problem]:
    """A PodDisruptionBudget that selects the workload's pods and keeps at least one of them."""
    budgets = [p for p in tree.of_kind("PodDisruptionBudget") if budget_selects(p, workload)]
    if not budgets:
        yield problem(workload, "", "needs a PodDisruptionBudget")
    for budget in budgets:
        if str(budget.spec.get("maxUnavailable")) == "100%" or str(budget.spec.get("minAvailable")) in ("0", "0%"):
            yield problem(budget, "spec", "must keep at least one pod")


PERCENT = re.compile(r"[0-9]+%")


def budget_value_error(value: Any) -> str | None:
    """Why the API server refuses a minAvailable or maxUnavailable, or None.

    kubernetes/kubernetes pkg/apis/policy/validation/validation.go ValidatePodDisruptionBudgetSpec:
    ValidatePositiveIntOrPercent (an int >= 0, or a string matching IsValidPercent's ``^[0-9]+%$``) and
    IsNotMoreThan100Percent.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        return "must be an integer or a percentage"
    if isinstance(value, int):
        return "must be greater than or equal to 0" if value < 0 else None
    if not PERCENT.fullmatch(value):
        return "must be an integer or percentage (e.g '5%')"
    return "must not be greater than 100%" if int(value[:-1]) > 100 else None


def scaled(value: int | str, total: int) -> int:
    """An IntOrString count of ``total``: a percentage rounds up, as the disruption controller scales both fields.

    kubernetes/kubernetes pkg/controller/disruption/disruption.go getExpectedPodCount (commit 003e862):
    intstr.GetScaledValueFromIntOrPercent(..., roundUp=true) for minAvailable and maxUnavailable.
    """
    if isinstance(value, str) and value.endswith("%"):
        return -(-int(value[:-1]) * total // 100)
    return int(value)


def evictions_allowed(budget: dict[str, Any], expected: int) -> int:
    """How many of ``expected`` healthy pods a policy/v1 PodDisruptionBudget lets the eviction API take.

    As getExpectedPodCount: maxUnavailable gives desiredHealthy = expected - scaled(maxUnavailable);
    minAvailable gives desiredHealthy = scaled(minAvailable). Neither set leaves expectedCount at 0, and
    updatePdbStatus then forces disruptionsAllowed to 0: no eviction, ever.
    """
    if budget.get("maxUnavailable") is not None:
        desired = max(expected - scaled(budget["maxUnavailable"], expected), 0)
    elif budget.get("minAvailable") is not None:
        desired = scaled(budget["minAvailable"], expected)
    else:
        return 0
    return max(expected - desired, 0)

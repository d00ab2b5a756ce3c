"""Small helpers the policies share: finding objects in a report and reading pod specs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from misp_eks.cluster_vars import ClusterVars
from misp_eks.environment import Environment
from misp_eks.problems import Problem
from misp_eks.validate.resources import (
    Resource,
    Tree,
    pod_labels,
    pod_spec,
    pod_spec_path,
    selector_matches,
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


def disruption_budget_problems(tree: Tree, workload: Resource) -> Iterator[Problem]:
    """A PodDisruptionBudget that selects the workload's pods and keeps at least one of them."""
    budgets = [
        p for p in tree.of_kind("PodDisruptionBudget") if selector_matches(p.spec.get("selector"), pod_labels(workload))
    ]
    if not budgets:
        yield problem(workload, "", "needs a PodDisruptionBudget")
    for budget in budgets:
        if str(budget.spec.get("maxUnavailable")) == "100%" or str(budget.spec.get("minAvailable")) in ("0", "0%"):
            yield problem(budget, "spec", "must keep at least one pod")

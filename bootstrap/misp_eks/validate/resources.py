"""Kubernetes objects as built from a tree, with the file each one came from."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"

# Built-in kinds that are not namespaced (the ones a GitOps repository may plausibly hold).
CLUSTER_SCOPED_BUILTINS = frozenset(
    {
        "APIService",
        "ClusterRole",
        "ClusterRoleBinding",
        "CSIDriver",
        "CustomResourceDefinition",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "PersistentVolume",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
    }
)

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")


@dataclass(frozen=True)
class Resource:
    obj: dict[str, Any]
    origin: str
    """Repository-relative file the object was read from (the tree's path when unknown)."""

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        value = self.obj.get("metadata")
        return value if isinstance(value, dict) else {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "")

    @property
    def spec(self) -> dict[str, Any]:
        value = self.obj.get("spec")
        return value if isinstance(value, dict) else {}

    @property
    def labels(self) -> dict[str, str]:
        value = self.metadata.get("labels")
        return value if isinstance(value, dict) else {}

    @property
    def annotations(self) -> dict[str, str]:
        value = self.metadata.get("annotations")
        return value if isinstance(value, dict) else {}

    @property
    def ref(self) -> str:
        """``Kind namespace/name`` (or ``Kind name`` when cluster-scoped): how messages name objects."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass
class Tree:
    """The objects one kustomization directory builds to, as one Flux Kustomization applies them."""

    path: str
    """Repository-relative directory."""
    resources: list[Resource] = field(default_factory=list)

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def of_kind(self, *kinds: str) -> list[Resource]:
        return [r for r in self.resources if r.kind in kinds]

    def get(self, kind: str, name: str, namespace: str | None = None) -> Resource | None:
        for resource in self.resources:
            if (
                resource.kind == kind
                and resource.name == name
                and (namespace is None or resource.namespace == namespace)
            ):
                return resource
        return None

    def one(self, kind: str, name: str, namespace: str | None = None) -> Resource:
        found = self.get(kind, name, namespace)
        if found is None:
            raise KeyError(f"{self.path}: no {kind} {name}")
        return found


def pod_template(resource: Resource) -> dict[str, Any] | None:
    """The pod template of a workload (the CronJob's job template's), or None."""
    spec = resource.spec
    if resource.kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    elif resource.kind not in WORKLOAD_KINDS:
        return None
    template = spec.get("template")
    return template if isinstance(template, dict) else None


def pod_spec_path(resource: Resource) -> str:
    """Where a workload's pod spec is, for naming its fields in problems."""
    return "spec.jobTemplate.spec.template.spec" if resource.kind == "CronJob" else "spec.template.spec"


def pod_spec(resource: Resource) -> dict[str, Any]:
    template = pod_template(resource) or {}
    return template.get("spec") or {}


def pod_labels(resource: Resource) -> dict[str, str]:
    template = pod_template(resource) or {}
    metadata = template.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    return labels if isinstance(labels, dict) else {}


def containers(resource: Resource, include_init: bool = True) -> Iterable[dict[str, Any]]:
    spec = pod_spec(resource)
    keys = ("initContainers", "containers") if include_init else ("containers",)
    for key in keys:
        yield from spec.get(key) or []


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Label-selector semantics for matchLabels and matchExpressions (plain maps too, as Services use)."""
    if not selector:
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return all(labels.get(k) == v for k, v in selector.items())
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = (
            expression.get("key"),
            expression.get("operator"),
            expression.get("values") or [],
        )
        present = key in labels
        if operator == "In" and (not present or labels[key] not in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True

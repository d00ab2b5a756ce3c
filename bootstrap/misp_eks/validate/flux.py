"""Flux Kustomizations as kustomize-controller applies them: directory, extras, variables."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from misp_eks import cluster_vars
from misp_eks.validate.resources import Resource

KUSTOMIZATION_API = "kustomize.toolkit.fluxcd.io/v1"
FLUX_NAMESPACE = "flux-system"
BOOTSTRAP_ORIGIN = "(written by flux bootstrap)"


@dataclass(frozen=True)
class VarSource:
    kind: str
    name: str
    optional: bool


@dataclass(frozen=True)
class FluxKustomization:
    env: str
    name: str
    namespace: str
    path: str
    """Repository-relative directory, normalised (no leading ./)."""
    origin: str
    spec: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def ref(self) -> str:
        return f"Kustomization {self.namespace}/{self.name}"

    @property
    def depends_on(self) -> list[tuple[str, str]]:
        items = self.spec.get("dependsOn")
        return [
            (str(item.get("name", "")), str(item.get("namespace") or self.namespace))
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict)
        ]

    @property
    def source_ref(self) -> tuple[str, str, str]:
        ref = self.spec.get("sourceRef") or {}
        return str(ref.get("kind", "")), str(ref.get("name", "")), str(ref.get("namespace") or self.namespace)

    @property
    def post_build(self) -> dict[str, Any]:
        value = self.spec.get("postBuild")
        return value if isinstance(value, dict) else {}

    @property
    def inline_vars(self) -> dict[str, str]:
        values = self.post_build.get("substitute")
        return {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else {}

    @property
    def var_sources(self) -> list[VarSource]:
        items = self.post_build.get("substituteFrom")
        return [
            VarSource(str(item.get("kind", "")), str(item.get("name", "")), bool(item.get("optional", False)))
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict)
        ]

    def build_extras(self) -> dict[str, Any]:
        """What kustomize-controller adds to the kustomization at ``path`` from this spec.

        Upstream: fluxcd/pkg kustomize/kustomize_generator.go (namespace, namePrefix, nameSuffix,
        patches, components, images). Component paths are relative to ``path``.
        """
        extras: dict[str, Any] = {}
        if self.spec.get("targetNamespace"):
            extras["namespace"] = self.spec["targetNamespace"]
        for key in ("namePrefix", "nameSuffix", "patches", "images", "components"):
            if self.spec.get(key):
                extras[key] = self.spec[key]
        return extras


def dependencies(items: Iterable[FluxKustomization], start: FluxKustomization) -> set[tuple[str, str]]:
    """(namespace, name) of every Kustomization ``start`` depends on, directly or through others."""
    by_key = {(k.namespace, k.name): k for k in items}
    seen: set[tuple[str, str]] = set()
    pending = [start]
    while pending:
        for name, namespace in pending.pop().depends_on:
            if (namespace, name) not in seen:
                seen.add((namespace, name))
                if (namespace, name) in by_key:
                    pending.append(by_key[(namespace, name)])
    return seen


def normalise_path(path: str) -> str:
    """``./apps/misp/prod`` and ``apps/misp/prod/`` both become ``apps/misp/prod``."""
    stripped = path.strip().removeprefix("./")
    return posixpath.normpath(stripped) if stripped else "."


def from_resource(env: str, resource: Resource) -> FluxKustomization:
    spec = resource.spec
    return FluxKustomization(
        env=env,
        name=resource.name,
        namespace=resource.namespace or FLUX_NAMESPACE,
        path=normalise_path(str(spec.get("path", ""))),
        origin=resource.origin,
        spec=spec,
    )


def bootstrap_root(env: str, cluster_dir: str) -> FluxKustomization:
    """The ``flux-system`` Kustomization that ``flux bootstrap --path=clusters/<env>`` writes.

    Upstream: fluxcd/flux2 pkg/manifestgen/sync (interval 10m, prune, path, GitRepository flux-system).
    """
    return FluxKustomization(
        env=env,
        name=FLUX_NAMESPACE,
        namespace=FLUX_NAMESPACE,
        path=cluster_dir,
        origin=BOOTSTRAP_ORIGIN,
        spec={
            "interval": "10m0s",
            "path": f"./{cluster_dir}",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": FLUX_NAMESPACE},
        },
    )


def bootstrap_source(env: str) -> Resource:
    """The GitRepository that flux bootstrap creates beside its Kustomization."""
    return Resource(
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": FLUX_NAMESPACE, "namespace": FLUX_NAMESPACE},
            "spec": {"interval": "1m0s", "ref": {"branch": "main"}, "url": "ssh://git@example.invalid/repo"},
        },
        BOOTSTRAP_ORIGIN,
    )


def is_cluster_vars(source: VarSource, namespace: str) -> bool:
    return source.kind == "ConfigMap" and source.name == cluster_vars.NAME and namespace == cluster_vars.NAMESPACE

"""Validate the whole repository: every environment, every Flux Kustomization, every kustomization directory."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from misp_eks import kind
from misp_eks.cluster_vars import ClusterVars
from misp_eks.environment import CLUSTER_FILE, CLUSTERS_DIR, Environment, environment_names, load_environment
from misp_eks.envsubst import invalid_names
from misp_eks.problems import Problem, UserError
from misp_eks.provision.names import name_problems
from misp_eks.validate import graph, references
from misp_eks.validate.build import build_tree
from misp_eks.validate.discovery import Layout, discover
from misp_eks.validate.flux import (
    KUSTOMIZATION_API,
    FluxKustomization,
    bootstrap_root,
    bootstrap_source,
    dependencies,
    from_resource,
    is_cluster_vars,
)
from misp_eks.validate.resources import Resource, Tree
from misp_eks.validate.schemas import KubernetesSchemas, custom_errors, flux_validators, is_builtin_group

INVALID_NAME = "variable name {} is invalid: Flux accepts letters, digits and _ only, not first a digit"


@dataclass
class TreeReport:
    env: str
    path: str
    kustomization: FluxKustomization | None
    """The Flux Kustomization that applies this tree; None for a base validated on its own."""
    tree: Tree
    problems: list[Problem]
    seconds: float
    via: str = ""
    valid: list[Resource] = field(default_factory=list)
    """The objects the schemas accepted: only their shape is known, so only they are followed."""
    variables_used: set[str] = field(default_factory=set)

    @property
    def label(self) -> str:
        if self.kustomization is not None:
            return f"{self.env}: {self.path} ({self.kustomization.name})"
        return f"{self.env}: {self.path} (included by {self.via})"


@dataclass
class Report:
    root: Path
    environments: dict[str, Environment] = field(default_factory=dict)
    kind_clusters: dict[str, kind.KindEnvironment] = field(default_factory=dict)
    """The end-to-end test cluster (clusters/kind): validated like an environment, held to no AWS policy."""
    trees: list[TreeReport] = field(default_factory=list)
    kustomizations: dict[str, list[FluxKustomization]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    """Problems outside any one tree: environments, the Flux graph, project policies."""
    seconds: float = 0.0

    def applied(self, env: str, name: str) -> Tree:
        """The tree that Flux Kustomization ``name`` applies in environment ``env``."""
        for item in self.trees:
            if item.env == env and item.kustomization is not None and item.kustomization.name == name:
                return item.tree
        raise KeyError(f"{env}: no Flux Kustomization {name}")

    def applied_trees(self, env: str) -> list[TreeReport]:
        return [t for t in self.trees if t.env == env and t.kustomization is not None]

    def all_problems(self) -> list[Problem]:
        return [*self.problems, *(p for t in self.trees for p in t.problems)]

    @property
    def ok(self) -> bool:
        return not self.all_problems()


def _schema_problems(resource: Resource, kube: KubernetesSchemas) -> list[Problem]:
    if not resource.api_version or not resource.kind:
        return [Problem(resource.origin, "object without apiVersion or kind", obj=resource.ref)]
    if is_builtin_group(resource.api_version):
        errors = kube.errors(resource.obj)
        if errors is None:
            return [
                Problem(
                    resource.origin,
                    f"apiVersion {resource.api_version} has no kind {resource.kind} in Kubernetes {kube.version}",
                    obj=resource.ref,
                    field="apiVersion",
                )
            ]
    else:
        errors = custom_errors(resource.obj)
        if errors is None:
            return [
                Problem(
                    resource.origin,
                    f"nothing validates custom kind {resource.kind} ({resource.api_version}); "
                    "add a schema to misp_eks.validate.schemas",
                    obj=resource.ref,
                    field="apiVersion",
                )
            ]
    return [Problem(resource.origin, e.message, obj=resource.ref, field=e.field) for e in errors]


Target = Environment | kind.KindEnvironment


def cluster_vars_of(target: Target) -> dict[str, str]:
    """The cluster-vars a target's cluster holds: the documented examples, or kind's own."""
    if isinstance(target, kind.KindEnvironment):
        return kind.cluster_vars(target.config).data()
    return ClusterVars.example().data()


def _variables(
    item: FluxKustomization, known: list[Resource], cluster_vars: dict[str, str]
) -> tuple[dict[str, str] | None, list[Problem]]:
    """The variables Flux substitutes for ``item`` (None when it has no postBuild)."""
    if not item.post_build:
        return None, []
    variables: dict[str, str] = {}
    problems = []
    for index, source in enumerate(item.var_sources):
        if is_cluster_vars(source, item.namespace):
            variables.update(cluster_vars)
            continue
        found = next(
            (r for r in known if r.kind == source.kind and r.name == source.name and r.namespace == item.namespace),
            None,
        )
        if found is not None:
            data = found.obj.get("data") or {}
            if source.kind == "Secret":
                try:
                    data = {k: base64.b64decode(str(v), validate=True).decode() for k, v in data.items()}
                except (ValueError, UnicodeDecodeError):
                    problems.append(Problem(found.origin, "data is not valid base64 text", obj=found.ref, field="data"))
                    continue
                data.update(found.obj.get("stringData") or {})  # the API server merges stringData into data
            for name in invalid_names(data):
                problems.append(Problem(found.origin, INVALID_NAME.format(name), obj=found.ref, field=f"data.{name}"))
            variables.update({k: str(v) for k, v in data.items()})
        elif not source.optional:
            problems.append(
                Problem(
                    item.origin,
                    f"{source.kind} {item.namespace}/{source.name} is neither the bootstrap's cluster-vars "
                    "nor defined in this repository",
                    obj=item.ref,
                    field=f"spec.postBuild.substituteFrom[{index}]",
                )
            )
    for name in invalid_names(item.inline_vars):
        problems.append(
            Problem(item.origin, INVALID_NAME.format(name), obj=item.ref, field=f"spec.postBuild.substitute.{name}")
        )
    variables.update(item.inline_vars)
    return variables, problems


class _Validator:
    def __init__(self, root: Path, workers: int) -> None:
        self.root = root
        self.report = Report(root=root)
        self.pool = ThreadPoolExecutor(max_workers=workers)
        self.schemas: dict[str, KubernetesSchemas] = {}
        self.all_environments_loaded = True

    def kube(self, version: str) -> KubernetesSchemas:
        if version not in self.schemas:
            self.schemas[version] = KubernetesSchemas(version)
        return self.schemas[version]

    def build(
        self,
        env: Target,
        path: str,
        item: FluxKustomization | None,
        variables: dict[str, str] | None,
        pre_problems: list[Problem],
        via: str = "",
    ) -> TreeReport:
        started = time.perf_counter()
        label = f"{path} ({item.ref})" if item else path
        extras = item.build_extras() if item else None
        result = build_tree(self.root, path, extras, variables, label)
        problems = [*pre_problems, *result.problems]
        kube = self.kube(env.kubernetes_version)
        valid = []
        for resource in result.tree:
            found = _schema_problems(resource, kube)
            problems.extend(found)
            if not found:
                valid.append(resource)
        seconds = time.perf_counter() - started
        return TreeReport(env.name, path, item, result.tree, problems, seconds, via, valid, result.variables_used)

    def run(self) -> Report:
        started = time.perf_counter()
        warm = self.pool.submit(flux_validators)  # the Flux models take a second to import
        layout = discover(self.root)
        self.report.problems.extend(layout.problems)
        for name in environment_names(self.root):
            try:
                env = load_environment(self.root, name)
            except UserError as error:
                self.report.problems.append(error.problem)
                self.all_environments_loaded = False
                continue
            try:
                self.kube(env.kubernetes_version)
            except ValueError as error:
                where = f"{CLUSTERS_DIR}/{name}/{CLUSTER_FILE}"
                self.report.problems.append(Problem(where, str(error), obj="ClusterConfig", field="metadata.version"))
                self.all_environments_loaded = False
                continue
            self.report.environments[name] = env
            self.report.problems.extend(name_problems(env))
        try:
            kind_cluster = kind.load(self.root)
        except UserError as error:
            self.report.problems.append(error.problem)
            self.all_environments_loaded = False
            kind_cluster = None
        if kind_cluster is not None:
            self.kube(kind_cluster.kubernetes_version)
            self.report.kind_clusters[kind_cluster.name] = kind_cluster
        warm.result()
        self._applied_trees()
        self._bases(layout)
        self._references()
        self._graphs()
        self.pool.shutdown()
        self.report.seconds = time.perf_counter() - started
        return self.report

    def targets(self) -> list[Target]:
        return [*self.report.environments.values(), *self.report.kind_clusters.values()]

    def _applied_trees(self) -> None:
        """Build every Flux Kustomization's tree, discovering them from the trees already built.

        A Kustomization that substitutes from something other than cluster-vars waits until every
        other tree is built, so that a ConfigMap or Secret applied by its dependencies is known.
        """
        pending: dict[Future[TreeReport], Target] = {}
        deferred: list[tuple[Target, FluxKustomization]] = []
        seen: dict[tuple[str, str, str], set[str]] = {}

        def start(env: Target, item: FluxKustomization) -> None:
            known = [r for t in self.report.trees if t.env == env.name for r in t.tree]
            variables, problems = _variables(item, known, cluster_vars_of(env))
            pending[self.pool.submit(self.build, env, item.path, item, variables, problems)] = env

        def submit(env: Target, item: FluxKustomization) -> None:
            key = (env.name, item.namespace, item.name)
            origins = seen.setdefault(key, set())
            if item.origin in origins:
                return
            first = not origins
            origins.add(item.origin)
            self.report.kustomizations.setdefault(env.name, []).append(item)
            if not first:
                return  # the graph check reports the second definition
            if not (self.root / item.path).is_dir():
                return  # reported by the graph check
            if any(not is_cluster_vars(source, item.namespace) for source in item.var_sources):
                deferred.append((env, item))
            else:
                start(env, item)

        for env in self.targets():
            submit(env, bootstrap_root(env.name, f"{CLUSTERS_DIR}/{env.name}"))
        while pending or deferred:
            if not pending:
                start(*deferred.pop(0))
                continue
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                env = pending.pop(future)
                tree_report = future.result()
                self.report.trees.append(tree_report)
                for resource in tree_report.valid:
                    if resource.kind == "Kustomization" and resource.api_version == KUSTOMIZATION_API:
                        submit(env, from_resource(env.name, resource))

    def _bases(self, layout: Layout) -> None:
        applied = {k.path for items in self.report.kustomizations.values() for k in items}
        targets = {t.name: t for t in self.targets()}
        futures = []
        for directory in layout.directories:
            if directory in applied or directory in layout.components:
                continue
            providers = [
                (targets[env], item)
                for env, items in self.report.kustomizations.items()
                for item in items
                if directory in layout.closure(item.path)
            ]
            if not providers:
                if self.all_environments_loaded:  # otherwise the environment that failed may be what applies it
                    self.report.problems.append(
                        Problem(directory, "no Flux Kustomization applies or includes this kustomization")
                    )
                continue
            done: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
            for env, item in providers:
                known = [r for t in self.report.trees if t.env == env.name for r in t.tree]
                variables, _ = _variables(item, known, cluster_vars_of(env))
                key = (env.kubernetes_version, tuple(sorted((variables or {}).items())))
                if key in done:
                    continue
                done.add(key)
                futures.append(self.pool.submit(self.build, env, directory, None, variables, [], item.name))
        self.report.trees.extend(f.result() for f in futures)

    def _references(self) -> None:
        """Reference checks need the trees each tree depends on, so they run once all are built."""
        for env_name, items in self.report.kustomizations.items():
            trees = {(t.kustomization.namespace, t.kustomization.name): t for t in self.report.applied_trees(env_name)}
            prepared = self._prepared(env_name)
            for item in items:
                tree_report = trees.get((item.namespace, item.name))
                if tree_report is not None:
                    context = [*prepared, *(trees[k].tree for k in dependencies(items, item) if k in trees)]
                    tree_report.problems.extend(references.check_tree(tree_report.tree, context))

    def _prepared(self, env_name: str) -> list[Tree]:
        """What exists before Flux applies anything: in kind, what the workflow applies (misp_eks.kind)."""
        cluster = self.report.kind_clusters.get(env_name)
        if cluster is None:
            return []
        origin = kind.config_path(self.root).relative_to(self.root).as_posix()
        return [Tree(path=origin, resources=[Resource(obj, origin) for obj in kind.prepared(cluster.config)])]

    def _graphs(self) -> None:
        for env_name, items in self.report.kustomizations.items():
            resources = [r for t in self.report.trees if t.env == env_name and t.kustomization for r in t.tree]
            sources = [r for r in resources if r.kind in graph.SOURCE_KINDS] + [bootstrap_source(env_name)]
            self.report.problems.extend(graph.check_kustomizations(self.root, items, sources))
            releases = [r for t in self.report.applied_trees(env_name) for r in t.valid if r.kind == "HelmRelease"]
            self.report.problems.extend(graph.check_helmreleases(releases, sources))


def validate_repository(
    root: Path,
    workers: int | None = None,
    policies: Iterable[Callable[[Report], Iterable[Problem]]] = (),
) -> Report:
    """Validate ``root``; every problem found is in the report, nothing is raised for bad input."""
    report = _Validator(root, workers or max(2, os.cpu_count() or 2)).run()
    for policy in policies:
        report.problems.extend(policy(report))
    return report

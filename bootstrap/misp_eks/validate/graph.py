"""The Flux graph of one environment: paths, dependencies, sources and chart versions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from misp_eks.kustomize import kustomization_file
from misp_eks.problems import Problem
from misp_eks.validate.flux import FluxKustomization
from misp_eks.validate.resources import Resource

EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
SOURCE_KINDS = ("GitRepository", "OCIRepository", "Bucket", "HelmRepository", "HelmChart")


def _cycle(nodes: dict[tuple[str, str], list[tuple[str, str]]]) -> list[tuple[str, str]] | None:
    """A dependency cycle, as a list of nodes, or None."""
    state: dict[tuple[str, str], int] = {}
    stack: list[tuple[str, str]] = []

    def visit(node: tuple[str, str]) -> list[tuple[str, str]] | None:
        state[node] = 1
        stack.append(node)
        for dep in nodes.get(node, []):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep in nodes and state.get(dep) is None:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in nodes:
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return None


def check_kustomizations(
    root: Path, kustomizations: Iterable[FluxKustomization], sources: list[Resource]
) -> Iterator[Problem]:
    items = list(kustomizations)
    by_key: dict[tuple[str, str], FluxKustomization] = {}
    for item in items:
        key = (item.namespace, item.name)
        if key in by_key and by_key[key].origin != item.origin:
            yield Problem(item.origin, f"defined twice (also in {by_key[key].origin})", obj=item.ref)
        by_key[key] = item
    source_keys = {(s.kind, s.namespace, s.name) for s in sources}
    for item in items:
        directory = root / item.path
        if not directory.is_dir():
            yield Problem(item.origin, f"path {item.path} does not exist", obj=item.ref, field="spec.path")
        elif kustomization_file(directory) is None:
            yield Problem(item.origin, f"path {item.path} has no kustomization.yaml", obj=item.ref, field="spec.path")
        for index, (name, namespace) in enumerate(item.depends_on):
            if (namespace, name) not in by_key:
                yield Problem(
                    item.origin,
                    f"no Kustomization {namespace}/{name}",
                    obj=item.ref,
                    field=f"spec.dependsOn[{index}]",
                )
        kind, name, namespace = item.source_ref
        if (kind, namespace, name) not in source_keys:
            yield Problem(item.origin, f"no {kind} {namespace}/{name}", obj=item.ref, field="spec.sourceRef")
    graph = {(k.namespace, k.name): [(ns, n) for n, ns in k.depends_on] for k in items}
    cycle = _cycle(graph)
    if cycle:
        first = by_key[cycle[0]]
        names = " -> ".join(f"{ns}/{n}" for ns, n in cycle)
        yield Problem(first.origin, f"dependsOn cycle: {names}", obj=first.ref, field="spec.dependsOn")


def check_helmreleases(releases: list[Resource], sources: list[Resource]) -> Iterator[Problem]:
    source_keys = {(s.kind, s.namespace, s.name) for s in sources}
    release_keys = {(r.namespace, r.name) for r in releases}
    for release in releases:
        chart = (release.spec.get("chart") or {}).get("spec") or {}
        if chart:
            ref = chart.get("sourceRef") or {}
            key = (ref.get("kind"), ref.get("namespace") or release.namespace, ref.get("name"))
            if key not in source_keys:
                yield Problem(
                    release.origin,
                    f"no {key[0]} {key[1]}/{key[2]}",
                    obj=release.ref,
                    field="spec.chart.spec.sourceRef",
                )
            version = str(chart.get("version") or "")
            if not EXACT_VERSION.match(version):
                yield Problem(
                    release.origin,
                    f"chart version {version or '(none)'!r} is not an exact version",
                    obj=release.ref,
                    field="spec.chart.spec.version",
                )
        chart_ref = release.spec.get("chartRef")
        if isinstance(chart_ref, dict):
            key = (
                chart_ref.get("kind"),
                chart_ref.get("namespace") or release.namespace,
                chart_ref.get("name"),
            )
            if key not in source_keys:
                yield Problem(release.origin, f"no {key[0]} {key[1]}/{key[2]}", obj=release.ref, field="spec.chartRef")
        if not chart and not isinstance(chart_ref, dict):
            yield Problem(release.origin, "needs spec.chart or spec.chartRef", obj=release.ref, field="spec")
        for index, dep in enumerate(release.spec.get("dependsOn") or []):
            if not isinstance(dep, dict):
                continue  # the schema check reports it
            key = (dep.get("namespace") or release.namespace, dep.get("name"))
            if key not in release_keys:
                yield Problem(
                    release.origin,
                    f"no HelmRelease {key[0]}/{key[1]}",
                    obj=release.ref,
                    field=f"spec.dependsOn[{index}]",
                )

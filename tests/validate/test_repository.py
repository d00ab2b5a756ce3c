"""The real repository validates: every tree of every environment, the Flux graph and the project policies.

The repository is validated once per test process (fixtures.repository_report): the same run gives the
test ids at collection time (one test per built tree) and the report the tests look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from misp_eks.cluster_vars import ClusterVars
from misp_eks.environment import environment_names
from misp_eks.validate.discovery import FLUX_DIRS, discover
from misp_eks.validate.flux import KUSTOMIZATION_API, is_cluster_vars
from misp_eks.validate.runner import Report, TreeReport

from .fixtures import render, repository_report

ENVIRONMENTS = {"prod", "staging"}
CRASHED = "(validate_repository raised)"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tree_label" in metafunc.fixturenames:
        try:
            labels = sorted(t.label for t in repository_report().trees)
        except Exception:  # reported by the test itself, not as a collection error
            labels = [CRASHED]
        metafunc.parametrize("tree_label", labels, ids=labels)


def _tree(report: Report, label: str) -> TreeReport:
    found = [t for t in report.trees if t.label == label]
    assert len(found) == 1, f"{len(found)} trees labelled {label!r}"
    return found[0]


def test_tree_is_valid(tree_label: str):
    if tree_label == CRASHED:
        repository_report()  # raises again, with its traceback
    item = _tree(repository_report(), tree_label)
    assert not item.problems, f"{item.label}:\n{render(sorted(set(item.problems)))}"
    assert item.tree.resources or item.path.endswith("flux-system"), f"{item.label} builds to nothing"


def test_environments_flux_graph_and_policies(real_report: Report):
    assert not real_report.problems, render(sorted(set(real_report.problems)))


def test_tree_labels_are_unique(real_report: Report):
    labels = [t.label for t in real_report.trees]
    assert len(labels) == len(set(labels))


def test_both_environments_exist(real_report: Report, repo: Path):
    assert set(real_report.environments) == ENVIRONMENTS
    assert set(environment_names(repo)) == ENVIRONMENTS
    for name, environment in real_report.environments.items():
        assert environment.cluster_name.endswith(name)


def test_every_kustomization_directory_is_validated(real_report: Report, repo: Path):
    layout = discover(repo)
    validated = {t.path for t in real_report.trees}
    # Independently of discovery: every kustomization file under the folders Flux reads.
    on_disk = {
        path.parent.relative_to(repo).as_posix()
        for top in FLUX_DIRS
        for name in ("kustomization.yaml", "kustomization.yml", "Kustomization")
        for path in (repo / top).rglob(name)
    }
    assert on_disk == set(layout.directories)
    assert {"clusters/prod", "clusters/staging"} <= on_disk
    missing = sorted(on_disk - validated - layout.components)
    assert not missing, f"never validated: {missing}"
    # Components are validated through the trees that use them.
    for component in sorted(layout.components):
        users = [t.label for t in real_report.trees if component in layout.closure(t.path)]
        assert users, f"component {component} is used by no validated tree"


def _declared_flux_kustomizations(repo: Path, env: str) -> set[str]:
    """The Flux Kustomizations written in clusters/<env>/, read straight from the files."""
    names = set()
    for path in sorted((repo / "clusters" / env).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if (
                isinstance(doc, dict)
                and doc.get("apiVersion") == KUSTOMIZATION_API
                and doc.get("kind") == "Kustomization"
            ):
                names.add(doc["metadata"]["name"])
    return names


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_trees_cover_every_flux_kustomization(real_report: Report, repo: Path, env: str):
    known = {(k.namespace, k.name) for k in real_report.kustomizations[env]}
    applied = {(t.kustomization.namespace, t.kustomization.name) for t in real_report.applied_trees(env)}
    assert applied == known
    built = {
        (r.namespace, r.name)
        for t in real_report.applied_trees(env)
        for r in t.tree.of_kind("Kustomization")
        if r.api_version == KUSTOMIZATION_API
    }
    assert known == built | {("flux-system", "flux-system")}
    declared = _declared_flux_kustomizations(repo, env)
    assert declared, f"clusters/{env} declares no Flux Kustomization"
    assert {("flux-system", name) for name in declared} <= known
    for item in real_report.kustomizations[env]:
        assert real_report.applied(env, item.name).path == item.path


def test_environments_apply_the_same_flux_kustomizations(real_report: Report):
    names = {env: sorted(k.name for k in items) for env, items in real_report.kustomizations.items()}
    assert names["prod"] == names["staging"]


def test_cluster_vars_example_has_every_field():
    example = ClusterVars.example()
    data = example.data()
    assert tuple(data) == ClusterVars.names()
    assert all(isinstance(value, str) and value for value in data.values())
    assert ClusterVars.model_validate(data) == example
    assert example.configmap()["data"] == data


def test_variables_used_are_cluster_vars(real_report: Report):
    """Names with a default too: a misspelt ${name:=default} would silently take its default."""
    trees = [t for env in sorted(real_report.kustomizations) for t in real_report.applied_trees(env)]
    items = [t for t in trees if t.kustomization is not None and t.kustomization.post_build]
    assert items, "no Flux Kustomization substitutes anything"
    used = {}
    for tree in items:
        item = tree.kustomization
        assert item is not None
        others = [s for s in item.var_sources if not is_cluster_vars(s, item.namespace)]
        assert not others, f"{item.ref} reads variables from {others}: extend this test"
        unknown = tree.variables_used - set(ClusterVars.names()) - set(item.inline_vars)
        assert not unknown, f"{item.env}: {item.ref} uses {sorted(unknown)}, which cluster-vars does not define"
        used[item.ref] = tree.variables_used
    everything = set().union(*used.values())
    assert {"misp_hostname", "aws_region", "secrets_prefix"} <= everything

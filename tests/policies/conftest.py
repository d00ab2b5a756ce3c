"""The real repository's report, validated once, and copies of it to break one thing at a time."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from misp_eks.eksctl import ClusterConfig
from misp_eks.problems import Problem
from misp_eks.validate.runner import Report, validate_repository


@pytest.fixture(scope="session")
def base_report(repo) -> Report:
    report = validate_repository(repo)
    assert report.ok, [str(p) for p in report.all_problems()]
    return report


@pytest.fixture
def report(base_report) -> Report:
    return copy.deepcopy(base_report)


def obj(report: Report, env: str, tree: str, kind: str, name: str) -> dict[str, Any]:
    """The mutable object ``kind name`` that Flux Kustomization ``tree`` applies in ``env``."""
    return report.applied(env, tree).one(kind, name).obj


def cluster(report: Report, env: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Rebuild ``env``'s ClusterConfig after ``change`` edits it as a dict."""
    environment = report.environments[env]
    data = environment.cluster.model_dump(exclude_none=True)
    change(data)
    report.environments[env] = dataclasses.replace(environment, cluster=ClusterConfig.model_validate(data))


def messages(problems: Iterable[Problem]) -> list[str]:
    return [str(p) for p in problems]


def assert_finds(problems: Iterable[Problem], *fragments: str) -> list[Problem]:
    """At least one problem mentions every fragment (in its file, object, field or message)."""
    found = list(problems)
    matching = [p for p in found if all(f in str(p) for f in fragments)]
    assert matching, f"no problem with {fragments!r} among {messages(found)}"
    return matching


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def env_var(item: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in item["env"] if e["name"] == name)

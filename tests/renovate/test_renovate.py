""".github/renovate.json: valid for the pinned Renovate (its own validator, strict), and, run offline in
extract mode on a copy of the repository, it finds every pin the project holds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from misp_eks.paths import repository_root
from misp_eks.provision.tools import FLUX_DISTRIBUTION
from tests.conftest import venv_tool

HERE = Path(__file__).parent
CONFIG = ".github/renovate.json"


def _bin(name: str) -> Path:
    path = HERE / "node_modules" / ".bin" / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make test`, which installs tests/renovate with npm ci")
    return path


def _run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    node_dir = str(Path(venv_tool("node")).parent)
    environ = {
        **os.environ,
        "PATH": f"{node_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "RENOVATE_X_IGNORE_RE2": "true",  # re2 is a native add-on, not built (npm ci --ignore-scripts)
        **env,
    }
    return subprocess.run(command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=300, check=False)


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return _run([str(_bin("renovate-config-validator")), "--strict", "--no-global", str(path)], path.parent)


def test_the_config_is_valid():
    result = validate(repository_root() / CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Config validated successfully" in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(prHourlyLimitt=4), "Invalid configuration option: prHourlyLimitt"),
        (lambda c: c["customManagers"][0].update(matchStrings=["(unclosed"]), "Invalid regExp"),
        (lambda c: c["packageRules"][-1].update(schedule=["whenever it likes"]), "Invalid schedule"),
    ],
    ids=["unknown-option", "bad-regex", "bad-schedule"],
)
def test_the_validator_refuses_a_broken_config(tmp_path: Path, change: Any, message: str):
    config = json.loads((repository_root() / CONFIG).read_text())
    change(config)
    broken = tmp_path / "renovate.json"
    broken.write_text(json.dumps(config))
    result = validate(broken)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def _copy_repository(target: Path) -> None:
    """The files git would commit (tracked, or new and not ignored), committed in a fresh repository:
    Renovate's local platform reads what git lists."""
    root = repository_root()
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = root / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org"]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "copy"]):
        subprocess.run([*git, *command], cwd=target, check=True, capture_output=True)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Renovate's package files, by manager, from a dry run that looks nothing up (offline)."""
    copy = tmp_path_factory.mktemp("repository")
    _copy_repository(copy)
    report = tmp_path_factory.mktemp("report") / "report.json"
    result = _run(
        [
            str(_bin("renovate")),
            "--platform=local",
            "--dry-run=extract",
            "--onboarding=false",
            "--require-config=optional",
            "--report-type=file",
            f"--report-path={report}",
        ],
        copy,
        RENOVATE_CONFIG_FILE=str(copy / CONFIG),
        LOG_LEVEL="warn",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    repositories = json.loads(report.read_text())["repositories"]
    (only,) = repositories.values()
    return only["packageFiles"]


def _deps(extracted: dict[str, list[dict[str, Any]]], manager: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for package_file in extracted.get(manager, []):
        for dep in package_file["deps"]:
            yield package_file["packageFile"], dep


def _documents(pattern: str) -> Iterator[tuple[str, dict[str, Any]]]:
    root = repository_root()
    for path in sorted(root.glob(pattern)):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict):
                yield path.relative_to(root).as_posix(), document


def test_every_chart_version(extracted):
    found = {(f, d["depName"]): d["currentValue"] for f, d in _deps(extracted, "flux")}
    releases = [(f, d) for f, d in _documents("infrastructure/**/*.yaml") if d.get("kind") == "HelmRelease"]
    pinned = [(f, d["spec"]["chart"]["spec"]) for f, d in releases if "version" in str(d.get("spec"))]
    assert pinned
    for path, chart in pinned:
        assert found.get((path, chart["chart"])) == chart["version"], path


def test_the_eks_kubernetes_version_of_each_environment(extracted):
    found = {f: d for f, d in _deps(extracted, "regex") if d["depName"] == "amazon-eks"}
    for path, document in _documents("clusters/*/cluster.yaml"):
        assert found[path]["currentValue"] == document["metadata"]["version"]
        assert found[path]["datasource"] == "endoflife-date"
        # endoflife-date reports EKS platform versions ("1.36-eks-1"); only the Kubernetes minor is taken.
        assert found[path].get("extractVersion") == r"^(?<version>\d+\.\d+)", found[path]


def test_the_kind_node_image_by_tag_and_digest(extracted):
    ((path, document),) = list(_documents("clusters/kind/kind-cluster.yaml"))
    image = document["nodes"][0]["image"]
    found = [d for f, d in _deps(extracted, "regex") if f == path]
    assert found
    for dep in found:
        assert f"{dep['depName']}:{dep['currentValue']}@{dep['currentDigest']}" == image


def test_the_flux_and_kind_versions(extracted):
    by_file: dict[str, dict[str, str]] = {}
    for path, dep in _deps(extracted, "regex"):
        by_file.setdefault(path, {})[dep["depName"]] = dep["currentValue"]
    assert by_file["bootstrap/misp_eks/provision/tools.py"] == {"fluxcd/flux2": FLUX_DISTRIBUTION}
    e2e = by_file[".github/workflows/e2e.yaml"]
    assert set(e2e) == {"fluxcd/flux2", "kubernetes-sigs/kind", "kubernetes/kubernetes"}
    assert f"v{e2e['fluxcd/flux2']}" == FLUX_DISTRIBUTION, "the e2e CLI and the installed Flux differ"


def test_every_image(extracted):
    images = {d["depName"] for _, d in _deps(extracted, "kustomize")}
    images |= {d["depName"] for _, d in _deps(extracted, "kubernetes") if d.get("datasource") == "docker"}
    images |= {d["depName"] for _, d in _deps(extracted, "dockerfile")}
    expected = {
        "ghcr.io/misp/misp-docker/misp-core",
        "ghcr.io/misp/misp-docker/misp-modules",
        "mariadb",
        "redis",
        "python",
        "node",
    }
    assert expected <= images, sorted(images)
    assert any(name.endswith("/misp-dashboard") for name in images), sorted(images)


def test_every_python_lock_file(extracted):
    root = repository_root()
    locks = {p.relative_to(root).as_posix() for p in root.glob("requirements/*.txt")}
    locks.add("images/misp-dashboard/requirements.txt")
    found = {lock for package_file in extracted["pip-compile"] for lock in package_file.get("lockFiles", [])}
    assert locks <= found, sorted(locks - found)


def test_every_action_of_every_workflow(extracted):
    found = {(f, d["depName"]) for f, d in _deps(extracted, "github-actions")}
    # An action in a subdirectory (fluxcd/flux2/action) is its repository's: Renovate names that.
    for path, document in _documents(".github/workflows/*.yaml"):
        for job in document["jobs"].values():
            for step in job.get("steps", []):
                if "uses" in step:
                    repository = "/".join(step["uses"].split("@")[0].split("/")[:2])
                    assert (path, repository) in found, (path, step["uses"])


def test_the_renovate_pin_itself(extracted):
    found = {d["depName"]: d["currentValue"] for f, d in _deps(extracted, "npm") if f == "tests/renovate/package.json"}
    assert found["renovate"] == json.loads((HERE / "package.json").read_text())["dependencies"]["renovate"]

"""Repository-wide gates: security scan of the rendered manifests, secrets scan, shell, YAML and Python lint."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from misp_eks.validate.runner import validate_repository
from tests.conftest import venv_tool

# Kubernetes names secrets everywhere without holding any: a line that only names one (a key or a
# Secret, by a lower-case name or an UPPER_SNAKE one, nothing else) is not scanned; any other value
# on such a line still is. detect-secrets sees YAML lines unindented and with their values quoted.
SECRET_REFERENCE_LINES = (
    r'^\s*(- )?(secretKey|secretName|keepTLSSecret):\s*"?([a-z][a-z0-9._-]*|[A-Z][A-Z0-9]*(_[A-Z0-9]+)+)"?\s*$'
)


def tracked(repo: Path, *patterns: str) -> list[Path]:
    listing = subprocess.run(["git", "ls-files", "-z", *patterns], cwd=repo, capture_output=True, check=True)
    return [repo / name for name in listing.stdout.decode().split("\0") if name and (repo / name).exists()]


@pytest.fixture(scope="module")
def rendered(repo, tmp_path_factory) -> Path:
    """Every environment's applied trees as plain YAML: checkov's kustomize mode needs a kustomize binary."""
    report = validate_repository(repo)
    assert report.ok, [str(p) for p in report.all_problems()]
    directory = tmp_path_factory.mktemp("rendered")
    for env in report.environments:
        for tree in report.applied_trees(env):
            path = directory / f"{env}-{tree.kustomization.name}.yaml"
            path.write_text(yaml.safe_dump_all([r.obj for r in tree.tree], sort_keys=False))
    return directory


def checkov_command(repo: Path) -> str:
    """checkov lives in a virtual environment of its own (make test builds it; see requirements/checkov.in)."""
    candidate = os.environ.get("CHECKOV") or str(repo / ".venv-checkov/bin/checkov")
    if not Path(candidate).is_file():
        pytest.fail("checkov is not installed: run `make test`, which builds .venv-checkov")
    return candidate


def test_checkov_finds_nothing_unexplained(repo, rendered):
    checkov = checkov_command(repo)
    result = subprocess.run(
        [checkov, "-d", str(rendered), "--framework", "kubernetes", "--quiet", "-o", "json", "--skip-download"],
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},  # else it asks PyPI for a newer checkov
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}" for r in reports for c in r["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert sum(r["summary"]["passed"] for r in reports) > 100  # it really scanned the workloads


def test_every_accepted_finding_says_why(repo):
    skips = [
        (path, line)
        for path in tracked(repo, "*.yaml")
        for line in path.read_text().splitlines()
        if "checkov.io/skip" in line
    ]
    assert len(skips) >= 10  # the manifests do accept findings: this reads them
    for path, line in skips:
        check, _, reason = line.split(":", 1)[1].strip().partition("=")
        assert check.startswith("CKV_") and len(reason) > 20, f"{path}: {line.strip()}"


def secret_findings(paths: list[Path], cwd: Path) -> dict[str, list[tuple[str, int]]]:
    result = subprocess.run(
        [venv_tool("detect-secrets"), "scan", "--exclude-lines", SECRET_REFERENCE_LINES, *map(str, paths)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return {
        path: [(f["type"], f["line_number"]) for f in items]
        for path, items in json.loads(result.stdout)["results"].items()
    }


def test_no_secrets_in_the_repository(repo):
    findings = secret_findings(tracked(repo), repo)
    assert not findings, findings


def test_the_secrets_scan_sees_a_key_on_a_line_that_names_a_secret(tmp_path):
    planted = tmp_path / "planted.yaml"
    key = "AKIA" + "Q3EGRT5LMNQ7XK2P"  # assembled, so that this file holds no key
    planted.write_text(f"data:\n  - secretKey: token\n  - secretKey: {key}\n  secretName: db # {key}\n")
    assert sorted({line for _, line in secret_findings([planted], tmp_path)[planted.name]}) == [3, 4]


def shell_scripts(repo: Path) -> list[Path]:
    return [
        p
        for p in tracked(repo)
        if p.is_file() and p.read_bytes()[:2] == b"#!" and b"sh" in p.read_bytes().split(b"\n")[0]
    ]


def test_shell_scripts_pass_shellcheck(repo):
    scripts = shell_scripts(repo)
    assert any(p.name == "init-database.sh" for p in scripts) and any(p.name == "run" for p in scripts)
    result = subprocess.run(
        [venv_tool("shellcheck"), "--external-sources", *map(str, scripts)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_yaml_passes_yamllint(repo):
    files = tracked(repo, "*.yaml", "*.yml", ".yamllint.yaml")
    result = subprocess.run(
        [venv_tool("yamllint"), "--strict", "-c", str(repo / ".yamllint.yaml"), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_python_passes_ruff(repo):
    for command in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [venv_tool("ruff"), *command, "."], cwd=repo, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr

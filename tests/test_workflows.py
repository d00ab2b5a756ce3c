"""Every GitHub Actions workflow under .github/workflows passes actionlint, zizmor (offline, pedantic persona) and
the SchemaStore workflow schema bundled in check-jsonschema, and pins every action to a full commit SHA."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from misp_eks.paths import repository_root
from tests.conftest import venv_tool

WORKFLOWS = sorted(p for p in (repository_root() / ".github" / "workflows").glob("*") if p.suffix in (".yml", ".yaml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
VERSION_COMMENT = re.compile(r"^\s+#\s+v\d+\.\d+\.\d+\s*$")

BAD_WORKFLOW = """\
on: pull_request_target
jobs:
  greet:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}"
"""


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    return run([venv_tool("actionlint"), "-no-color", "-shellcheck", venv_tool("shellcheck"), str(path)], path.parent)


def zizmor(path: Path) -> subprocess.CompletedProcess[str]:
    return run([venv_tool("zizmor"), "--offline", "--persona", "pedantic", "--no-progress", str(path)], path.parent)


def test_there_are_workflows():
    assert WORKFLOWS, "no workflow under .github/workflows"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint(workflow):
    result = actionlint(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_zizmor_pedantic_offline(workflow):
    result = zizmor(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_github_workflow_schema(workflow):
    result = run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)], workflow.parent
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_commit_shas(workflow):
    document = yaml.safe_load(workflow.read_text())
    uses = []
    for job in (document.get("jobs") or {}).values():
        if "uses" in job:
            uses.append(job["uses"])
        uses.extend(step["uses"] for step in job.get("steps") or [] if "uses" in step)
    for ref in uses:
        if ref.startswith("./"):
            continue
        if ref.startswith("docker://"):
            assert "@sha256:" in ref, f"{workflow.name}: {ref} is not pinned by digest"
            continue
        assert PINNED.match(ref), f"{workflow.name}: {ref} is not pinned to a 40-hex commit SHA"
    # and each pinned line says which release the SHA is, for reviewers and Renovate
    for number, line in enumerate(workflow.read_text().splitlines(), 1):
        match = USES_LINE.match(line)
        if match and PINNED.match(match["ref"]):
            assert VERSION_COMMENT.match(match["rest"]), f"{workflow.name}:{number}: add a '# vX.Y.Z' comment"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_checkouts_do_not_persist_credentials(workflow):
    document = yaml.safe_load(workflow.read_text())
    for name, job in (document.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert (step.get("with") or {}).get("persist-credentials") is False, f"{workflow.name}: job {name}"


def test_the_linters_do_fail_on_a_bad_workflow(tmp_path):
    """The checks above are not vacuous: a workflow with script injection and an unpinned action fails each."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_WORKFLOW)
    linted = actionlint(bad)
    assert linted.returncode != 0
    assert "potentially untrusted" in linted.stdout
    audited = zizmor(bad)
    assert audited.returncode != 0
    assert "template-injection" in audited.stdout + audited.stderr
    assert not PINNED.match("actions/checkout@v4")

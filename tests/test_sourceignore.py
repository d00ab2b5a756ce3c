"""Flux reads only clusters/, apps/ and infrastructure/ (.sourceignore, gitignore syntax)."""

from __future__ import annotations

import subprocess

import pathspec


def test_flux_reads_only_the_three_folders(repo):
    spec = pathspec.GitIgnoreSpec.from_lines((repo / ".sourceignore").read_text().splitlines())
    files = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True).stdout.split()
    read = {f for f in files if not spec.match_file(f)}
    assert read, "Flux would read nothing"
    assert {f.split("/")[0] for f in read} == {"apps", "clusters", "infrastructure"}
    for path in ("clusters/prod/cluster.yaml", "clusters/prod/settings.yaml", "apps/misp/README.md"):
        assert path not in read
    for path in ("clusters/prod/kustomization.yaml", "clusters/prod/apps.yaml", "apps/misp/base/files/nginx.conf"):
        assert path in read

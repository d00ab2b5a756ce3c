"""Shared fixtures: the repository, and tools installed in this virtual environment."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

import pytest

from misp_eks.paths import repository_root


@pytest.fixture(scope="session")
def repo() -> Path:
    return repository_root()


def venv_tool(name: str) -> str:
    """A command installed by requirements/test.txt into this environment (never one from elsewhere on PATH)."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.is_file():
        return str(candidate)
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return str(candidate)
    pytest.fail(f"{name} is not installed in this environment: run `make test`")


def system_tool(name: str, package: str) -> str:
    """A server binary from the operating system (installed by scripts/install-test-servers)."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.is_file()), None
    )
    if found is None:
        pytest.fail(f"{name} is not installed: run `make servers` (Debian package {package})")
    return found

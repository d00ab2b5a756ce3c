"""Fixtures of the validator tests: a small valid repository in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from misp_eks.validate.runner import Report

from .fixtures import FixtureRepo, repository_report, write_repository


@pytest.fixture
def fixture_repo(tmp_path: Path) -> FixtureRepo:
    return write_repository(tmp_path / "repo")


@pytest.fixture(scope="session")
def real_report() -> Report:
    """scripts/validate's report on this repository (computed once per session)."""
    return repository_report()

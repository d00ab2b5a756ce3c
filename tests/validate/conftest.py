"""Fixtures of the validator tests: a small valid repository in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from .fixtures import FixtureRepo, write_repository


@pytest.fixture
def fixture_repo(tmp_path: Path) -> FixtureRepo:
    return write_repository(tmp_path / "repo")

"""Where the repository is."""

from __future__ import annotations

from pathlib import Path


def repository_root() -> Path:
    """The checkout this package lives in (``bootstrap/misp_eks`` is two levels below it)."""
    return Path(__file__).resolve().parents[2]

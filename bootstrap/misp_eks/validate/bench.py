"""How long scripts/validate takes, against the bare kustomize builds it cannot avoid (scripts/bench)."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from misp_eks import kustomize
from misp_eks.paths import repository_root
from misp_eks.policies import ALL_POLICIES
from misp_eks.validate.runner import validate_repository

TARGET_RATIO = 1.5


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bare_builds(root: Path, paths: list[str]) -> dict[str, float]:
    """Each tree built once with the pinned kubectl, one after another, nothing else."""
    timings = {}
    for path in paths:
        started = time.perf_counter()
        subprocess.run(kustomize.command(root / path), check=True, capture_output=True)
        timings[path] = time.perf_counter() - started
    return timings


def validation_seconds(root: Path) -> float:
    """The whole of scripts/validate, as a user runs it: a fresh interpreter, imports included."""
    command = [sys.executable, "-m", "misp_eks.validate", "--root", str(root)]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m misp_eks.validate.bench", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (median reported)")
    args = parser.parse_args(argv)
    root = repository_root()

    report = validate_repository(root, policies=ALL_POLICIES)
    paths = sorted({t.path for t in report.trees})
    bare_runs = [bare_builds(root, paths) for _ in range(args.repeat)]
    per_tree = {path: statistics.median(run[path] for run in bare_runs) for path in paths}
    bare_total = statistics.median(sum(run.values()) for run in bare_runs)
    whole = statistics.median(validation_seconds(root) for _ in range(args.repeat))

    print(f"bare kustomize build per tree (median of {args.repeat}):")
    for path, seconds in per_tree.items():
        print(f"  {seconds:6.3f}s  {path}")
    print(f"bare builds, one after another: {bare_total:6.3f}s ({len(paths)} trees)")
    print(f"scripts/validate, whole:        {whole:6.3f}s")
    ratio = whole / bare_total
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"ratio: {ratio:.2f} ({verdict} the {TARGET_RATIO}x goal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

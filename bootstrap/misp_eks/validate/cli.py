"""``scripts/validate``: one line per tree, the problems under it, a summary; exit 1 on any problem."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from misp_eks import kustomize
from misp_eks.paths import repository_root
from misp_eks.problems import Problem, UserError
from misp_eks.validate.runner import Report, validate_repository


def _print_problems(problems: list[Problem], printed: set[Problem]) -> None:
    for problem in sorted(set(problems)):
        marker = "  (again)" if problem in printed else ""
        print(f"      {problem}{marker}")
        printed.add(problem)


def render(report: Report) -> int:
    printed: set[Problem] = set()
    trees = sorted(report.trees, key=lambda t: (t.env, t.kustomization is None, t.path))
    width = max((len(t.label) for t in trees), default=20)
    for item in trees:
        status = "FAIL" if item.problems else "ok"
        detail = f"{len(set(item.problems))} problem(s)" if item.problems else f"{len(item.tree.resources)} objects"
        print(f"{status:<5} {item.label:<{width}}  {detail:>14}  {item.seconds:5.2f}s")
        _print_problems(item.problems, printed)
    envs = ", ".join([*sorted(report.environments), *sorted(report.kind_clusters)]) or "none"
    print(f"{'FAIL' if report.problems else 'ok':<5} environments, Flux graph and project policies ({envs})")
    _print_problems(report.problems, printed)
    total = len(set(report.all_problems()))
    objects = sum(len(t.tree.resources) for t in report.trees)
    print(
        f"summary: {len(report.trees)} trees, {len(report.environments)} environments"
        f" + {len(report.kind_clusters)} kind cluster(s), {objects} objects: "
        f"{total} problem(s) in {report.seconds:.1f}s"
    )
    return 1 if total else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/validate", description=__doc__)
    parser.add_argument("--root", type=Path, default=None, help="repository to validate (default: this one)")
    args = parser.parse_args(argv)
    root = (args.root or repository_root()).resolve()
    if not root.is_dir():
        print(f"error: {root}: not a directory", file=sys.stderr)
        return 2
    try:
        kustomize.kubectl()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from misp_eks.policies import ALL_POLICIES

    return render(validate_repository(root, policies=ALL_POLICIES))


if __name__ == "__main__":
    sys.exit(main())

"""Flux Kustomization files with their cluster-vars written in, for ``flux build kustomization --dry-run``.

A dry run skips ``postBuild.substituteFrom`` ("variable substitutions from Secrets and ConfigMaps are
skipped in dry-run mode": fluxcd/flux2 v2.9.4 cmd/flux/build_kustomization.go) but still applies
``postBuild.substitute``. So each Kustomization that takes the cluster-vars ConfigMap gets its values
inline, the ones scripts/validate substitutes (misp_eks.validate.runner.cluster_vars_of); a value the
Kustomization already sets inline wins, as it does in kustomize-controller.

Usage: python -m misp_eks.validate.inline --env ENV --output OUT FILE
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from misp_eks import kind
from misp_eks.cluster_vars import NAME as CLUSTER_VARS
from misp_eks.environment import environment_names, load_environment
from misp_eks.paths import repository_root
from misp_eks.problems import UserError
from misp_eks.validate.runner import cluster_vars_of
from misp_eks.yamlio import dump_all

FLUX_GROUP = "kustomize.toolkit.fluxcd.io/"


def takes_cluster_vars(document: Any) -> bool:
    """A Flux Kustomization whose postBuild.substituteFrom names the cluster-vars ConfigMap."""
    if not isinstance(document, dict) or document.get("kind") != "Kustomization":
        return False
    if not str(document.get("apiVersion", "")).startswith(FLUX_GROUP):
        return False
    post_build = (document.get("spec") or {}).get("postBuild") or {}
    return any(
        isinstance(source, dict) and source.get("kind") == "ConfigMap" and source.get("name") == CLUSTER_VARS
        for source in post_build.get("substituteFrom") or []
    )


def inline(documents: list[Any], variables: dict[str, str]) -> list[Any]:
    """Copies of ``documents``, the cluster-vars written into each Kustomization that takes them."""
    result = copy.deepcopy(documents)
    for document in result:
        if takes_cluster_vars(document):
            post_build = document["spec"]["postBuild"]
            post_build["substitute"] = {**variables, **(post_build.get("substitute") or {})}
    return result


def variables_of(root: Path, env: str) -> dict[str, str]:
    """The cluster-vars scripts/validate uses for ``env`` (an environment or the kind cluster)."""
    cluster = kind.load(root)
    if cluster is not None and cluster.name == env:
        return cluster_vars_of(cluster)
    if env not in environment_names(root):
        raise ValueError(f"no environment {env!r} under clusters/ and no kind cluster of that name")
    return cluster_vars_of(load_environment(root, env))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m misp_eks.validate.inline", description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="environment (clusters/<env>) or kind cluster name")
    parser.add_argument("--output", type=Path, required=True, help="file to write")
    parser.add_argument("--root", type=Path, default=None, help="repository (default: this one)")
    parser.add_argument("file", type=Path, help="YAML file with Flux Kustomizations")
    args = parser.parse_args(argv)
    root = args.root or repository_root()
    try:
        documents = [d for d in yaml.safe_load_all(args.file.read_text()) if d is not None]
        variables = variables_of(root, args.env)
    except (OSError, yaml.YAMLError, ValueError, UserError) as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return 1
    if not any(takes_cluster_vars(d) for d in documents):
        print(f"{args.file}: no Flux Kustomization takes the {CLUSTER_VARS} ConfigMap", file=sys.stderr)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(dump_all(inline(documents, variables)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Build one tree as kustomize-controller would: kustomize, then post-build substitution."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from misp_eks import envsubst, kustomize
from misp_eks.problems import Problem, UserError
from misp_eks.validate.resources import ORIGIN_ANNOTATION, Resource, Tree
from misp_eks.yamlio import dump, parse_documents

_DOCUMENT_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)


@dataclass
class BuildResult:
    tree: Tree
    problems: list[Problem] = field(default_factory=list)
    variables_used: set[str] = field(default_factory=set)
    """Every ${name} substituted, with or without a default."""


def _origin(obj: dict[str, Any], wrapper_dir: Path, root: Path, fallback: str) -> str:
    """Read and remove the origin annotation that ``buildMetadata: [originAnnotations]`` added."""
    metadata = obj.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    raw = annotations.pop(ORIGIN_ANNOTATION, None)
    if not annotations and "annotations" in metadata:
        del metadata["annotations"]
    if not raw:
        return fallback
    match = re.search(r"^path:\s*(.+)$", str(raw), re.MULTILINE)
    if not match:
        return fallback
    absolute = Path(os.path.normpath(wrapper_dir / match.group(1).strip()))
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        return fallback


def _clean_message(message: str, root: Path, scratch: Path) -> tuple[str | None, str]:
    """The file kustomize choked on (repository-relative, when it says) and its innermost complaint.

    kustomize nests every error in the accumulation that led to it; the last link is the useful one.
    """
    for prefix in (str(scratch) + os.sep, str(root) + os.sep, os.path.relpath(root, scratch) + os.sep):
        message = message.replace(prefix, "")
    # A resource that fails as a file is retried as a directory; the file's error is the one that matters.
    as_file = re.search(r"accumulation err='(.*)': must build at directory: ", message)
    if as_file:
        message = as_file.group(1)
    directories = re.findall(r"recursed accumulation of path '([^']+)'", message)
    links = list(
        re.finditer(r"(recursed accumulation of path|(?:accumulating|merging) resources from) '([^']+)': ", message)
    )
    if not links:
        return None, message
    last = links[-1]
    detail = re.sub(r" in File: \S+$", "", message[last.end() :])
    name = last.group(2)
    if last.group(1).startswith("recursed"):
        return None, detail
    if directories and not name.startswith(("/", "..")) and (root / directories[-1] / name).is_file():
        return f"{directories[-1]}/{name}", detail
    return None, f"{name}: {detail}"


def build_tree(
    root: Path,
    directory: str,
    extras: dict[str, Any] | None,
    variables: Mapping[str, str] | None,
    label: str,
) -> BuildResult:
    """Build ``directory`` (repository-relative), then substitute ``variables`` (None: no substitution).

    ``extras`` are what a Flux Kustomization adds (FluxKustomization.build_extras). They go into a
    kustomization in a scratch directory that includes ``directory``, together with
    ``buildMetadata: [originAnnotations]`` so that every object names its source file.
    """
    tree = Tree(path=directory)
    with tempfile.TemporaryDirectory(prefix="misp-eks-validate-") as scratch_name:
        scratch = Path(scratch_name)
        content: dict[str, Any] = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(root / directory, scratch)],
            "buildMetadata": ["originAnnotations"],
            **(extras or {}),
        }
        if "components" in content:
            content["components"] = [os.path.relpath(root / directory / c, scratch) for c in content["components"]]
        (scratch / "kustomization.yaml").write_text(dump(content), encoding="utf-8")
        try:
            output = kustomize.build(scratch, label)
        except UserError as error:
            source, detail = _clean_message(error.problem.message, root, scratch)
            if source is None:
                return BuildResult(tree, [Problem(label, f"does not build: {detail}")])
            return BuildResult(tree, [Problem(source, f"{label} does not build: {detail}")])
        return _substitute(output, scratch, root, directory, variables, label, tree)


def _substitute(
    output: str,
    scratch: Path,
    root: Path,
    directory: str,
    variables: Mapping[str, str] | None,
    label: str,
    tree: Tree,
) -> BuildResult:
    result = BuildResult(tree)
    for text in _DOCUMENT_SEPARATOR.split(output):
        if not text.strip():
            continue
        try:
            docs = parse_documents(text, label)
        except UserError as error:
            result.problems.append(error.problem)
            continue
        for obj in docs:
            if not isinstance(obj, dict):
                result.problems.append(Problem(label, "built a document that is not a Kubernetes object"))
                continue
            # Flux runs substitution only when the Kustomization has variables to substitute.
            if variables and not envsubst.is_disabled(obj):
                substituted = envsubst.substitute(text, variables)
                result.variables_used |= substituted.used
                origin = _origin(dict(obj), scratch, root, directory)
                ref = Resource(obj, origin).ref
                for name in sorted(set(substituted.undefined)):
                    result.problems.append(
                        Problem(
                            origin,
                            f"${{{name}}} is not provided by the Flux Kustomization's postBuild",
                            obj=ref,
                        )
                    )
                for expression in substituted.unsupported:
                    result.problems.append(
                        Problem(origin, f"{expression}: unsupported substitution expression", obj=ref)
                    )
                try:
                    obj = parse_documents(substituted.text, label)[0]
                except UserError as error:
                    result.problems.append(Problem(origin, f"after substitution: {error.problem.message}", obj=ref))
                    continue
            origin = _origin(obj, scratch, root, directory)
            tree.resources.append(Resource(obj, origin))
    return result

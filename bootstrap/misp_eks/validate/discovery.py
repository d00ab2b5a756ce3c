"""Which directories hold kustomizations, and which of them each kustomization includes."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from misp_eks.kustomize import KUSTOMIZATION_FILES, kustomization_file
from misp_eks.problems import Problem, UserError
from misp_eks.yamlio import load_mapping

# Flux reads only these (see .sourceignore); nothing else is a deployable tree.
FLUX_DIRS = ("clusters", "apps", "infrastructure")


@dataclass
class Layout:
    directories: list[str] = field(default_factory=list)
    """Every repository-relative directory under FLUX_DIRS that holds a kustomization."""
    components: set[str] = field(default_factory=set)
    """Those whose kind is Component (validated through the trees that use them)."""
    includes: dict[str, set[str]] = field(default_factory=dict)
    """Directory -> the kustomization directories it references directly."""
    problems: list[Problem] = field(default_factory=list)

    def closure(self, start: str) -> set[str]:
        """``start`` and every kustomization directory it reaches."""
        seen: set[str] = set()
        pending = [start]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            pending.extend(self.includes.get(current, ()))
        return seen


def discover(root: Path) -> Layout:
    layout = Layout()
    for top in FLUX_DIRS:
        base = root / top
        if not base.is_dir():
            continue
        found = sorted(Path(d) for d, _, files in os.walk(base) if any(f in KUSTOMIZATION_FILES for f in files))
        for directory in found:
            path = kustomization_file(directory)
            if path is None:
                continue
            relative = directory.relative_to(root).as_posix()
            layout.directories.append(relative)
            where = path.relative_to(root).as_posix()
            try:
                document = load_mapping(path, where)
            except UserError as error:
                layout.problems.append(error.problem)
                continue
            if document.get("kind") == "Component":
                layout.components.add(relative)
            references = [
                *(document.get("resources") or []),
                *(document.get("components") or []),
                *(document.get("bases") or []),
            ]
            targets = set()
            for reference in references:
                if not isinstance(reference, str) or "://" in reference:
                    continue
                target = posixpath.normpath(posixpath.join(relative, reference))
                if (root / target).is_dir():
                    targets.add(target)
            layout.includes[relative] = targets
    return layout

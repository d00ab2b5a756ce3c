"""How long Flux may take to make every Kustomization of an environment Ready, from the repository itself.

kustomize-controller applies a Kustomization only once those it depends on are Ready, gives each
attempt ``spec.timeout`` (default: ``spec.interval``) and retries a failed one after
``spec.retryInterval`` (default: ``spec.interval``) — fluxcd/kustomize-controller
config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml at 186fb3b. The flux-system
Kustomization that ``flux bootstrap`` writes applies all the others. So the wait is its step plus
the longest dependsOn chain, each step counting one attempt and one retry interval.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from misp_eks import kustomize
from misp_eks.environment import CLUSTERS_DIR
from misp_eks.problems import Problem, UserError
from misp_eks.validate.flux import KUSTOMIZATION_API, FluxKustomization, bootstrap_root, from_resource
from misp_eks.validate.resources import Resource
from misp_eks.yamlio import parse_documents

# Go durations as the CRD's pattern allows them: ^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$
_DURATION = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+$")
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str, where: str) -> float:
    if not _DURATION.match(text):
        raise UserError(Problem(where, f"{text!r} is not a duration such as 10m or 1h30m"))
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text))


def step_seconds(item: FluxKustomization) -> float:
    """One attempt of ``item`` and the delay before its retry (timeout plus retryInterval), not the retry."""
    where = f"{item.origin}: {item.ref}"
    interval = duration_seconds(str(item.spec.get("interval", "")), f"{where} spec.interval")
    timeout = item.spec.get("timeout")
    retry = item.spec.get("retryInterval")
    attempt = duration_seconds(str(timeout), f"{where} spec.timeout") if timeout else interval
    again = duration_seconds(str(retry), f"{where} spec.retryInterval") if retry else interval
    return attempt + again


def chain_seconds(root: FluxKustomization, items: list[FluxKustomization]) -> float:
    """``root``'s step plus the longest dependsOn chain among ``items`` (a cycle is refused by validation)."""
    by_key = {(item.namespace, item.name): item for item in items}

    @cache
    def longest(key: tuple[str, str]) -> float:
        item = by_key[key]
        before = [longest((namespace, name)) for name, namespace in item.depends_on if (namespace, name) in by_key]
        return step_seconds(item) + max(before, default=0.0)

    return step_seconds(root) + max((longest(key) for key in by_key), default=0.0)


def kustomizations(root: Path, env: str) -> list[FluxKustomization]:
    """The Flux Kustomizations that clusters/<env> applies, built as kustomize-controller builds it."""
    where = f"{CLUSTERS_DIR}/{env}"
    documents = parse_documents(kustomize.build(root / where, where), where)
    return [
        from_resource(env, Resource(document, where))
        for document in documents
        if isinstance(document, dict)
        and document.get("kind") == "Kustomization"
        and document.get("apiVersion") == KUSTOMIZATION_API
    ]


def flux_chain_seconds(root: Path, env: str) -> float:
    """How long every Kustomization of ``env`` may take to become Ready, from the repository at ``root``.

    The flux-system Kustomization is the one committed in gotk-sync.yaml once ``flux bootstrap`` has
    filled it in, or the one it will write."""
    items = kustomizations(root, env)
    written = bootstrap_root(env, f"{CLUSTERS_DIR}/{env}")
    committed = [item for item in items if (item.namespace, item.name) == (written.namespace, written.name)]
    others = [item for item in items if item not in committed]
    return chain_seconds(committed[0] if committed else written, others)

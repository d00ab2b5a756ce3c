"""No secret in git: every one reaches the pods from Secrets Manager through an ExternalSecret."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

from misp_eks import kind
from misp_eks.cluster_vars import ClusterVars
from misp_eks.naming import SECRETS
from misp_eks.policies.common import EXAMPLE, all_containers, applied_trees, dig, problem
from misp_eks.problems import Problem
from misp_eks.validate.resources import pod_template
from misp_eks.validate.runner import Report, TreeReport

SECRET_NAME = re.compile(r"(PASSWORD|PASSPHRASE|SECRET|TOKEN|SALT|ENCRYPTION_KEY|ADMIN_KEY|LICENSE_KEY|PRIVATE)", re.I)


def no_secrets_in_git(report: Report) -> Iterator[Problem]:
    """No Secret objects, no secret-looking ConfigMap keys, no literal secret-looking env values."""
    for tree_report in applied_trees(report):
        for resource in tree_report.tree:
            if resource.kind == "Secret":
                yield problem(resource, "", "Secrets come from Secrets Manager through an ExternalSecret, not git")
            if resource.kind == "ConfigMap":
                for key in resource.obj.get("data") or {}:
                    if SECRET_NAME.search(key):
                        yield problem(resource, f"data.{key}", "looks like a secret: use an ExternalSecret")
            if pod_template(resource) is None:
                continue
            for field, item in all_containers(resource):
                for index, entry in enumerate(item.get("env") or []):
                    if "value" in entry and SECRET_NAME.search(str(entry.get("name"))):
                        yield problem(resource, f"{field}.env[{index}]", f"{entry['name']} must come from a Secret")


def _known_secrets() -> dict[str, tuple[str, ...]]:
    known = {spec.name(EXAMPLE.secrets_prefix): spec.keys for spec in SECRETS}
    known[EXAMPLE.db_master_secret_arn] = ("username", "password")  # managed by RDS
    return known


def _kind_secrets(cluster: kind.KindEnvironment) -> dict[str, tuple[str, ...]]:
    store = kind.secret_store(kind.placeholder(kind.cluster_vars(cluster.config)))
    return {entry["key"]: tuple(json.loads(entry["value"])) for entry in store["spec"]["provider"]["fake"]["data"]}


def external_secrets_match_bootstrap(report: Report) -> Iterator[Problem]:
    """Every secret the manifests read is one the bootstrap creates, with that key; in kind, one the
    workflow's fake store holds."""
    known = _known_secrets()
    yield from _external_secrets_in(applied_trees(report), known)
    for name, cluster in sorted(report.kind_clusters.items()):
        yield from _external_secrets_in(report.applied_trees(name), _kind_secrets(cluster))


def _external_secrets_in(trees: Iterable[TreeReport], known: dict[str, tuple[str, ...]]) -> Iterator[Problem]:
    for tree_report in trees:
        for resource in tree_report.tree.of_kind("ExternalSecret"):
            if dig(resource.spec, "secretStoreRef", "kind") != "ClusterSecretStore":
                yield problem(resource, "spec.secretStoreRef.kind", "read through the ClusterSecretStore")
            for index, item in enumerate(resource.spec.get("data") or []):
                key, prop = dig(item, "remoteRef", "key"), dig(item, "remoteRef", "property")
                if key not in known:
                    yield problem(resource, f"spec.data[{index}].remoteRef.key", f"the bootstrap creates no {key}")
                elif prop not in known[key]:
                    yield problem(resource, f"spec.data[{index}].remoteRef.property", f"{key} has no key {prop}")
            for index, item in enumerate(resource.spec.get("dataFrom") or []):
                key = dig(item, "extract", "key")
                if key not in known:
                    yield problem(resource, f"spec.dataFrom[{index}].extract.key", f"the bootstrap creates no {key}")


def cluster_vars_hold_no_secret(report: Report) -> Iterator[Problem]:
    del report
    for name in ClusterVars.names():
        if SECRET_NAME.search(name) and not name.endswith(("_arn", "_prefix")):  # names of secrets are fine
            yield Problem("bootstrap/misp_eks/cluster_vars.py", "cluster-vars is a ConfigMap: no secrets", field=name)


POLICIES = (no_secrets_in_git, external_secrets_match_bootstrap, cluster_vars_hold_no_secret)

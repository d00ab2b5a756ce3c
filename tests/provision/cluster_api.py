"""The emulated cluster behind the fake API server: what EKS reports about it, what Flux puts in it.

- ``report_endpoint``: moto's EKS DescribeCluster answers with the fake API server's URL and CA
  (moto makes up an endpoint and random CA data).
- ``install_flux``: what ``flux bootstrap`` leaves, made through the kubeconfig the bootstrap wrote
  (so a wrong server, CA or token fails here as it would fail flux): the Kustomization CRD, the
  flux-system namespace, and the Flux Kustomizations of clusters/<env>, Ready.
- ``seed_applications``: the MISP and dashboard workloads as Flux leaves them running, including the
  finished database-init Job and its Completed pod, and the two Ingresses with the load balancer
  controller's finalizer.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes import config as kubeconfig
from kubernetes.client.exceptions import ApiException
from moto.eks import models as eks_models

from misp_eks import cluster_vars
from misp_eks.environment import environment_names, load_environment
from misp_eks.paths import repository_root
from misp_eks.provision import flux_wait
from misp_eks.validate.build import build_tree
from misp_eks.validate.flux import bootstrap_root
from tests.provision import emulate
from tests.provision.apiserver import INGRESS_FINALIZER, ApiServer, Running, serve
from tests.servers.tls import make_certificates

FLUX_GROUP, FLUX_VERSION = "kustomize.toolkit.fluxcd.io", "v1"
_STRING: dict[str, Any] = {"type": "string"}
_REFERENCES: dict[str, Any] = {
    "type": "array",
    "items": {"type": "object", "properties": {"name": _STRING, "namespace": _STRING}},
}
# Flux's Kustomization CRD, structural as the real one (fluxcd/kustomize-controller
# config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml: namespaced, v1 served, status
# subresource), with the fields this repository and the bootstrap use; the API server prunes the rest.
_CONDITION: dict[str, Any] = {
    "type": "object",
    "properties": {key: _STRING for key in ("type", "status", "reason", "message", "lastTransitionTime")}
    | {"observedGeneration": {"type": "integer"}},
}
KUSTOMIZATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": _STRING,
        "kind": _STRING,
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "dependsOn": _REFERENCES,
                "interval": _STRING,
                "retryInterval": _STRING,
                "timeout": _STRING,
                "path": _STRING,
                "prune": {"type": "boolean"},
                "wait": {"type": "boolean"},
                "suspend": {"type": "boolean"},
                "sourceRef": {
                    "type": "object",
                    "properties": {"kind": _STRING, "name": _STRING, "namespace": _STRING},
                },
                "postBuild": {
                    "type": "object",
                    "properties": {
                        "substitute": {"type": "object", "additionalProperties": _STRING},
                        "substituteFrom": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"kind": _STRING, "name": _STRING, "optional": {"type": "boolean"}},
                            },
                        },
                    },
                },
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "conditions": {"type": "array", "items": _CONDITION},
                "observedGeneration": {"type": "integer"},
                "lastAppliedRevision": _STRING,
            },
        },
    },
}
KUSTOMIZATION_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"kustomizations.{FLUX_GROUP}"},
    "spec": {
        "group": FLUX_GROUP,
        "names": {"kind": "Kustomization", "plural": "kustomizations", "singular": "kustomization"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": FLUX_VERSION,
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": KUSTOMIZATION_SCHEMA},
                "subresources": {"status": {}},
            }
        ],
    },
}


@contextmanager
def report_endpoint(clusters: dict[str, Running]) -> Iterator[None]:
    """While active, an EKS cluster created in moto under a name of ``clusters`` reports that server."""
    original = eks_models.Cluster.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        running = clusters.get(self.name)
        if running is not None:
            self.endpoint = running.url
            self.certificate_authority = {"data": base64.b64encode(running.ca_pem).decode()}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(eks_models.Cluster, "__init__", init)
        yield


def _created(call: Any) -> None:
    try:
        call()
    except ApiException as error:
        if error.status != 409:
            raise


def install_flux(kubeconfig_path: Path, root: Path, env: str) -> None:
    """What ``flux bootstrap --path=clusters/<env>`` leaves once it reconciled, through ``kubeconfig_path``.

    Refuses, as the bootstrap's ordering promises, a cluster without cluster-vars (Flux's
    Kustomizations substitute from it and would fail)."""
    api = kubeconfig.new_client_from_config(config_file=str(kubeconfig_path))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    try:
        core.read_namespaced_config_map(cluster_vars.NAME, cluster_vars.NAMESPACE)
    except ApiException as error:
        raise SystemExit(f"cluster-vars must exist before flux bootstrap (API answered {error.status})") from None
    _created(lambda: client.ApiextensionsV1Api(api).create_custom_resource_definition(KUSTOMIZATION_CRD))
    _created(lambda: core.create_namespace({"metadata": {"name": "flux-system"}}))
    items = [bootstrap_root(env, f"clusters/{env}"), *flux_wait.kustomizations(root, env)]
    ready = {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "Applied revision"}
    for item in items:
        body = {
            "apiVersion": f"{FLUX_GROUP}/{FLUX_VERSION}",
            "kind": "Kustomization",
            "metadata": {"name": item.name, "namespace": item.namespace},
            "spec": item.spec,
        }
        _created(
            lambda body=body, item=item: custom.create_namespaced_custom_object(
                FLUX_GROUP, FLUX_VERSION, item.namespace, "kustomizations", body
            )
        )
        made = custom.get_namespaced_custom_object(
            FLUX_GROUP, FLUX_VERSION, item.namespace, "kustomizations", item.name
        )
        status = {"conditions": [ready], "observedGeneration": made["metadata"]["generation"]}
        custom.patch_namespaced_custom_object_status(
            FLUX_GROUP, FLUX_VERSION, item.namespace, "kustomizations", item.name, {"status": status}
        )


def _owner(kind: str, name: str) -> dict[str, Any]:
    api = "batch/v1" if kind == "Job" else "apps/v1"
    return {"apiVersion": api, "kind": kind, "name": name, "uid": f"uid-{name}", "controller": True}


APPLICATION_NAMESPACES = ("misp", "misp-dashboard")


@cache
def applications(root: Path, env: str) -> dict[str, dict[str, tuple[str, int]]]:
    """The Deployments and StatefulSets of the applications' namespaces, as the Flux Kustomizations of
    clusters/<env> build them (misp_eks.validate.build, the validation's build): namespace -> name ->
    (kind, replicas)."""
    found: dict[str, dict[str, tuple[str, int]]] = {namespace: {} for namespace in APPLICATION_NAMESPACES}
    for item in flux_wait.kustomizations(root, env):
        result = build_tree(root, item.path, item.build_extras(), None, item.ref)
        assert not result.problems, result.problems
        for resource in result.tree.resources:
            obj = resource.obj
            namespace = (obj.get("metadata") or {}).get("namespace")
            if obj.get("kind") in ("Deployment", "StatefulSet") and namespace in found:
                replicas = (obj.get("spec") or {}).get("replicas", 1)
                found[namespace][obj["metadata"]["name"]] = (obj["kind"], int(replicas))
    return found


INGRESSES = {"misp": "misp", "misp-dashboard": "misp-dashboard"}


def _pod_spec(name: str) -> dict[str, Any]:
    return {"containers": [{"name": name, "image": f"example.invalid/{name}:1"}]}


def _template(labels: dict[str, str], name: str) -> dict[str, Any]:
    return {"metadata": {"labels": labels}, "spec": _pod_spec(name)}


def seed_applications(server: ApiServer, root: Path | None = None, env: str = "prod") -> None:
    """The applications of ``env`` as Flux leaves them: their Deployments (with ReplicaSets) and
    StatefulSets with their pods, the finished database-init Job with its Completed pod, and the Ingresses."""
    namespaces = server.kind("", "v1", "namespaces")
    sets = server.kind("apps", "v1", "replicasets")
    pods, jobs = server.kind("", "v1", "pods"), server.kind("batch", "v1", "jobs")
    ingresses = server.kind("networking.k8s.io", "v1", "ingresses")
    plurals = {"Deployment": "deployments", "StatefulSet": "statefulsets"}
    for namespace, workloads in applications(root or repository_root(), env).items():
        server.put(namespaces, {"metadata": {"name": namespace}})
        for name, (kind, replicas) in sorted(workloads.items()):
            labels = {"app.kubernetes.io/name": name}
            spec = {"replicas": replicas, "selector": {"matchLabels": labels}, "template": _template(labels, name)}
            meta = {"name": name, "uid": f"uid-{name}", "labels": labels}
            status = {"replicas": replicas}
            server.put(
                server.kind("apps", "v1", plurals[kind]), {"metadata": meta, "spec": spec, "status": status}, namespace
            )
            owner = (kind, name)
            if kind == "Deployment":  # a Deployment's pods belong to its ReplicaSet
                owner = ("ReplicaSet", f"{name}-5d4f8b7c9")
                owned = {"name": owner[1], "uid": f"uid-{owner[1]}", "labels": labels}
                server.put(
                    sets, {"metadata": {**owned, "ownerReferences": [_owner(kind, name)]}, "spec": spec}, namespace
                )
            for index in range(replicas):
                pod = {"name": f"{owner[1]}-{index}", "labels": labels, "ownerReferences": [_owner(*owner)]}
                server.put(pods, {"metadata": pod, "spec": _pod_spec(name), "status": {"phase": "Running"}}, namespace)
        server.put(
            ingresses,
            {"metadata": {"name": INGRESSES[namespace], "finalizers": [INGRESS_FINALIZER]}, "spec": {}},
            namespace,
        )
    job = "misp-database-init"
    labels = {"app.kubernetes.io/component": "database-init"}
    # No ttlSecondsAfterFinished (apps/misp/base/database/job.yaml): the Job and its pod stay once Complete.
    server.put(
        jobs,
        {
            "metadata": {"name": job, "uid": f"uid-{job}"},
            "spec": {"template": _template(labels, job)},
            "status": {"succeeded": 1},
        },
        "misp",
    )
    pod = {"name": f"{job}-x7k2p", "labels": labels, "ownerReferences": [_owner("Job", job)]}
    server.put(pods, {"metadata": pod, "spec": _pod_spec(job), "status": {"phase": "Succeeded"}}, "misp")


@contextmanager
def kubernetes_apis(repo: Path, work: Path, region: str, zone_id: str) -> Iterator[dict[str, Running]]:
    """A running API server per environment of ``repo`` (by environment name), its applications seeded,
    reported by EKS once eksctl creates its cluster. A deleted Ingress takes its load balancer along;
    DNS records stay (external-dns runs upsert-only in production)."""
    running: dict[str, Running] = {}
    with ExitStack() as stack:
        for name in environment_names(repo):
            env = load_environment(repo, name)
            hosts = [env.settings.hostnames.misp, env.settings.hostnames.dashboard]
            server = ApiServer(
                cluster=env.cluster_name,
                secrets={"testing": "testing"},  # pragma: allowlist secret (fake_aws_environment's keys)
                on_ingress_gone=lambda _ingress, cluster=env.cluster_name, hosts=hosts: (
                    emulate.remove_controller_leftovers(region, cluster, zone_id, hosts, "upsert-only")
                ),
            )
            seed_applications(server, repo, name)
            running[name] = stack.enter_context(serve(server, make_certificates(work / f"apiserver-{name}")))
        stack.enter_context(report_endpoint({env.server.cluster: env for env in running.values()}))
        yield running

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
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import boto3
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


EXTERNAL_SECRETS_GROUP, EXTERNAL_SECRETS_VERSION = "external-secrets.io", "v1"  # pragma: allowlist secret
_REMOTE_REF: dict[str, Any] = {
    "type": "object",
    "properties": {"key": _STRING, "property": _STRING},
}
# External Secrets' ExternalSecret CRD, structural as the real one (external-secrets/external-secrets
# config/crds/bases/external-secrets.io_externalsecrets.yaml: namespaced, v1 served and stored, status
# subresource), with the fields this repository uses; the API server prunes the rest.
EXTERNAL_SECRET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": _STRING,
        "kind": _STRING,
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "refreshInterval": _STRING,
                "secretStoreRef": {"type": "object", "properties": {"kind": _STRING, "name": _STRING}},
                "target": {"type": "object", "properties": {"name": _STRING}},
                "data": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"secretKey": _STRING, "remoteRef": _REMOTE_REF}},
                },
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "conditions": {"type": "array", "items": _CONDITION},
                "refreshTime": _STRING,
                "syncedResourceVersion": _STRING,
            },
        },
    },
}
EXTERNAL_SECRET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"externalsecrets.{EXTERNAL_SECRETS_GROUP}"},
    "spec": {
        "group": EXTERNAL_SECRETS_GROUP,
        "names": {"kind": "ExternalSecret", "plural": "externalsecrets", "singular": "externalsecret"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": EXTERNAL_SECRETS_VERSION,
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": EXTERNAL_SECRET_SCHEMA},
                "subresources": {"status": {}},
            }
        ],
    },
}


def seed_external_secret(server: ApiServer, namespace: str, name: str, spec: dict[str, Any]) -> None:
    """The CRD, an ExternalSecret and the Secret it made from Secrets Manager when it last synced."""
    server.put(server.kind("apiextensions.k8s.io", "v1", "customresourcedefinitions"), EXTERNAL_SECRET_CRD)
    kind = server.kind(EXTERNAL_SECRETS_GROUP, EXTERNAL_SECRETS_VERSION, "externalsecrets")
    server.put(kind, {"metadata": {"name": name}, "spec": spec}, namespace)
    sync_external_secret(server, namespace, name)


def sync_external_secret(server: ApiServer, namespace: str, name: str) -> None:
    """What External Secrets does on a refresh: each spec.data item's remoteRef (a JSON secret's property,
    read from Secrets Manager: moto in these tests) written to the target Secret, and the annotations
    it synced recorded (a change of them is what makes it refresh: syncedResourceVersion)."""
    kind = server.kind(EXTERNAL_SECRETS_GROUP, EXTERNAL_SECRETS_VERSION, "externalsecrets")
    found = server.get(kind, namespace, name)
    assert found is not None
    sm = boto3.client("secretsmanager")
    data = {}
    for item in found["spec"]["data"]:
        ref = item["remoteRef"]
        value = json.loads(sm.get_secret_value(SecretId=ref["key"])["SecretString"])[ref["property"]]
        data[item["secretKey"]] = base64.b64encode(str(value).encode()).decode()
    target = found["spec"]["target"]["name"]
    server.put(server.kind("", "v1", "secrets"), {"metadata": {"name": target}, "data": data}, namespace)
    synced = json.dumps(found["metadata"].get("annotations") or {}, sort_keys=True)
    server.put(kind, {**found, "status": {"syncedResourceVersion": synced}}, namespace)


def external_secrets_controller(server: ApiServer, namespace: str, name: str, delay: float) -> Callable[[], None]:
    """Refreshes the ExternalSecret ``delay`` seconds after its annotations change (not on its
    refreshInterval: that is an hour); returns the function that stops it."""
    kind = server.kind(EXTERNAL_SECRETS_GROUP, EXTERNAL_SECRETS_VERSION, "externalsecrets")
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.02):
            found = server.get(kind, namespace, name) or {}
            annotations = json.dumps((found.get("metadata") or {}).get("annotations") or {}, sort_keys=True)
            if found and annotations != (found.get("status") or {}).get("syncedResourceVersion"):
                time.sleep(delay)
                sync_external_secret(server, namespace, name)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join()

    return halt


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

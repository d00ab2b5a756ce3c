"""This environment's Kubernetes API, and no other: the official kubernetes client, and a kubeconfig for flux.

The endpoint and CA come from ``eks.describe_cluster``; the bearer token is an EKS token made from
the run's own AWS credentials (eks_token), refreshed before it expires. Nothing reads the operator's
kubeconfig or needs the aws CLI. The flux CLI gets a kubeconfig written into the run's private
directory (mode 0600) just before each invocation, holding a token made then (no exec plugin): it
is good for the 15 minutes EKS accepts a token, longer than a flux command may run (Timing.flux). Its
discovery cache goes there too (``--cache-dir``), not to the operator's ~/.kube/cache.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from misp_eks.provision import cluster
from misp_eks.provision.context import Context
from misp_eks.provision.eks_token import TokenSource
from misp_eks.provision.errors import BootstrapError
from misp_eks.provision.tools import FLUX

T = TypeVar("T")

FLUX_GROUP = "kustomize.toolkit.fluxcd.io"
FLUX_VERSION = "v1"
KUSTOMIZATIONS = "kustomizations"
REQUEST_TIMEOUT = (10, 60)
"""Connect and read timeouts of every API request, in seconds."""


@dataclass(frozen=True)
class Endpoint:
    server: str
    ca_pem: bytes


@dataclass(frozen=True)
class Workload:
    kind: str  # Deployment or StatefulSet
    name: str
    replicas: int


def endpoint(ctx: Context) -> Endpoint:
    def read() -> Endpoint:
        found = cluster.require_active(ctx)
        return Endpoint(
            server=str(found["endpoint"]).rstrip("/"),
            ca_pem=base64.b64decode(found["certificateAuthority"]["data"]),
        )

    return ctx.fact("kube-endpoint", read)


def tokens(ctx: Context) -> TokenSource:
    def make() -> TokenSource:
        session = ctx.aws.session
        return TokenSource(
            credentials=lambda: session.get_credentials().get_frozen_credentials(),
            cluster=ctx.names.cluster,
            region=ctx.names.region,
        )

    return ctx.fact("kube-tokens", make)


def _private_file(path: Path, content: bytes) -> Path:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(content)
    path.chmod(0o600)
    return path


def api(ctx: Context) -> client.ApiClient:
    """A client for this cluster; every request carries a token younger than its refresh age."""

    def make() -> client.ApiClient:
        where = endpoint(ctx)
        source = tokens(ctx)
        config = client.Configuration()
        config.host = where.server
        config.ssl_ca_cert = str(_private_file(ctx.workdir / "cluster-ca.pem", where.ca_pem))
        config.verify_ssl = True
        config.api_key_prefix = {"authorization": "Bearer"}
        config.api_key = {"authorization": source.token()}

        def refresh(current: client.Configuration) -> None:
            current.api_key["authorization"] = source.token()

        config.refresh_api_key_hook = refresh
        return client.ApiClient(configuration=config)

    return ctx.fact("kube-api", make)


def _call(ctx: Context, what: str, request: Callable[[], T], *, missing_ok: bool = False) -> T | None:
    """``request()``; None for a 404 when ``missing_ok``; any other failure is one line naming ``what``."""
    try:
        return request()
    except ApiException as error:
        if error.status == 404 and missing_ok:
            return None
        raise BootstrapError(_describe(ctx, what, error)) from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise BootstrapError(
            f"cannot reach the Kubernetes API of {ctx.names.cluster} at {endpoint(ctx).server} ({what}): {error}"
        ) from None


def _describe(ctx: Context, what: str, error: ApiException) -> str:
    message = error.reason or ""
    with contextlib.suppress(ValueError, AttributeError):  # a Status object, normally
        message = json.loads(error.body or "{}").get("message") or message
    if error.status == 401:
        return (
            f"the Kubernetes API of {ctx.names.cluster} refused the bootstrap's EKS token ({what}: 401 {message}): "
            "the AWS identity running the bootstrap has no access entry in the cluster (eksctl gives one only to "
            "the identity that created it: see Troubleshooting in README.md), or the token expired, or this "
            "machine's clock is off by minutes (EKS accepts a token for 15 minutes after the time it names)"
        )
    if error.status == 403:
        return (
            f"the Kubernetes API of {ctx.names.cluster} forbids {what}: {message}; the AWS identity running the "
            "bootstrap has an access entry without cluster-admin rights: associate the access policy "
            "AmazonEKSClusterAdminPolicy with it, scope cluster (aws eks associate-access-policy, "
            "docs/runbooks/README.md)"
        )
    return f"the Kubernetes API of {ctx.names.cluster} failed {what}: {error.status} {message}"


# Namespaces and the cluster-vars ConfigMap.


def namespace_exists(ctx: Context, name: str) -> bool:
    core = client.CoreV1Api(api(ctx))
    found = _call(
        ctx,
        f"reading namespace {name}",
        lambda: core.read_namespace(name, _request_timeout=REQUEST_TIMEOUT),
        missing_ok=True,
    )
    return found is not None


def ensure_namespace(ctx: Context, name: str) -> None:
    if namespace_exists(ctx, name):
        return
    core = client.CoreV1Api(api(ctx))
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    try:
        core.create_namespace(body, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as error:
        if error.status != 409:  # made meanwhile: fine
            raise BootstrapError(_describe(ctx, f"creating namespace {name}", error)) from None


def read_config_map(ctx: Context, namespace: str, name: str) -> dict[str, Any] | None:
    core = client.CoreV1Api(api(ctx))
    found = _call(
        ctx,
        f"reading ConfigMap {namespace}/{name}",
        lambda: core.read_namespaced_config_map(name, namespace, _request_timeout=REQUEST_TIMEOUT),
        missing_ok=True,
    )
    return None if found is None else api(ctx).sanitize_for_serialization(found)


def write_config_map(ctx: Context, body: dict[str, Any], current: dict[str, Any] | None) -> None:
    """Create ``body``, or replace ``current`` with it (optimistic concurrency: its resourceVersion)."""
    core = client.CoreV1Api(api(ctx))
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    if current is None:
        ensure_namespace(ctx, namespace)
        _call(
            ctx,
            f"creating ConfigMap {namespace}/{name}",
            lambda: core.create_namespaced_config_map(namespace, body, _request_timeout=REQUEST_TIMEOUT),
        )
        return
    version = current.get("metadata", {}).get("resourceVersion")
    replacement = {**body, "metadata": {**body["metadata"], "resourceVersion": version}}
    _call(
        ctx,
        f"replacing ConfigMap {namespace}/{name}",
        lambda: core.replace_namespaced_config_map(name, namespace, replacement, _request_timeout=REQUEST_TIMEOUT),
    )


# Flux's Kustomizations (custom objects of kustomize.toolkit.fluxcd.io/v1).


def flux_installed(ctx: Context) -> bool:
    """Whether the API serves Flux's Kustomizations (its CRDs are installed)."""
    custom = client.CustomObjectsApi(api(ctx))
    found = _call(
        ctx,
        f"discovering {FLUX_GROUP}/{FLUX_VERSION}",
        lambda: custom.get_api_resources(FLUX_GROUP, FLUX_VERSION, _request_timeout=REQUEST_TIMEOUT),
        missing_ok=True,
    )
    return found is not None


def kustomization(ctx: Context, namespace: str, name: str) -> dict[str, Any] | None:
    if not flux_installed(ctx):
        return None
    custom = client.CustomObjectsApi(api(ctx))
    return _call(
        ctx,
        f"reading Kustomization {namespace}/{name}",
        lambda: custom.get_namespaced_custom_object(
            FLUX_GROUP, FLUX_VERSION, namespace, KUSTOMIZATIONS, name, _request_timeout=REQUEST_TIMEOUT
        ),
        missing_ok=True,
    )


def kustomizations(ctx: Context, namespace: str) -> list[dict[str, Any]]:
    if not flux_installed(ctx):
        return []
    custom = client.CustomObjectsApi(api(ctx))
    listing = _call(
        ctx,
        f"listing Kustomizations in {namespace}",
        lambda: custom.list_namespaced_custom_object(
            FLUX_GROUP, FLUX_VERSION, namespace, KUSTOMIZATIONS, _request_timeout=REQUEST_TIMEOUT
        ),
    )
    return list((listing or {}).get("items", []))


def suspend_kustomizations(ctx: Context, namespace: str) -> list[str]:
    """Set spec.suspend on every Kustomization of ``namespace`` (what ``flux suspend kustomization --all``
    does); the names of those it suspended now."""
    custom = client.CustomObjectsApi(api(ctx))
    suspended = []
    for item in kustomizations(ctx, namespace):
        name = item["metadata"]["name"]
        if item.get("spec", {}).get("suspend") is True:
            continue
        _call(
            ctx,
            f"suspending Kustomization {namespace}/{name}",
            lambda name=name: custom.patch_namespaced_custom_object(
                FLUX_GROUP,
                FLUX_VERSION,
                namespace,
                KUSTOMIZATIONS,
                name,
                {"spec": {"suspend": True}},
                _request_timeout=REQUEST_TIMEOUT,
            ),
        )
        suspended.append(name)
    return suspended


# ExternalSecrets (external-secrets.io/v1) and the Secrets they fill.

EXTERNAL_SECRETS_GROUP = "external-secrets.io"  # pragma: allowlist secret
EXTERNAL_SECRETS_VERSION = "v1"  # pragma: allowlist secret
EXTERNAL_SECRETS = "externalsecrets"  # pragma: allowlist secret
FORCE_SYNC = "force-sync"
"""Any change of an ExternalSecret's annotations makes External Secrets refresh it now; this is the key its
documentation uses (external-secrets.io FAQ, "Can I manually trigger a secret refresh?")."""


def external_secret(ctx: Context, namespace: str, name: str) -> dict[str, Any] | None:
    """The ExternalSecret, or None (missing, or External Secrets not installed yet)."""
    custom = client.CustomObjectsApi(api(ctx))
    return _call(
        ctx,
        f"reading ExternalSecret {namespace}/{name}",
        lambda: custom.get_namespaced_custom_object(
            EXTERNAL_SECRETS_GROUP,
            EXTERNAL_SECRETS_VERSION,
            namespace,
            EXTERNAL_SECRETS,
            name,
            _request_timeout=REQUEST_TIMEOUT,
        ),
        missing_ok=True,
    )


def force_sync(ctx: Context, namespace: str, name: str, stamp: str) -> None:
    """Annotate the ExternalSecret so that External Secrets reads its store now (a JSON merge patch)."""
    custom = client.CustomObjectsApi(api(ctx))
    _call(
        ctx,
        f"annotating ExternalSecret {namespace}/{name}",
        lambda: custom.patch_namespaced_custom_object(
            EXTERNAL_SECRETS_GROUP,
            EXTERNAL_SECRETS_VERSION,
            namespace,
            EXTERNAL_SECRETS,
            name,
            {"metadata": {"annotations": {FORCE_SYNC: stamp}}},
            _request_timeout=REQUEST_TIMEOUT,
        ),
    )


def secret_data(ctx: Context, namespace: str, name: str) -> dict[str, str] | None:
    """A Secret's data, decoded; None if it does not exist."""
    core = client.CoreV1Api(api(ctx))
    found = _call(
        ctx,
        f"reading Secret {namespace}/{name}",
        lambda: core.read_namespaced_secret(name, namespace, _request_timeout=REQUEST_TIMEOUT),
        missing_ok=True,
    )
    if found is None:
        return None
    return {key: base64.b64decode(value).decode() for key, value in (found.data or {}).items()}


# Ingresses, workloads and pods, for --destroy.


def ingresses(ctx: Context) -> list[tuple[str, str]]:
    """(namespace, name) of every Ingress, those being deleted included."""
    networking = client.NetworkingV1Api(api(ctx))
    listing = _call(
        ctx,
        "listing Ingresses",
        lambda: networking.list_ingress_for_all_namespaces(_request_timeout=REQUEST_TIMEOUT),
    )
    return [(item.metadata.namespace, item.metadata.name) for item in (listing.items if listing else [])]


def delete_ingress(ctx: Context, namespace: str, name: str) -> None:
    networking = client.NetworkingV1Api(api(ctx))
    _call(
        ctx,
        f"deleting Ingress {namespace}/{name}",
        lambda: networking.delete_namespaced_ingress(name, namespace, _request_timeout=REQUEST_TIMEOUT),
        missing_ok=True,
    )


def workloads(ctx: Context, namespace: str) -> list[Workload]:
    apps = client.AppsV1Api(api(ctx))
    deployments = _call(
        ctx,
        f"listing Deployments in {namespace}",
        lambda: apps.list_namespaced_deployment(namespace, _request_timeout=REQUEST_TIMEOUT),
    )
    statefulsets = _call(
        ctx,
        f"listing StatefulSets in {namespace}",
        lambda: apps.list_namespaced_stateful_set(namespace, _request_timeout=REQUEST_TIMEOUT),
    )
    found = [
        Workload(kind, item.metadata.name, item.spec.replicas or 0)
        for kind, listing in (("Deployment", deployments), ("StatefulSet", statefulsets))
        for item in (listing.items if listing else [])
    ]
    return sorted(found, key=lambda item: (item.kind, item.name))


def scale_to_zero(ctx: Context, namespace: str, workload: Workload) -> None:
    apps = client.AppsV1Api(api(ctx))
    patch = {"spec": {"replicas": 0}}
    scale = (
        apps.patch_namespaced_deployment_scale
        if workload.kind == "Deployment"
        else apps.patch_namespaced_stateful_set_scale
    )
    _call(
        ctx,
        f"scaling {workload.kind} {namespace}/{workload.name} to zero",
        lambda: scale(workload.name, namespace, patch, _request_timeout=REQUEST_TIMEOUT),
    )


def _controller(metadata: Any) -> tuple[str, str] | None:
    for owner in metadata.owner_references or []:
        if owner.controller:
            return owner.kind, owner.name
    return None


def pods_of(ctx: Context, namespace: str, owners: Sequence[Workload]) -> list[str]:
    """Pods of ``owners``: a Deployment's through its ReplicaSets, a StatefulSet's directly (ownerReferences
    with controller: true). Other pods, such as a finished Job's, are not theirs."""
    core, apps = client.CoreV1Api(api(ctx)), client.AppsV1Api(api(ctx))
    wanted = {(item.kind, item.name) for item in owners}
    sets = _call(
        ctx,
        f"listing ReplicaSets in {namespace}",
        lambda: apps.list_namespaced_replica_set(namespace, _request_timeout=REQUEST_TIMEOUT),
    )
    replica_sets = {item.metadata.name for item in (sets.items if sets else []) if _controller(item.metadata) in wanted}
    pods = _call(
        ctx,
        f"listing pods in {namespace}",
        lambda: core.list_namespaced_pod(namespace, _request_timeout=REQUEST_TIMEOUT),
    )
    mine = []
    for pod in pods.items if pods else []:
        owner = _controller(pod.metadata)
        if owner in wanted or (owner is not None and owner[0] == "ReplicaSet" and owner[1] in replica_sets):
            mine.append(pod.metadata.name)
    return sorted(mine)


# The flux CLI.


def kubeconfig(ctx: Context) -> Path:
    """A kubeconfig for this cluster with a fresh token, in the run's private directory (mode 0600)."""
    where = endpoint(ctx)
    name = ctx.names.cluster
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": where.server,
                    "certificate-authority-data": base64.b64encode(where.ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": name, "user": {"token": tokens(ctx).fresh()}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }
    return _private_file(ctx.workdir / "kubeconfig", yaml.safe_dump(document, sort_keys=False).encode())


def flux(ctx: Context, args: Sequence[str], *, timeout: float | None = None, interactive: bool = False) -> str:
    """Run flux against this cluster. Its discovery cache (default ~/.kube/cache: cli-runtime
    genericclioptions ConfigFlags, which fluxcd/flux2 v2.9.4 cmd/flux/main.go binds) stays in the workdir."""
    return ctx.tools.run(
        FLUX,
        [*args, f"--cache-dir={ctx.workdir / 'cache'}"],
        env={"KUBECONFIG": str(kubeconfig(ctx))},
        timeout=timeout or ctx.timing.flux,
        stream=True,
        interactive=interactive,
        what=f"flux {' '.join(args[:2])}",
    )

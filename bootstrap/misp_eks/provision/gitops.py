"""Flux, bootstrapped from this repository, and the ``cluster-vars`` ConfigMap it substitutes from.

cluster-vars is written before ``flux bootstrap``: Flux Kustomizations that substitute from it would
otherwise fail their first reconciliation (and a bootstrap that waits on them would stall).
"""

from __future__ import annotations

import json
from typing import Any

from misp_eks import cluster_vars
from misp_eks.cluster_vars import ClusterVars
from misp_eks.environment import CLUSTERS_DIR
from misp_eks.provision import caches, certificates, cluster, database, hosted_zone, kube, network
from misp_eks.provision.context import Context
from misp_eks.provision.errors import InputError

GITHUB_TOKEN_ENV = "GITHUB_TOKEN"  # noqa: S105 (the name of a variable)
KUSTOMIZATIONS = "kustomizations.kustomize.toolkit.fluxcd.io"
# The Flux release the cluster runs, whatever the operator's CLI is (flux bootstrap --version).
# renovate: datasource=github-releases depName=fluxcd/flux2
FLUX_DISTRIBUTION = "v2.9.4"


def build_cluster_vars(ctx: Context) -> ClusterVars:
    """Every cluster-vars value, from settings and from what AWS reports (nothing secret)."""
    settings = ctx.settings
    net = network.read(ctx)
    db = database.require(ctx)
    return ClusterVars(
        environment=ctx.env.name,
        cluster_name=ctx.names.cluster,
        aws_region=ctx.names.region,
        aws_account_id=ctx.names.account,
        vpc_id=net.vpc_id,
        vpc_cidr=net.vpc_cidr,
        domain=settings.domain,
        hosted_zone_id=hosted_zone.require(ctx).id,
        misp_hostname=settings.hostnames.misp,
        dashboard_hostname=settings.hostnames.dashboard,
        misp_certificate_arn=certificates.require(ctx, "misp"),
        dashboard_certificate_arn=certificates.require(ctx, "dashboard"),
        ingress_scheme=settings.ingress.scheme,
        ingress_allowed_cidrs=",".join(settings.ingress.allowed_cidrs),
        waf_acl_arn=settings.ingress.waf_acl_arn or "none",
        secrets_prefix=ctx.names.secrets_prefix,
        db_master_secret_arn=db.master_secret_arn,
        db_endpoint=db.address,
        misp_redis_endpoint=caches.require(ctx, "misp").address,
        dashboard_redis_endpoint=caches.require(ctx, "dashboard").address,
        attachments_bucket=ctx.names.attachments_bucket,
    )


def manifests(values: ClusterVars) -> dict[str, Any]:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": cluster_vars.NAMESPACE}}
    return {"apiVersion": "v1", "kind": "List", "items": [namespace, values.configmap()]}


def current_cluster_vars(ctx: Context) -> dict[str, str] | None:
    output = kube.kubectl(
        ctx,
        ["get", "configmap", cluster_vars.NAME, "-n", cluster_vars.NAMESPACE, "-o", "json", "--ignore-not-found"],
    ).strip()
    if not output:
        return None
    data = json.loads(output).get("data") or {}
    return {str(key): str(value) for key, value in data.items()}


def ensure_cluster_vars(ctx: Context) -> ClusterVars:
    values = build_cluster_vars(ctx)
    current = current_cluster_vars(ctx)
    label = f"{cluster_vars.NAMESPACE}/{cluster_vars.NAME}"
    if current == values.data():
        ctx.record("ConfigMap", label, "exists", f"{len(values.data())} values")
        return values
    kube.kubectl(ctx, ["apply", "-f", "-"], stdin=json.dumps(manifests(values)))
    ctx.record("ConfigMap", label, "created" if current is None else "updated", f"{len(values.data())} values")
    return values


def bootstrapped(ctx: Context) -> bool:
    """Whether Flux already syncs this cluster (its flux-system Kustomization exists)."""
    groups = kube.kubectl(ctx, ["api-resources", "--api-group=kustomize.toolkit.fluxcd.io", "-o", "name"])
    if KUSTOMIZATIONS not in groups.split():
        return False
    found = kube.kubectl(
        ctx, ["get", KUSTOMIZATIONS, "flux-system", "-n", cluster_vars.NAMESPACE, "--ignore-not-found", "-o", "name"]
    )
    return bool(found.strip())


def bootstrap_command(ctx: Context, *, assume_yes: bool) -> list[str]:
    gitops = ctx.settings.gitops
    path = f"--path={CLUSTERS_DIR}/{ctx.env.name}"
    version = f"--version={FLUX_DISTRIBUTION}"
    if gitops.provider == "github":
        if not ctx.environ.get(GITHUB_TOKEN_ENV):
            raise InputError(
                f"{GITHUB_TOKEN_ENV} is not set: flux bootstrap github needs a token that may write to "
                f"{gitops.url}; export it in the shell (never put it in a file)"
            )
        owner, repository = gitops.github_repository()
        command = [
            "bootstrap",
            "github",
            "--token-auth",
            f"--owner={owner}",
            f"--repository={repository}",
            f"--branch={gitops.branch}",
            path,
            version,
        ]
        if gitops.personal:
            command.append("--personal")
        return command
    command = ["bootstrap", "git", f"--url={gitops.url}", f"--branch={gitops.branch}", path, version]
    if assume_yes:
        command.append("--silent")
    return command


def ensure(ctx: Context, *, assume_yes: bool) -> None:
    cluster.require_active(ctx)
    ensure_cluster_vars(ctx)
    if bootstrapped(ctx):
        ctx.record(
            "Flux", ctx.names.cluster, "exists", "flux-system Kustomization present (run flux bootstrap to upgrade)"
        )
        return
    command = bootstrap_command(ctx, assume_yes=assume_yes)
    kube.flux(ctx, command, interactive=ctx.settings.gitops.provider == "git" and not assume_yes)
    ctx.record("Flux", ctx.names.cluster, "created", f"{ctx.settings.gitops.url} {CLUSTERS_DIR}/{ctx.env.name}")

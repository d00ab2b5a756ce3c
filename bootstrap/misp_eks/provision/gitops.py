"""Flux, bootstrapped from this repository, and the ``cluster-vars`` ConfigMap it substitutes from.

cluster-vars is written before ``flux bootstrap``: Flux Kustomizations that substitute from it would
otherwise fail their first reconciliation (and a bootstrap that waits on them would stall).
"""

from __future__ import annotations

import time
from typing import Any

from misp_eks import cluster_vars, naming
from misp_eks.cluster_vars import ClusterVars
from misp_eks.environment import CLUSTERS_DIR
from misp_eks.provision import caches, certificates, cluster, database, efs, hosted_zone, kube, network, secrets
from misp_eks.provision.context import Context
from misp_eks.provision.errors import InputError, MissingPrerequisite
from misp_eks.provision.tools import FLUX_DISTRIBUTION
from misp_eks.provision.waiting import Poll

GITHUB_TOKEN_ENV = "GITHUB_TOKEN"  # noqa: S105 (the name of a variable)


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
        misp_email_delivery=settings.email.delivery,
        efs_file_system_id=efs.require(ctx),
        efs_access_point_id=efs.require_access_point(ctx),
    )


def current_cluster_vars(ctx: Context) -> dict[str, Any] | None:
    """The cluster-vars ConfigMap as the cluster has it, or None."""
    return kube.read_config_map(ctx, cluster_vars.NAMESPACE, cluster_vars.NAME)


def ensure_cluster_vars(ctx: Context) -> ClusterVars:
    values = build_cluster_vars(ctx)
    current = current_cluster_vars(ctx)
    label = f"{cluster_vars.NAMESPACE}/{cluster_vars.NAME}"
    wanted = values.configmap()
    if current is not None and current.get("data") == wanted["data"]:
        ctx.record("ConfigMap", label, "exists", f"{len(values.data())} values")
        return values
    kube.write_config_map(ctx, wanted, current)
    ctx.record("ConfigMap", label, "created" if current is None else "updated", f"{len(values.data())} values")
    return values


def sync_smtp_secret(ctx: Context) -> None:
    """With e-mail on, the Secret misp-smtp holds Secrets Manager's SMTP credentials before cluster-vars can
    switch MISP to ses: on a running cluster it may still hold the empty placeholder (External Secrets
    refreshes hourly) and the pods Flux rolls would refuse to start. A first deploy has no ExternalSecret
    yet: Flux creates it with the filled value."""
    if not ctx.settings.email.enabled:
        return
    namespace, name = naming.MISP_NAMESPACE, naming.SMTP_SECRET
    label = f"{namespace}/{name}"
    wanted = secrets.read(ctx, naming.MISP_SMTP).get("username", "")
    if not wanted:
        raise MissingPrerequisite(f"the SES SMTP credentials in {ctx.names.secret(naming.MISP_SMTP)}", "dns")
    if kube.external_secret(ctx, namespace, name) is None:
        return

    def held() -> str:
        return (kube.secret_data(ctx, namespace, name) or {}).get("username", "")

    if held() == wanted:
        ctx.record("ExternalSecret", label, "exists", "Secret holds Secrets Manager's SMTP credentials")
        return
    kube.force_sync(ctx, namespace, name, str(int(time.time())))
    ctx.record("ExternalSecret", label, "updated", f"{kube.FORCE_SYNC}: read Secrets Manager now")
    ctx.wait(
        f"Secret {label} to hold the SMTP credentials of {ctx.names.secret(naming.MISP_SMTP)}",
        lambda: Poll(held() == wanted, "stale"),
        timeout=ctx.timing.secret_sync,
    )


def bootstrapped(ctx: Context) -> bool:
    """Whether Flux already syncs this cluster (its flux-system Kustomization exists)."""
    return kube.kustomization(ctx, cluster_vars.NAMESPACE, "flux-system") is not None


def github_token_needs(url: str, branch: str) -> str:
    """What the token of flux bootstrap github must allow. Without --token-auth, flux adds a deploy key
    (fluxcd/flux2 v2.9.4 pkg/bootstrap/bootstrap_provider.go reconcileDeployKey) and pushes its manifests
    to --branch itself (pkg/bootstrap/bootstrap_plain_git.go ReconcileComponents, ReconcileSyncConfig)."""
    return (
        f"flux bootstrap github needs a token for {url} that may add a deploy key and push to {branch} "
        f"(fine-grained: Administration read/write, Contents read/write, Metadata read; classic: repo) while it "
        f"runs; if {branch} is protected, let that one push through or bootstrap before protecting it; export "
        f"it in the shell (never put it in a file)"
    )


def bootstrap_command(ctx: Context, *, assume_yes: bool) -> list[str]:
    gitops = ctx.settings.gitops
    path = f"--path={CLUSTERS_DIR}/{ctx.env.name}"
    version = f"--version={FLUX_DISTRIBUTION}"
    if gitops.provider == "github":
        if not ctx.environ.get(GITHUB_TOKEN_ENV):
            raise InputError(f"{GITHUB_TOKEN_ENV} is not set: {github_token_needs(gitops.url, gitops.branch)}")
        owner, repository = gitops.github_repository()
        # No --token-auth: flux keeps the token only while bootstrapping and syncs with a read-only SSH deploy
        # key it adds to the repository (fluxcd/flux2 v2.9.4 cmd/flux/bootstrap.go --token-auth and
        # bootstrap_github.go --read-write-key, both false by default), so nothing expires in the cluster.
        command = [
            "bootstrap",
            "github",
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
    sync_smtp_secret(ctx)
    ensure_cluster_vars(ctx)
    if bootstrapped(ctx):
        ctx.record(
            "Flux", ctx.names.cluster, "exists", "flux-system Kustomization present (run flux bootstrap to upgrade)"
        )
        return
    command = bootstrap_command(ctx, assume_yes=assume_yes)
    kube.flux(ctx, command, interactive=ctx.settings.gitops.provider == "git" and not assume_yes)
    ctx.record("Flux", ctx.names.cluster, "created", f"{ctx.settings.gitops.url} {CLUSTERS_DIR}/{ctx.env.name}")

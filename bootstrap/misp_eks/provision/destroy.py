"""--destroy: tear an environment down in a safe order, keeping its data.

Order and why:

1. Flux is suspended, so that nothing it manages comes back while the rest goes.
2. The Ingresses are deleted and the bootstrap waits until the AWS Load Balancer Controller has
   removed the load balancers and external-dns the DNS records: both controllers run in the
   cluster, so this must happen while it exists, or the load balancers and records are orphaned.
3. The MISP and dashboard workloads are scaled to zero, so nothing writes during the final snapshots.
4. The data layer goes before the cluster (the issue's text lists the cluster first; this deviates
   deliberately): RDS and ElastiCache place network interfaces and security groups inside the VPC
   that eksctl created, and those block the deletion of the VPC, so ``eksctl delete cluster`` would
   fail with DependencyViolation. The caches and the database are deleted with final snapshots, the
   database keeps its automated backups, and snapshots are never deleted.
5. The inline policy the bootstrap added to the External Secrets role is removed (IAM refuses to
   delete a role that still has inline policies, which would fail eksctl's stack deletion).
6. ``eksctl delete cluster --wait``.
7. The certificates (free of load balancers by then).

The attachments bucket, the secrets and the KMS key are kept unless --delete-bucket or
--delete-secrets asks for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from misp_eks import naming
from misp_eks.provision import (
    alarms,
    bucket,
    caches,
    certificates,
    cluster,
    database,
    hosted_zone,
    kms,
    kube,
    master_secret,
    secrets,
    security_groups,
)
from misp_eks.provision.context import Context
from misp_eks.provision.errors import error_code
from misp_eks.provision.tools import EKSCTL
from misp_eks.provision.waiting import Poll

WORKLOAD_NAMESPACES = (naming.MISP_NAMESPACE, naming.DASHBOARD_NAMESPACE)
RECORD_TYPES = ("A", "AAAA", "CNAME")


@dataclass(frozen=True)
class DestroyOptions:
    delete_bucket: bool = False
    delete_secrets: bool = False


def final_snapshot_name(resource: str, now: float | None = None) -> str:
    return f"{resource}-final-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}"


# 1-3: the workloads, while the cluster still exists.


def _flux_installed(ctx: Context) -> bool:
    groups = kube.kubectl(ctx, ["api-resources", "--api-group=kustomize.toolkit.fluxcd.io", "-o", "name"])
    return bool(groups.strip())


def suspend_flux(ctx: Context) -> None:
    if not _flux_installed(ctx):
        ctx.record("Flux", ctx.names.cluster, "skipped", "not installed")
        return
    kube.flux(ctx, ["suspend", "kustomization", "--all", "-n", "flux-system"])
    ctx.record("Flux", "flux-system Kustomizations", "updated", "suspended")


def load_balancers(ctx: Context) -> list[str]:
    """Load balancers the AWS Load Balancer Controller made for this cluster (tagged elbv2.k8s.aws/cluster)."""
    elbv2 = ctx.client("elbv2")
    arns = [
        item["LoadBalancerArn"]
        for page in elbv2.get_paginator("describe_load_balancers").paginate()
        for item in page.get("LoadBalancers", [])
    ]
    mine = []
    for start in range(0, len(arns), 20):
        for description in elbv2.describe_tags(ResourceArns=arns[start : start + 20]).get("TagDescriptions", []):
            tags = {tag["Key"]: tag["Value"] for tag in description.get("Tags", [])}
            if tags.get(naming.LOAD_BALANCER_CLUSTER_TAG) == ctx.names.cluster:
                mine.append(description["ResourceArn"])
    return mine


def dns_records(ctx: Context) -> list[str]:
    """A, AAAA and CNAME records external-dns made for the two hostnames."""
    zone = hosted_zone.find(ctx.client("route53"), ctx.settings.domain)
    if zone is None:  # no zone, no records to wait for
        return []
    wanted = {f"{host}." for host in certificates.hostnames(ctx).values()}
    found = []
    for page in ctx.client("route53").get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone.id):
        for record in page.get("ResourceRecordSets", []):
            if record["Name"] in wanted and record["Type"] in RECORD_TYPES:
                found.append(f"{record['Name']} {record['Type']}")
    return found


def remove_ingresses(ctx: Context) -> None:
    kube.kubectl(
        ctx,
        ["delete", "ingress", "--all", "-A", "--wait", f"--timeout={int(ctx.timing.teardown)}s"],
        timeout=ctx.timing.teardown + 60,
    )
    ctx.record("Ingresses", "all namespaces", "deleted")

    def gone(lister: Callable[[Context], list[str]]) -> Callable[[], Poll[None]]:
        def probe() -> Poll[None]:
            left = lister(ctx)
            return Poll(not left, f"{len(left)} left: {', '.join(left)}" if left else "none left")

        return probe

    ctx.wait(
        f"the load balancers of {ctx.names.cluster} to be deleted", gone(load_balancers), timeout=ctx.timing.teardown
    )
    ctx.wait("the DNS records of MISP and the dashboard to be deleted", gone(dns_records), timeout=ctx.timing.teardown)
    ctx.record("load balancers and DNS records", ctx.names.cluster, "deleted", "by their controllers")


def _names(ctx: Context, kinds: str, namespace: str) -> list[str]:
    output = kube.kubectl(ctx, ["get", kinds, "-n", namespace, "-o", "name", "--ignore-not-found"])
    return [line.strip() for line in output.splitlines() if line.strip()]


def scale_to_zero(ctx: Context) -> None:
    for namespace in WORKLOAD_NAMESPACES:
        if not kube.kubectl(ctx, ["get", "namespace", namespace, "-o", "name", "--ignore-not-found"]).strip():
            ctx.record("workloads", namespace, "skipped", "no such namespace")
            continue
        workloads = _names(ctx, "deployment,statefulset", namespace)
        if workloads:
            kube.kubectl(ctx, ["scale", "--replicas=0", "-n", namespace, *workloads])
        pods = _names(ctx, "pods", namespace)
        if pods:
            kube.kubectl(
                ctx,
                ["wait", "--for=delete", "-n", namespace, f"--timeout={int(ctx.timing.teardown)}s", *pods],
                timeout=ctx.timing.teardown + 60,
            )
        ctx.record("workloads", namespace, "updated", f"{len(workloads)} scaled to zero, {len(pods)} pods gone")


# 4: the data layer.


def _delete_database(ctx: Context, stamp: float) -> str:
    rds = ctx.client("rds")
    identifier = ctx.names.db_instance
    instance = database.find(rds, identifier)
    if instance is None:
        ctx.record(database.KIND, identifier, "skipped", "not found")
        return ""
    snapshot = ""
    if instance.get("DBInstanceStatus") != "deleting":

        def settled() -> Poll[dict[str, Any]]:
            current = database.find(rds, identifier) or {}
            status = current.get("DBInstanceStatus", "missing")
            return Poll(status in ("available", "stopped", "missing"), status, current)

        instance = (
            ctx.wait(
                f"{database.KIND} {identifier} to settle before deletion",
                settled,
                timeout=ctx.timing.database,
                interval=ctx.timing.poll_slow,
            )
            or {}
        )
        if not instance:
            ctx.record(database.KIND, identifier, "skipped", "not found")
            return ""
        if instance.get("DeletionProtection"):
            rds.modify_db_instance(DBInstanceIdentifier=identifier, DeletionProtection=False, ApplyImmediately=True)
        snapshot = final_snapshot_name(identifier, stamp)
        rds.delete_db_instance(
            DBInstanceIdentifier=identifier,
            SkipFinalSnapshot=False,
            FinalDBSnapshotIdentifier=snapshot,
            DeleteAutomatedBackups=False,
        )

    def gone() -> Poll[None]:
        current = database.find(rds, identifier)
        return Poll(current is None, current.get("DBInstanceStatus", "") if current else "deleted")

    ctx.wait(
        f"{database.KIND} {identifier} to be deleted", gone, timeout=ctx.timing.database, interval=ctx.timing.poll_slow
    )
    detail = f"final snapshot {snapshot}; automated backups kept" if snapshot else "deletion was under way"
    ctx.record(database.KIND, identifier, "deleted", detail)
    return snapshot


def _delete_cache(ctx: Context, app: str, stamp: float) -> str:
    elasticache = ctx.client("elasticache")
    group_id = ctx.names.cache_group(app)
    group = caches.find(elasticache, group_id)
    if group is None:
        ctx.record(caches.KIND, group_id, "skipped", "not found")
        return ""
    snapshot = ""
    if group.get("Status") != "deleting":

        def settled() -> Poll[None]:
            current = caches.find(elasticache, group_id)
            status = current.get("Status", "") if current else "missing"
            return Poll(status in ("available", "missing"), status)

        ctx.wait(
            f"{caches.KIND} {group_id} to settle before deletion",
            settled,
            timeout=ctx.timing.cache,
            interval=ctx.timing.poll_slow,
        )
        snapshot = final_snapshot_name(group_id, stamp)
        elasticache.delete_replication_group(
            ReplicationGroupId=group_id, RetainPrimaryCluster=False, FinalSnapshotIdentifier=snapshot
        )

    def gone() -> Poll[None]:
        current = caches.find(elasticache, group_id)
        return Poll(current is None, current.get("Status", "") if current else "deleted")

    ctx.wait(f"{caches.KIND} {group_id} to be deleted", gone, timeout=ctx.timing.cache, interval=ctx.timing.poll_slow)
    ctx.record(caches.KIND, group_id, "deleted", f"final snapshot {snapshot}" if snapshot else "deletion was under way")
    return snapshot


def _retry_in_use(
    ctx: Context, what: str, delete: Callable[[], Any], missing: tuple[str, ...], busy: tuple[str, ...]
) -> None:
    def attempt() -> Poll[str]:
        try:
            delete()
        except ClientError as error:
            if error_code(error) in missing:
                return Poll(True, "not found", "skipped")
            if error_code(error) in busy:
                return Poll(False, "still in use")
            raise
        return Poll(True, "deleted", "deleted")

    outcome = ctx.wait(f"{what} to be deleted", attempt, timeout=ctx.timing.teardown)
    kind, _, name = what.rpartition(" ")
    ctx.record(kind, name, outcome or "deleted")


def delete_data_layer(ctx: Context) -> None:
    alarms.remove(ctx)
    stamp = time.time()
    tasks: dict[str, Callable[[], str]] = {"database": lambda: _delete_database(ctx, stamp)}
    for app in caches.APPS:
        tasks[app] = lambda app=app: _delete_cache(ctx, app, stamp)  # type: ignore[misc]
    ctx.concurrently(tasks)
    rds, elasticache = ctx.client("rds"), ctx.client("elasticache")
    names = ctx.names
    _retry_in_use(
        ctx,
        f"DB subnet group {names.db_subnet_group}",
        lambda: rds.delete_db_subnet_group(DBSubnetGroupName=names.db_subnet_group),
        ("DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound"),
        ("InvalidDBSubnetGroupStateFault",),
    )
    _retry_in_use(
        ctx,
        f"DB parameter group {names.db_parameter_group}",
        lambda: rds.delete_db_parameter_group(DBParameterGroupName=names.db_parameter_group),
        ("DBParameterGroupNotFound", "DBParameterGroupNotFoundFault"),
        ("InvalidDBParameterGroupState",),
    )
    _retry_in_use(
        ctx,
        f"cache subnet group {names.cache_subnet_group}",
        lambda: elasticache.delete_cache_subnet_group(CacheSubnetGroupName=names.cache_subnet_group),
        ("CacheSubnetGroupNotFoundFault", "CacheSubnetGroupNotFound"),
        ("CacheSubnetGroupInUse",),
    )
    for name in (names.db_security_group, names.cache_security_group):
        security_groups.delete(ctx, name)
    _remove_monitoring_role(ctx)


def _remove_monitoring_role(ctx: Context) -> None:
    iam = ctx.client("iam")
    name = ctx.names.db_monitoring_role
    try:
        attached = iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", [])
    except ClientError as error:
        if error_code(error) == "NoSuchEntity":
            return
        raise
    for policy in attached:
        iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    iam.delete_role(RoleName=name)
    ctx.record("IAM role", name, "deleted", "RDS enhanced monitoring")


# 5-6: the cluster.


def delete_cluster(ctx: Context) -> None:
    master_secret.remove(ctx)
    if cluster.inspect(ctx).absent:
        ctx.record(cluster.KIND, ctx.names.cluster, "skipped", "not found")
        return
    ctx.tools.run(
        EKSCTL,
        ["delete", "cluster", "--name", ctx.names.cluster, "--region", ctx.names.region, "--wait"],
        timeout=ctx.timing.eksctl,
        stream=True,
        what=f"eksctl delete cluster {ctx.names.cluster}",
    )
    ctx.record(cluster.KIND, ctx.names.cluster, "deleted", f"stack {ctx.names.cluster_stack}")


def keep_or_delete(ctx: Context, options: DestroyOptions) -> None:
    if options.delete_bucket:
        bucket.delete(ctx)
    else:
        ctx.record(bucket.KIND, ctx.names.attachments_bucket, "kept", "--delete-bucket deletes it")
    if options.delete_secrets:
        secrets.delete_all(ctx)
        kms.schedule_deletion(ctx)
    else:
        ctx.record("secrets", f"{ctx.names.secrets_prefix}/*", "kept", "--delete-secrets deletes them")
        ctx.record(kms.KIND, ctx.names.kms_alias, "kept", "--delete-secrets schedules its deletion")


def run(ctx: Context, options: DestroyOptions) -> None:
    state = cluster.inspect(ctx)
    if state.cluster_status == "ACTIVE":
        with ctx.progress.phase("workloads"):
            suspend_flux(ctx)
            remove_ingresses(ctx)
            scale_to_zero(ctx)
    with ctx.progress.phase("data"):
        delete_data_layer(ctx)
    with ctx.progress.phase("cluster"):
        delete_cluster(ctx)
    with ctx.progress.phase("dns"):
        certificates.delete_all(ctx)
    with ctx.progress.phase("kept"):
        keep_or_delete(ctx, options)

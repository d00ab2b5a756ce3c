"""--destroy: tear an environment down in a safe order, keeping its data.

Order and why:

1. Flux is suspended (spec.suspend on every Kustomization, as ``flux suspend kustomization --all``
   does), so that nothing it manages comes back while the rest goes.
2. The Ingresses are deleted and the bootstrap waits until the AWS Load Balancer Controller has
   removed the load balancers: it runs in the cluster, so this must happen while the cluster
   exists, or the load balancers are orphaned. Then the bootstrap deletes the DNS records that
   external-dns made for this cluster (its TXT registry names the owner): in production external-dns
   only ever upserts, so it would leave them pointing at load balancers that no longer exist.
3. The MISP and dashboard workloads are scaled to zero, so nothing writes during the final snapshots;
   the bootstrap waits for the pods those Deployments and StatefulSets own (through their ReplicaSets)
   to go. The database-init Job's finished pod is not theirs: it stays until the cluster goes, holding
   no connection. Deleting it or its Job would change nothing for the snapshots.
4. The data layer goes before the cluster, deliberately: RDS and ElastiCache place network
   interfaces and security groups inside the VPC that eksctl created, and those block the deletion
   of the VPC, so ``eksctl delete cluster`` would fail with DependencyViolation. The caches and the
   database are deleted with final snapshots, the database keeps its automated backups, and
   snapshots are never deleted. The shared-files file system loses its mount targets (network
   interfaces in the VPC too) and keeps its files.
5. The inline policy the bootstrap added to the External Secrets role is removed (IAM refuses to
   delete a role that still has inline policies, which would fail eksctl's stack deletion).
6. ``eksctl delete cluster --wait``.
7. The certificates (free of load balancers by then); the SES sending user with its keys, and the
   SES identity with the DKIM records the bootstrap made (both only if tagged as this cluster's).

The attachments bucket, the secrets and the KMS key are kept unless --delete-bucket or
--delete-secrets asks for them. The shared-files file system is always kept with its access point,
so a new deployment of the environment finds both and its volume misp-files mounts the same directory
(misp_eks.provision.efs); EFS's default backup plan keeps each daily recovery point for 35 days.
"""

from __future__ import annotations

import re
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
    db_parameters,
    efs,
    hosted_zone,
    kms,
    kube,
    master_secret,
    secrets,
    security_groups,
    ses,
)
from misp_eks.provision.context import Context
from misp_eks.provision.errors import BootstrapError, error_code
from misp_eks.provision.tools import EKSCTL
from misp_eks.provision.waiting import Poll

WORKLOAD_NAMESPACES = (naming.MISP_NAMESPACE, naming.DASHBOARD_NAMESPACE)
RECORD_TYPES = ("A", "AAAA", "CNAME")
FLUX_NAMESPACE = "flux-system"


@dataclass(frozen=True)
class DestroyOptions:
    delete_bucket: bool = False
    delete_secrets: bool = False


def final_snapshot_name(resource: str, now: float | None = None) -> str:
    return f"{resource}-final-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}"


# 1-3: the workloads, while the cluster still exists.


def suspend_flux(ctx: Context) -> None:
    if not kube.flux_installed(ctx):
        ctx.record("Flux", ctx.names.cluster, "skipped", "not installed")
        return
    suspended = kube.suspend_kustomizations(ctx, FLUX_NAMESPACE)
    detail = f"suspended {', '.join(suspended)}" if suspended else "already suspended"
    ctx.record("Flux", f"{FLUX_NAMESPACE} Kustomizations", "updated", detail)


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


def _owns(record: dict[str, Any], host: str, owner: str) -> bool:
    """An external-dns TXT registry record saying that ``owner`` manages ``host`` (registry/txt: named
    ``<type>-<host>``, or ``<host>`` in the old format; labels ``heritage=external-dns,external-dns/owner=…``)."""
    name = record["Name"].rstrip(".")
    if record["Type"] != "TXT" or not (name == host or re.fullmatch(rf"[a-z]+-{re.escape(host)}", name)):
        return False
    values = [item["Value"].strip('"') for item in record.get("ResourceRecords", [])]
    return any({"heritage=external-dns", f"external-dns/owner={owner}"} <= set(value.split(",")) for value in values)


def dns_records(ctx: Context) -> tuple[list[dict[str, Any]], list[str]]:
    """The records external-dns made for MISP's and the dashboard's hostnames, with their ownership
    records, when its registry says this cluster owns them; and the names of those it does not own."""
    zone = hosted_zone.find(ctx.client("route53"), ctx.settings.domain)
    if zone is None:
        return [], []
    hosts = set(certificates.hostnames(ctx).values())
    records = [
        record
        for page in ctx.client("route53").get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone.id)
        for record in page.get("ResourceRecordSets", [])
    ]
    owned_hosts = {host for host in hosts for record in records if _owns(record, host, ctx.names.cluster)}
    mine: list[dict[str, Any]] = []
    foreign: list[str] = []
    for record in records:
        name = record["Name"].rstrip(".")
        if record["Type"] in RECORD_TYPES and name in hosts:
            if name in owned_hosts:
                mine.append(record)
            else:
                foreign.append(f"{name} {record['Type']}")
        elif any(_owns(record, host, ctx.names.cluster) for host in hosts):
            mine.append(record)
    return mine, foreign


def remove_dns_records(ctx: Context) -> None:
    """Delete what external-dns made for this cluster: in production it runs with policy upsert-only
    and never deletes a record, so the records would outlive the load balancers they point to."""
    zone = hosted_zone.find(ctx.client("route53"), ctx.settings.domain)
    for _ in range(3):  # external-dns (policy sync) may delete some meanwhile: list again and retry
        mine, foreign = dns_records(ctx)
        if not mine or zone is None:
            break
        try:
            ctx.client("route53").change_resource_record_sets(
                HostedZoneId=zone.id,
                ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record} for record in mine]},
            )
        except ClientError as error:
            if error_code(error) != "InvalidChangeBatch":
                raise
            continue
        names = sorted({record["Name"].rstrip(".") for record in mine})
        ctx.record("DNS records", ", ".join(names), "deleted", f"external-dns records of {ctx.names.cluster}")
        break
    for name in foreign:
        ctx.record("DNS record", name, "kept", f"its registry does not name {ctx.names.cluster} as owner")


def remove_ingresses(ctx: Context) -> None:
    """Delete every Ingress and wait until they are gone (the AWS Load Balancer Controller's finalizer
    holds each until its load balancer is deleted), then until no load balancer of the cluster is left."""
    found = kube.ingresses(ctx)
    for namespace, name in found:
        kube.delete_ingress(ctx, namespace, name)
    ctx.record("Ingresses", "all namespaces", "deleted", f"{len(found)} Ingresses")

    def ingresses_gone() -> Poll[None]:
        left = kube.ingresses(ctx)
        return Poll(not left, f"{len(left)} left: {', '.join(f'{ns}/{n}' for ns, n in left)}" if left else "none")

    ctx.wait(f"the Ingresses of {ctx.names.cluster} to be deleted", ingresses_gone, timeout=ctx.timing.teardown)

    def gone() -> Poll[None]:
        left = load_balancers(ctx)
        return Poll(not left, f"{len(left)} left: {', '.join(left)}" if left else "none left")

    ctx.wait(f"the load balancers of {ctx.names.cluster} to be deleted", gone, timeout=ctx.timing.teardown)
    ctx.record("load balancers", ctx.names.cluster, "deleted", "by the AWS Load Balancer Controller")
    remove_dns_records(ctx)


def scale_to_zero(ctx: Context) -> None:
    """Scale every Deployment and StatefulSet to zero and wait for their pods to go. Only their pods:
    a finished Job's pod (misp-database-init) stays until its Job is deleted, and writes nothing."""
    for namespace in WORKLOAD_NAMESPACES:
        if not kube.namespace_exists(ctx, namespace):
            ctx.record("workloads", namespace, "skipped", "no such namespace")
            continue
        workloads = kube.workloads(ctx, namespace)
        for workload in workloads:
            if workload.replicas:
                kube.scale_to_zero(ctx, namespace, workload)
        first = kube.pods_of(ctx, namespace, workloads)

        def gone(namespace: str = namespace, workloads: list[kube.Workload] = workloads) -> Poll[None]:
            left = kube.pods_of(ctx, namespace, workloads)
            return Poll(not left, f"{len(left)} left: {', '.join(left)}" if left else "none left")

        ctx.wait(f"the pods of {namespace}'s workloads to stop", gone, timeout=ctx.timing.teardown)
        ctx.record("workloads", namespace, "updated", f"{len(workloads)} scaled to zero, {len(first)} pods gone")


# 4: the data layer.


# States in which RDS cannot take the final snapshot a deletion here always asks for (DeleteDBInstance:
# failed, incompatible-restore and incompatible-network instances delete only with SkipFinalSnapshot).
DATABASE_STUCK = frozenset(
    {"failed", "incompatible-restore", "incompatible-network", "inaccessible-encryption-credentials"}
)
# A replication group whose creation failed holds no data, and ElastiCache cannot snapshot it.
CACHE_EMPTY = frozenset({"create-failed"})


def _await(ctx: Context, what: str, status: Callable[[], str], done: frozenset[str], timeout: float) -> str:
    """Poll ``status`` until it is one of ``done``; the status reached."""

    def probe() -> Poll[str]:
        current = status()
        return Poll(current in done, current, current)

    return ctx.wait(what, probe, timeout=timeout, interval=ctx.timing.poll_slow) or ""


def _delete_database(ctx: Context, stamp: float) -> str:
    rds = ctx.client("rds")
    identifier = ctx.names.db_instance

    def status() -> str:
        current = database.find(rds, identifier)
        return str(current.get("DBInstanceStatus", "")) if current else "missing"

    snapshot = ""
    state = status()
    if state not in ("deleting", "missing"):
        settled = frozenset({"available", "stopped", "missing", *DATABASE_STUCK})
        state = _await(
            ctx, f"{database.KIND} {identifier} to settle before deletion", status, settled, ctx.timing.database
        )
        if state in DATABASE_STUCK:
            raise BootstrapError(
                f"{database.KIND} {identifier} is {state}: RDS cannot take its final snapshot. Its automated "
                "backups are kept; restore from them or delete the instance yourself, then run --destroy again"
            )
    if state == "missing":
        ctx.record(database.KIND, identifier, "skipped", "not found")
        return ""
    if state != "deleting":
        if (database.find(rds, identifier) or {}).get("DeletionProtection"):
            rds.modify_db_instance(DBInstanceIdentifier=identifier, DeletionProtection=False, ApplyImmediately=True)
        snapshot = final_snapshot_name(identifier, stamp)
        rds.delete_db_instance(
            DBInstanceIdentifier=identifier,
            SkipFinalSnapshot=False,
            FinalDBSnapshotIdentifier=snapshot,
            DeleteAutomatedBackups=False,
        )
    _await(ctx, f"{database.KIND} {identifier} to be deleted", status, frozenset({"missing"}), ctx.timing.database)
    detail = f"final snapshot {snapshot}; automated backups kept" if snapshot else "deletion was under way"
    ctx.record(database.KIND, identifier, "deleted", detail)
    return snapshot


def _delete_cache(ctx: Context, app: str, stamp: float) -> str:
    elasticache = ctx.client("elasticache")
    group_id = ctx.names.cache_group(app)

    def status() -> str:
        current = caches.find(elasticache, group_id)
        return str(current.get("Status", "")) if current else "missing"

    snapshot = ""
    state = status()
    if state not in ("deleting", "missing"):
        settled = frozenset({"available", "missing", *CACHE_EMPTY})
        state = _await(ctx, f"{caches.KIND} {group_id} to settle before deletion", status, settled, ctx.timing.cache)
    if state == "missing":
        ctx.record(caches.KIND, group_id, "skipped", "not found")
        return ""
    if state in CACHE_EMPTY:
        elasticache.delete_replication_group(ReplicationGroupId=group_id, RetainPrimaryCluster=False)
    elif state != "deleting":
        snapshot = final_snapshot_name(group_id, stamp)
        elasticache.delete_replication_group(
            ReplicationGroupId=group_id, RetainPrimaryCluster=False, FinalSnapshotIdentifier=snapshot
        )
    _await(ctx, f"{caches.KIND} {group_id} to be deleted", status, frozenset({"missing"}), ctx.timing.cache)
    if snapshot:
        detail = f"final snapshot {snapshot}"
    else:
        detail = "its creation had failed: nothing to snapshot" if state in CACHE_EMPTY else "deletion was under way"
    ctx.record(caches.KIND, group_id, "deleted", detail)
    return snapshot


def _retry_in_use(ctx: Context, kind: str, name: str, delete: Callable[[], Any], missing: str, busy: str) -> None:
    def attempt() -> Poll[str]:
        try:
            delete()
        except ClientError as error:
            if error_code(error) == missing:
                return Poll(True, "not found", "skipped")
            if error_code(error) == busy:
                return Poll(False, "still in use")
            raise
        return Poll(True, "deleted", "deleted")

    outcome = ctx.wait(f"{kind} {name} to be deleted", attempt, timeout=ctx.timing.teardown)
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
        database.SUBNET_GROUP_KIND,
        names.db_subnet_group,
        lambda: rds.delete_db_subnet_group(DBSubnetGroupName=names.db_subnet_group),
        database.SUBNET_GROUP_MISSING,
        "InvalidDBSubnetGroupStateFault",
    )
    _retry_in_use(
        ctx,
        db_parameters.KIND,
        names.db_parameter_group,
        lambda: rds.delete_db_parameter_group(DBParameterGroupName=names.db_parameter_group),
        "DBParameterGroupNotFound",
        "InvalidDBParameterGroupState",
    )
    _retry_in_use(
        ctx,
        caches.SUBNET_GROUP_KIND,
        names.cache_subnet_group,
        lambda: elasticache.delete_cache_subnet_group(CacheSubnetGroupName=names.cache_subnet_group),
        caches.SUBNET_GROUP_MISSING,
        "CacheSubnetGroupInUse",
    )
    efs.remove_mount_targets(ctx)
    for name in (names.db_security_group, names.cache_security_group, names.files_security_group):
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
    efs.keep(ctx)
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
        ses.delete_all(ctx)
    with ctx.progress.phase("kept"):
        keep_or_delete(ctx, options)
